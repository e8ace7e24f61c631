"""Every public function of the engine is fully annotated (issue 21: "the public API fully annotated"):
module-level functions and public methods of public classes, in every engine module whose path has no
private part. The review (hatmeta/review/), the command line (cli, commands/) are applications, not API."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _engine_modules():
    for path in sorted((ROOT / "hatmeta").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(("hatmeta/review/", "hatmeta/commands/")) or rel == "hatmeta/cli.py":
            continue
        if any(part.startswith("_") and part != "__init__.py" for part in rel.split("/")):
            continue
        yield rel, ast.parse(path.read_text())


def _missing(fn, method):
    args = fn.args
    params = args.posonlyargs + args.args + args.kwonlyargs
    if method and params and params[0].arg in ("self", "cls"):
        params = params[1:]
    out = [a.arg for a in params if a.annotation is None]
    out += ["*" + a.arg for a in (args.vararg,) if a is not None and a.annotation is None]
    out += ["**" + a.arg for a in (args.kwarg,) if a is not None and a.annotation is None]
    if fn.returns is None and fn.name != "__init__":
        out.append("return")
    return out


def test_every_public_engine_function_is_fully_annotated():
    gaps = []
    for rel, tree in _engine_modules():
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not node.name.startswith("_"):
                if missing := _missing(node, False):
                    gaps.append(f"{rel}:{node.lineno} {node.name}: {', '.join(missing)}")
            elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                for m in node.body:
                    if isinstance(m, ast.FunctionDef) and (not m.name.startswith("_") or m.name == "__init__"):
                        if missing := _missing(m, True):
                            gaps.append(f"{rel}:{m.lineno} {node.name}.{m.name}: {', '.join(missing)}")
    assert not gaps, "public functions without full annotations:\n" + "\n".join(gaps)


def test_the_check_sees_a_missing_annotation():
    fn = ast.parse("def f(x, y: int = 1):\n    return x\n").body[0]
    assert _missing(fn, False) == ["x", "return"]
