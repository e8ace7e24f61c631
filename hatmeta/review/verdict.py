"""`hatmeta reproduce`'s verdict: committed reports against a regenerated tree, in three levels.

(a) every file byte-identical (exit 0);
(b) some files differ in their bytes, but every number agrees within the tolerance of the output
    policy (``hatmeta.precision.TOLERANCE`` for stored numbers, one unit in the last printed
    digit for tables and pages) and every differing figure is drawn from the same numbers (its
    ``.data.json`` record agrees): the rendering differs, explained by the environment
    differences named first (exit 3);
(c) a number or a text differs, or a file is missing, new or edited by hand: each is named with
    the file, the field (or line) and both values (exit 1).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..precision import ABS_TOLERANCE, TOLERANCE, agree

LOCK = "requirements-reports.txt"
EXIT = {"a": 0, "b": 3, "c": 1}
FIGURES = (".png", ".svg", ".pdf")
TEXTS = (".csv", ".md", ".tex", ".html")
MAX_PER_FILE = 5  # differences named per file; the count says how many more


@dataclass(frozen=True)
class Finding:
    """One file that is not byte-identical: its level ("b" or "c") and why, in words."""

    file: str
    level: str
    message: str

    def to_dict(self):
        return {"file": self.file, "level": self.level, "message": self.message}


# ---- the environment against the lock

def read_lock(path) -> dict:
    """{normalised name: version} of the `name==version` lines of a pip-tools lock file."""
    pins = {}
    for line in Path(path).read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", line)
        if m:
            pins[_norm(m.group(1))] = (m.group(1), m.group(2))
    return pins


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def environment_differences(lock_path) -> list:
    """One sentence per locked package whose installed version differs (or that is missing)."""
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for _, (name, pinned) in sorted(read_lock(lock_path).items()):
        try:
            have = version(name)
        except PackageNotFoundError:
            out.append(f"{name} is not installed ({pinned} in {Path(lock_path).name})")
            continue
        if have != pinned:
            out.append(f"{name} {have} is installed, {pinned} in {Path(lock_path).name}")
    return out


# ---- comparing two trees

def compare(committed: Path, fresh: Path, committed_manifest: dict, fresh_manifest: dict) -> list:
    """Findings for every output that is not byte-identical (empty list: level (a))."""
    from .report import SIDECAR, _sha256

    findings = []
    for name, digest in sorted(committed_manifest.items()):
        path = committed / name
        if not path.exists():
            findings.append(Finding(name, "c", "listed in the manifest but missing from the folder"))
        elif _sha256(path) != digest:
            findings.append(Finding(name, "c", "edited after the manifest was written"))
    named = {f.file for f in findings}
    figures = {}  # stem -> formats that differ, reported once per figure
    for name in sorted(set(committed_manifest) | set(fresh_manifest)):
        if name in named:
            continue
        if name not in fresh_manifest:
            findings.append(Finding(name, "c", "no longer produced"))
        elif name not in committed_manifest:
            findings.append(Finding(name, "c", "new output, not in the committed manifest"))
        elif committed_manifest[name] != fresh_manifest[name]:
            a, b = committed / name, fresh / name
            suffix = Path(name).suffix
            if name.endswith(".json"):
                findings.append(_numbers_finding(name, _json_diffs(_load(a), _load(b))))
            elif suffix in TEXTS:
                diffs = _text_diffs(a.read_text(), b.read_text(), suffix == ".html")
                if suffix == ".html" and not diffs:
                    findings.append(Finding(name, "b", "differs only in its inline figures and the versions it names"))
                else:
                    findings.append(_numbers_finding(name, diffs))
            elif suffix in FIGURES:
                figures.setdefault(name[: -len(suffix)], []).append(suffix[1:])
            else:
                findings.append(Finding(name, "c", "differs from the regenerated one"))
    for stem, formats in figures.items():
        record = stem + SIDECAR
        if (committed / record).exists() and (fresh / record).exists():
            diffs = _json_diffs(_load(committed / record), _load(fresh / record))
            worst = max((d[3] for d in diffs), default="a")
        else:
            worst = "c"
        name = f"{stem}.{formats[0]}" if len(formats) == 1 else f"{stem}.{{{','.join(formats)}}}"
        if worst == "c":
            findings.append(Finding(name, "c", f"figure drawn from other numbers (see {record})"))
        else:
            same = "identical" if worst == "a" else "agreeing within tolerance"
            findings.append(Finding(name, "b", f"rendering differs; drawn from {same} numbers ({record})"))
    return sorted(findings, key=lambda f: f.file)


def level(findings) -> str:
    return max((f.level for f in findings), default="a")


def _load(path: Path):
    return json.loads(path.read_text())


def _numbers_finding(name, diffs) -> Finding:
    if not diffs:  # e.g. key order or spacing only
        return Finding(name, "b", "bytes differ; every value is equal")
    worst = max(d[3] for d in diffs)
    # Level (c) first; among them whole numbers first (counts read from the extraction are the
    # likely cause), then in the file's order.
    order = sorted(range(len(diffs)), key=lambda i: (diffs[i][3] != "c", not _whole(diffs[i][1]), i))
    shown = [diffs[i] for i in order[:MAX_PER_FILE]]
    parts = [f"{field}: {_show(x)} committed, {_show(y)} regenerated" for field, x, y, _ in shown]
    more = f" (and {len(diffs) - len(shown)} more)" if len(diffs) > len(shown) else ""
    if worst == "c":
        return Finding(name, "c", "; ".join(parts) + more)
    return Finding(name, "b", "numbers agree within tolerance: " + "; ".join(parts) + more)


def _whole(x) -> bool:
    return (isinstance(x, int) and not isinstance(x, bool)) or (isinstance(x, str) and x.lstrip("-").isdigit())


def _show(x) -> str:
    return json.dumps(x) if not isinstance(x, str) or len(x) < 120 else json.dumps(x[:117] + "...")


def _json_diffs(a, b, path="") -> list:
    """(field, committed, regenerated, level) for every value that differs."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            field = f"{path}.{k}" if path else str(k)
            if k not in a or k not in b:
                out.append((field, a.get(k, "(absent)"), b.get(k, "(absent)"), "c"))
            else:
                out += _json_diffs(a[k], b[k], field)
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [(f"{path} (length)", len(a), len(b), "c")]
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            # A study's row is named by its study, not its position.
            same = isinstance(x, dict) and x.get("study") == getattr(y, "get", dict().get)("study")
            key = x.get("study") if same else None
            out += _json_diffs(x, y, f"{path}[{key if isinstance(key, str) else i}]")
        return out
    if _number(a) and _number(b):
        if a == b:
            return []
        return [(path, a, b, "b" if agree(float(a), float(b)) else "c")]
    return [] if a == b else [(path, a, b, "c")]


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


NUMBER = re.compile(r"(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)")
SVG = re.compile(r"<svg\b.*?</svg>", re.S)
# The methods paragraph names the software versions: compared with the lock, not as numbers.
VERSIONS = re.compile(r"Computed with hatmeta [^()]*\([^()]*\)")


def _text_diffs(a: str, b: str, page: bool) -> list:
    """Differences between two tables or pages: numbers may differ by one unit in their last
    printed digit (level b); any other difference is level c. Pages are compared without their
    inline SVG figures (judged by the figures' records) and without the versions sentence."""
    if page:
        a, b = (VERSIONS.sub("Computed with (versions)", SVG.sub("<svg/>", t)) for t in (a, b))
    la, lb = a.splitlines(), b.splitlines()
    if len(la) != len(lb):
        return [("lines", len(la), len(lb), "c")]
    out = []
    for i, (x, y) in enumerate(zip(la, lb), 1):
        if x == y:
            continue
        px, py = NUMBER.split(x), NUMBER.split(y)
        if len(px) != len(py) or px[0::2] != py[0::2]:
            out.append((f"line {i}", x, y, "c"))
            continue
        for s, t in zip(px[1::2], py[1::2]):
            if s != t:
                # Whole numbers (counts) must be equal; a decimal may move by one unit of its last
                # printed digit, what a value within TOLERANCE of a rounding boundary can do.
                decimals = max(len(v.split(".")[1]) if "." in v and "e" not in v.lower() else 0 for v in (s, t))
                unit = 10.0 ** -decimals
                close = decimals > 0 and abs(float(s) - float(t)) <= unit * (1 + 1e-9)
                close = close or agree(float(s), float(t))
                out.append((f"line {i}", s, t, "b" if close else "c"))
    return out


TOLERANCE_TEXT = (f"stored numbers within {TOLERANCE:g} relative (or {ABS_TOLERANCE:g} absolute), printed numbers "
                  "within one unit of their last digit")

__all__ = ["compare", "environment_differences", "level", "read_lock", "Finding", "EXIT", "LOCK"]
