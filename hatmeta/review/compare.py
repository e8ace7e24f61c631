"""What changed: one analysis pooled now against a reference (a git revision of the data and specs,
or a saved result JSON), side by side, with the conclusions that crossed a line.

The reference is rebuilt from ``git show REV:path`` (argument lists, never a shell string) into a
scratch folder and pooled with the same options as now. Numbers are on the analysis scale (log for
RR, OR, IRR), as in the result JSON; the text table shows ratios on the natural scale.
"""

from __future__ import annotations

import json
import math
import subprocess
import tempfile
from pathlib import Path

from ..errors import InputError

SUMMARY_KEYS = ("k", "trials", "estimate", "ci_low", "ci_high", "tau2", "i2", "pi_low", "pi_high")
DATA_FILES = ("trials.csv", "arms.csv", "outcomes.csv", "discrepancies.csv")
OPTION = "--compare"


def summary(result: dict) -> dict:
    """The compared numbers of a result JSON (``MetaResult.to_dict()``): k, trials, estimate, CI,
    tau2, I2 (%), prediction interval; analysis scale."""
    out = {"k": result.get("k"), "trials": [s["study"] for s in result.get("studies", ())]}
    for key in SUMMARY_KEYS[2:]:
        value = result.get(key)
        out[key] = None if value is None or (isinstance(value, float) and math.isnan(value)) else value
    return out


def compare(before: dict, after: dict, scale: str = "log", benefit: str = "lower", labels=None) -> dict:
    """``compare`` JSON: before, after (summaries), entered, left and crossed (plain-language findings).

    ``benefit``: which direction favours the experimental arm ('lower' or 'higher' values);
    ``labels``: experimental and control names for the findings (default 'treatment', 'control')."""
    exp, ctrl = labels or ("treatment", "control")
    b_trials, a_trials = before["trials"], after["trials"]
    entered = [t for t in a_trials if t not in b_trials]
    left = [t for t in b_trials if t not in a_trials]
    null = 0.0  # no effect on the analysis scale (log ratio 0, difference 0)
    no_effect = "no effect (ratio 1)" if scale == "log" else "no effect (difference 0)"

    def side(x):
        if x is None or x == null:
            return None
        favours_exp = (x < null) == (benefit == "lower")
        return exp if favours_exp else ctrl

    def includes(lo, hi):
        return None if lo is None or hi is None else lo <= null <= hi

    crossed = []
    was, now = includes(before["ci_low"], before["ci_high"]), includes(after["ci_low"], after["ci_high"])
    if was is True and now is False:
        crossed.append(f"the confidence interval no longer includes {no_effect}: "
                       f"it now favours {side(after['estimate'])}")
    elif was is False and now is True:
        crossed.append(f"the confidence interval now includes {no_effect}: it favoured {side(before['estimate'])} "
                       "before")
    b_side, a_side = side(before["estimate"]), side(after["estimate"])
    if b_side and a_side and b_side != a_side:
        crossed.append(f"the direction flipped: the estimate favoured {b_side} before and favours {a_side} now")
    was, now = includes(before["pi_low"], before["pi_high"]), includes(after["pi_low"], after["pi_high"])
    if was is True and now is False:
        crossed.append(f"the prediction interval no longer includes {no_effect}")
    elif was is False and now is True:
        crossed.append(f"the prediction interval now includes {no_effect}")
    return {"before": before, "after": after, "entered": entered, "left": left, "crossed": crossed}


def _git(args, cwd) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except OSError as exc:  # git not installed
        raise InputError(f"cannot run git ({exc})", option=OPTION) from None


def materialise(ref: str, data_dir: Path, spec_file: Path, dest: Path) -> tuple:
    """Write the data files and the spec as they were at git revision ``ref`` into ``dest``.

    Returns (data folder, spec path) under ``dest``. Raises InputError naming --compare when the
    folder is not in a git repository, the revision is unknown or the files did not exist then."""
    data_dir, spec_file = Path(data_dir).resolve(), Path(spec_file).resolve()
    top = _git(["rev-parse", "--show-toplevel"], cwd=data_dir)
    if top.returncode != 0:
        raise InputError(f"{data_dir} is not in a git repository, so revision {ref!r} cannot be read; "
                         "give a saved result JSON instead", option=OPTION)
    root = Path(top.stdout.decode().strip()).resolve()
    if _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=root).returncode != 0:
        raise InputError(f"unknown git revision {ref!r} (and no such result JSON file)", option=OPTION)
    out_data = dest / "extracted"
    out_data.mkdir(parents=True)
    wanted = [(data_dir / name, out_data / name, name != "discrepancies.csv") for name in DATA_FILES]
    out_spec = dest / "analyses" / spec_file.name
    out_spec.parent.mkdir()
    wanted.append((spec_file, out_spec, True))
    for source, target, required in wanted:
        try:
            rel = source.relative_to(root).as_posix()
        except ValueError:
            raise InputError(f"{source} is outside the git repository {root}", option=OPTION) from None
        shown = _git(["show", f"{ref}:{rel}"], cwd=root)
        if shown.returncode != 0:
            if required:
                raise InputError(f"{rel} did not exist at revision {ref!r}", option=OPTION)
            continue
        target.write_bytes(shown.stdout)
    return out_data, out_spec


def reference_result(ref: str, name: str, data_dir, pool, analyses_dir=None) -> dict:
    """The reference's result JSON: a saved ``pool --format json`` file, or the analysis pooled at git
    revision ``ref`` (``pool(spec_path, data_dir)`` -> MetaResult pools it with today's options)."""
    path = Path(ref)
    if path.suffix.lower() == ".json" or path.is_file():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError("result JSON not found", file=str(path), option=OPTION) from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"not a result JSON ({exc})", file=str(path), option=OPTION) from None
        if not isinstance(saved, dict) or "k" not in saved or "studies" not in saved:
            raise InputError("not a saved 'hatmeta pool --format json' result (no k and studies)", file=str(path),
                             option=OPTION)
        return saved
    from .extraction import default_data_dir
    from .spec import spec_path

    spec_file = spec_path(name, analyses_dir)
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    with tempfile.TemporaryDirectory(prefix="hatmeta-compare-") as tmp:
        old_data, old_spec = materialise(ref, data_dir, spec_file, Path(tmp))
        try:
            return pool(old_spec, old_data).to_dict()
        except InputError as exc:
            raise InputError(f"the analysis cannot be pooled at revision {ref!r}: {exc.message}",
                             option=OPTION) from None


def _fmt(x, scale, digits=4):
    if x is None:
        return "-"
    return f"{math.exp(x) if scale == 'log' else x:.{digits}f}"


def compare_text(cmp: dict, ref: str, measure: str, scale: str, level: float = 0.95, heading: bool = True) -> str:
    """A side-by-side table (natural scale for ratios), the trials that entered or left, what crossed."""
    b, a = cmp["before"], cmp["after"]
    pct = f"{level * 100:g}%"

    def interval(d, lo, hi):
        return "-" if d[lo] is None or d[hi] is None else f"{_fmt(d[lo], scale)} to {_fmt(d[hi], scale)}"

    rows = [("k (trials)", str(b["k"]), str(a["k"])),
            (f"{measure}" + (" (natural scale)" if scale == "log" else ""), _fmt(b["estimate"], scale),
             _fmt(a["estimate"], scale)),
            (f"{pct} CI", interval(b, "ci_low", "ci_high"), interval(a, "ci_low", "ci_high")),
            ("tau^2", "-" if b["tau2"] is None else f"{b['tau2']:.4f}",
             "-" if a["tau2"] is None else f"{a['tau2']:.4f}"),
            ("I^2", "-" if b["i2"] is None else f"{b['i2']:.1f}%", "-" if a["i2"] is None else f"{a['i2']:.1f}%"),
            ("prediction interval", interval(b, "pi_low", "pi_high"), interval(a, "pi_low", "pi_high"))]
    head = ("", f"before ({ref})", "after (now)")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(3)]
    lines = [f"Compared with {ref}:", ""] if heading else []
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *rows]]
    lines.append("")
    lines.append("Trials entered: " + (", ".join(cmp["entered"]) or "none"))
    lines.append("Trials left: " + (", ".join(cmp["left"]) or "none"))
    if cmp["crossed"]:
        lines += ["Conclusions that changed:"] + [f"  - {c}" for c in cmp["crossed"]]
    else:
        lines.append("Conclusions that changed: none (CI and prediction interval on the same side of no effect, "
                     "same direction)")
    return "\n".join(lines)


def read_results(folder) -> dict:
    """{analysis name: pooled result JSON} of a report's results/<name>.json. The Bayesian (-bayes), trial
    sequential (-tsa), network (-nma) and multivariate (-mv) files beside them are other results, not
    pairwise pooled ones: left out (a TSA file read
    as a pooled result printed 'k (trials) None None' and 'Trials entered: none')."""
    folder = Path(folder) / "results"
    out = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        if path.stem.endswith(("-bayes", "-tsa", "-nma", "-mv")):
            continue
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            continue  # a damaged old file: nothing to compare with
        if isinstance(result, dict) and "k" in result and "studies" in result:
            out[path.stem] = result
    return out


def report_changes(old: dict, new: dict) -> list:
    """Analyses whose pooled result changed between two reports' results: [(name, compare dict)],
    plus analyses pooled in only one of them (the other side None)."""
    changes = []
    for name in sorted(set(old) | set(new)):
        if name not in old or name not in new:
            changes.append((name, None))
            continue
        before, after = summary(old[name]), summary(new[name])
        if before != after:
            changes.append((name, compare(before, after, scale=new[name].get("scale", "log"))))
    return changes


def report_changes_text(changes, old: dict, new: dict, where: str) -> str:
    """'Changes since the report in OUT' for the terminal: per changed analysis, the side-by-side table."""
    if not changes:
        return f"No pooled result changed since the report in {where}."
    parts = [f"Changes since the report in {where}:"]
    for name, cmp in changes:
        if cmp is None:
            parts.append(f"\n{name}: " + ("newly pooled" if name in new else "no longer pooled"))
            continue
        r = new[name]
        parts.append(f"\n{name}:\n" + compare_text(cmp, "previous report", r.get("measure", ""),
                                                     r.get("scale", "log"), r.get("level", 0.95), heading=False))
    return "\n".join(parts)
