"""The review's own commands: `trials`, `validate`, `add-trial` (the extraction in data/extracted/), and
`sof`, `report`, `reproduce` (the summary of findings and the committed report).

All honour the global --data-dir (another copy of the extraction) and --analyses-dir.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import click

from ..errors import InputError

FORMATS = ("text", "json", "csv", "markdown")


def _data_dir(ctx):
    return (ctx.obj or {}).get("data_dir") if ctx is not None else None


def trial_summary(ex) -> list:
    """One dict per trial: trial, country, n_randomised, followup_weeks, outcomes (codes with figures)."""
    out = []
    for t in ex.trials:
        codes = sorted({r["outcome"] for r in ex.outcomes_of(t["trial"]) if r["status"] != "not reported"})
        n = t["n_randomised"]
        fu = t["followup_weeks"]
        out.append({"trial": t["trial"], "country": t["country"],
                    "n_randomised": int(float(n)) if n else None,
                    "followup_weeks": (int(float(fu)) if float(fu).is_integer() else float(fu)) if fu else None,
                    "outcomes": codes})
    return out


@click.command()
@click.option("--format", "fmt", type=click.Choice(FORMATS, case_sensitive=False), default="text",
              show_default=True)
@click.pass_context
def trials(ctx, fmt):
    """List the trials: country, randomised N, follow-up and the outcomes each contributes."""
    from . import load_extraction

    rows = trial_summary(load_extraction(_data_dir(ctx)))
    fmt = fmt.lower()
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    header = ["trial", "country", "N", "follow-up (weeks)", "outcomes"]
    cells = [[r["trial"], r["country"], "" if r["n_randomised"] is None else str(r["n_randomised"]),
              "" if r["followup_weeks"] is None else str(r["followup_weeks"]), " ".join(r["outcomes"])]
             for r in rows]
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["trial", "country", "n_randomised", "followup_weeks", "outcomes"])
        from ..csvsafe import rows as safe_rows  # spreadsheet formulas neutralised (hatmeta/csvsafe.py)

        writer.writerows(safe_rows(cells))
        click.echo(buf.getvalue(), nl=False)
        return
    from ..printable import printable  # a label's control characters and bidi overrides, escaped

    cells = [[printable(c) for c in row] for row in cells]
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
        click.echo("\n".join(lines))
    else:
        widths = [max(len(str(x)) for x in col) for col in zip(header, *cells)]
        for row in [header, *cells]:
            click.echo("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())


@click.command()
@click.pass_context
def validate(ctx):
    """Check the extraction: every problem on one line (file:line: column 'x': message); exit 2 on any."""
    from . import load_extraction, validate_extraction

    data_dir = _data_dir(ctx)
    errors = validate_extraction(data_dir)
    if errors:
        for err in errors:
            click.echo(str(err), err=True)
        click.echo(f"{len(errors)} problem(s) found", err=True)
        sys.exit(2)
    ex = load_extraction(data_dir)
    click.echo(f"ok: {len(ex.trials)} trials, {len(ex.arms)} arms, {len(ex.outcomes)} outcome rows, "
               f"{len(ex.discrepancies)} discrepancies in {ex.data_dir}")


@click.command("add-trial")
@click.option("--from", "sources", multiple=True, type=click.Path(exists=True),
              help="A folder holding the new trial's trials.csv, arms.csv and outcomes.csv (and "
                   "discrepancies.csv), or those files (any names: recognised by their header); comma-, "
                   "semicolon- or tab-separated. Repeatable. Without it, the rows are asked for one by one.")
@click.option("--dry-run", is_flag=True, help="Validate and show what would be appended; write nothing.")
@click.pass_context
def add_trial(ctx, sources, dry_run):
    """Add a new trial (its trials row, arms and outcomes). Validates the whole would-be extraction first,
    lists every problem, refuses duplicates, appends only the new lines and writes atomically. Then says
    which analyses the trial enters and which not, with the criterion it fails."""
    from .extraction import default_data_dir
    from .write import add_trial as append, check_new_rows, read_new_rows, size_warnings

    data_dir = _data_dir(ctx)
    errors: list = []
    new = read_new_rows(sources, errors) if sources else _prompt_rows()
    if not errors:
        errors = check_new_rows(data_dir if data_dir is not None else default_data_dir(), new)[0]
    if errors:
        for err in errors:
            click.echo(str(err), err=True)
        click.echo(f"{len(errors)} problem(s) found; nothing written", err=True)
        sys.exit(2)
    if dry_run:
        from .write import would_be_extraction

        # Place the trial on the would-be extraction in memory: a killed dry run leaves no copy behind.
        added = append(new, data_dir=data_dir, dry_run=True)
        places = _placement(ctx, new, data_dir, would_be_extraction(new, data_dir))
    else:
        added = append(new, data_dir=data_dir)
        places = _placement(ctx, new, data_dir)
    verb = "would append" if dry_run else "appended"
    click.echo(f"{verb}: " + ", ".join(f"{n} row(s) to {name}" for name, n in added.items()))
    for w in size_warnings(new):
        click.echo(f"warning: {w}", err=True)
    _echo_placement(places)


def _placement(ctx, new, data_dir, extraction=None):
    from .analysis import placement

    ids = [r["trial"] for r in new.get("trials.csv", ())]
    return placement(ids, data_dir=data_dir, analyses_dir=(ctx.obj or {}).get("analyses_dir"), extraction=extraction)


def _echo_placement(places):
    """'enters retention: dam vs mmt, 52 weeks, ...' / 'not in crime: <criterion>: <why>', per trial."""
    trials = list(dict.fromkeys(t for _, t, _, _ in places))
    for trial in trials:
        mine = [p for p in places if p[1] == trial]
        entered = [p for p in mine if p[2]]
        click.echo(f"{trial} enters {len(entered)} of {len(mine)} analyses:")
        for name, _, ok, reason in sorted(mine, key=lambda p: (not p[2], p[0])):
            click.echo(f"  {'enters ' if ok else 'not in '} {name}: {reason}")


# ---------------------------------------------------------------- guided entry


def _ask(text, default="", choices=None, required=False):
    """One answer; an empty answer is allowed unless ``required`` (then asked again)."""
    kind = click.Choice(choices) if choices else str
    while True:
        value = click.prompt(text, default=default, show_default=bool(default), type=kind).strip()
        if value or not required:
            return value
        click.echo("  required", err=True)


def _prompt_rows() -> dict:
    """Ask for a trials row, its arms and its outcome rows; returns {file name: [Row]}."""
    from .standardise import percent_to_count
    from .write import rows_from_dicts

    click.echo("New trial (empty answer = not applicable / not reported).")
    t = {"trial": _ask("trial id (e.g. smith2024)", required=True)}
    for key, text in [("short_name", "short name"), ("country", "country"), ("sites", "sites"),
                      ("authors", "authors (e.g. Smith J, Jones K)"), ("journal", "journal"), ("year", "year"),
                      ("volume", "volume"), ("pages", "pages"), ("doi", "DOI"), ("pmid", "PMID"),
                      ("registry", "registry id")]:
        t[key] = _ask(text, required=key in ("country", "year"))
    t["blinding"] = _ask("blinding", "open", ["open", "double-blind"])
    t["hypothesis"] = _ask("hypothesis", "superiority", ["superiority", "non-inferiority"])
    t["route"] = _ask("route", "injected", ["injected", "inhaled"])
    t["n_randomised"] = _ask("randomised N")
    t["followup_weeks"] = _ask("follow-up (weeks)")
    t["itt"] = _ask("intention to treat", "yes", ["yes", "no", "partial"])
    t["source"] = _ask("source of these facts (publication + place)", required=True)
    t["notes"] = _ask("notes")

    arms = []
    while click.confirm(f"Add an arm to {t['trial']}?", default=not arms):
        arms.append({"trial": t["trial"], "arm": _ask("  arm code (dam, dam_inh, mmt, sim, hdm, conventional, ...)",
                                                      required=True),
                     "description": _ask("  description"),
                     "role": _ask("  role", "experimental" if not arms else "control",
                                  ["experimental", "control", "other"]),
                     "n_randomised": _ask("  randomised N"),
                     "source": _ask("  source", t["source"]), "note": _ask("  note")})
    outcomes = []
    arm_codes = [a["arm"] for a in arms] or ["dam"]
    while click.confirm(f"Add an outcome row to {t['trial']}?", default=False):
        o = {"trial": t["trial"], "outcome": _ask("  outcome code (retention, illicit_use, crime, mortality, sae, ...)",
                                                  required=True),
             "definition": _ask("  definition (the trial's own, condensed)"),
             "arm": _ask("  arm", arm_codes[0], arm_codes),
             "timepoint_weeks": _ask("  time point (weeks)")}
        status = _ask("  status", "reported", ["reported", "derived", "not reported"])
        o["status"], o["derivation"] = status, ""
        if status != "not reported":
            kind = _ask("  kind of figure", "binary", ["binary", "continuous", "rates"])
            if kind == "binary":
                o["n"] = _ask("  n", required=True)
                events = _ask("  events (a count, or a percentage such as 67.2%)", required=True)
                if events.endswith("%"):
                    try:
                        count, how = percent_to_count(float(events[:-1]), int(float(o["n"])))
                    except ValueError as exc:
                        raise InputError(str(exc), file="<prompt> outcomes.csv", column="events") from None
                    o["events"], o["status"], o["derivation"] = str(count), "derived", how
                    click.echo(f"  -> {how} (status 'derived')")
                else:
                    o["events"] = events
            elif kind == "continuous":
                o["n"], o["mean"], o["sd"] = (_ask(f"  {k}", required=True) for k in ("n", "mean", "sd"))
            else:
                o["count"] = _ask("  count", required=True)
                o["person_time"] = _ask("  person-time (person-years)", required=True)
            if o["status"] == "derived" and not o["derivation"]:
                o["derivation"] = _ask("  derivation (how it was computed)", required=True)
        o["source"] = _ask("  source (publication + table, figure, page or abstract)", required=True)
        o["note"] = _ask("  note" + (" (where you looked)" if status == "not reported" else ""),
                         required=status == "not reported")
        outcomes.append(o)
    new = {"trials.csv": rows_from_dicts("trials.csv", [t]), "arms.csv": rows_from_dicts("arms.csv", arms)}
    if outcomes:
        new["outcomes.csv"] = rows_from_dicts("outcomes.csv", outcomes)
    if not click.confirm(f"Write {1 + len(arms) + len(outcomes)} row(s)?", default=True):
        raise click.exceptions.Abort()
    return new


@click.command()
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "csv", "html", "latex"]), default="text",
              show_default=True, help="text: one block per outcome, wrapped at 80 columns; markdown: the table.")
@click.option("--threshold", type=float,
              help="Smallest important effect, natural scale (e.g. 1.25 for a ratio: 0.8 and 1.25), for the "
                   "imprecision suggestion.")
@click.option("--data", "data_file", type=click.Path(),
              help="A RevMan review (.rm5, data package, analyses CSV): one row per outcome, pooled with the "
                   "review's stored settings, instead of the heroin-assisted treatment review.")
@click.pass_context
def sof(ctx, fmt, threshold, data_file=None):
    """Summary-of-findings table: one row per pooled analysis, with the GRADE ratings recorded."""
    if data_file is not None:
        if threshold is not None:
            raise InputError("--threshold applies to the bundled review's summary of findings, not to --data",
                             option="--threshold")
        from ..commands.revman_sof import revman_sof

        click.echo(revman_sof(data_file, fmt), nl=False)
        return
    from . import list_analyses
    from .api import pool_analysis
    from .sof import sof_table, sof_text, summary_rows

    data_dir = (ctx.obj or {}).get("data_dir")
    pooled, refused = [], []
    analyses_dir = (ctx.obj or {}).get("analyses_dir")
    for name in sorted(list_analyses(analyses_dir)):
        try:
            pooled.append(pool_analysis(name, data_dir=data_dir, analyses_dir=analyses_dir))
        except InputError as exc:
            refused.append((name, exc.message))
    rows = summary_rows(pooled, refused, data_dir=data_dir, analyses_dir=analyses_dir, threshold=threshold)
    click.echo(sof_text(rows, threshold) if fmt == "text" else sof_table(rows, fmt, threshold), nl=False)
    for name, reason in refused:
        click.echo(f"not pooled: {name}: {reason.split(' (')[0]}", err=True)


def _progress(enabled):
    """One line per analysis on stderr when it is a terminal (nothing in pipes, logs or JSON mode)."""
    if not (enabled and sys.stderr.isatty()):
        return None

    def show(i, n, name):
        click.echo(f"[{i}/{n}] {name}", err=True)

    return show


@click.command()
@click.option("--out", type=click.Path(file_okay=False), default="reports", show_default=True)
@click.pass_context
def report(ctx, out):
    """Render every analysis (figures, tables, HTML pages, summary of findings) into OUT."""
    from .compare import read_results, report_changes, report_changes_text
    from .report import build_report

    old = read_results(out)  # the report as it was (in a clean tree: the committed one)
    files = build_report(out, data_dir=(ctx.obj or {}).get("data_dir"),
                         analyses_dir=(ctx.obj or {}).get("analyses_dir"), progress=_progress(True))
    click.echo(f"{len(files)} files written to {out} (see {out}/index.html)")
    if old:
        new = read_results(out)
        click.echo(report_changes_text(report_changes(old, new), old, new, out))


@click.command()
@click.option("--reports", "folder", type=click.Path(file_okay=False), default="reports", show_default=True)
@click.option("--keep", type=click.Path(file_okay=False),
              help="Regenerate into this (new or empty) folder and keep it.")
@click.option("--lock", type=click.Path(dir_okay=False, exists=True),
              help="Lock file of the reports' environment (default: requirements-reports.txt beside REPORTS).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def reproduce(ctx, folder, keep, lock, fmt):
    """Regenerate every output and compare with REPORTS, in three levels.

    \b
    exit 0  (a) every file byte-identical
    exit 3  (b) numbers agree within the output tolerance and differing figures are drawn from
                the same numbers: the rendering differs (environment differences are named)
    exit 1  (c) a number differs (file, field and both values are named), or a file is
                missing, new or edited
    """
    from .report import reproduce as run
    from .verdict import TOLERANCE_TEXT

    text = fmt == "text"
    if text:
        from pathlib import Path

        from .report import find_lock

        where = lock or find_lock(Path(folder))
        if where is None:
            click.echo("environment: no lock file found (requirements-reports.txt); versions not compared", err=True)
    verdict = run(folder, data_dir=(ctx.obj or {}).get("data_dir"), analyses_dir=(ctx.obj or {}).get("analyses_dir"),
                  keep=keep, lock=lock,
                  progress=_progress(text))
    if not text:
        from ..precision import dumps

        click.echo(dumps(verdict.to_dict()))
        sys.exit(verdict.exit_code)
    for line in verdict.environment:
        click.echo(f"environment: {line}")
    if verdict.lock and not verdict.environment:
        click.echo(f"environment: every package at the version of {verdict.lock}")
    for f in verdict.findings:
        click.echo(f"{folder}/{f.file}: ({f.level}) {f.message}")
    kept = f"; regenerated tree kept in {verdict.kept}" if verdict.kept else ""
    n = len(verdict.findings)
    if verdict.level == "a":
        click.echo(f"level (a): every output in {folder} is byte-identical{kept}")
    elif verdict.level == "b":
        why = ("explained by the environment differences above" if verdict.environment else
               "no locked package differs, so the platform's build (FreeType, Agg, compiler) renders differently")
        click.echo(f"level (b): {n} output(s) differ in their bytes only; every number agrees ({TOLERANCE_TEXT}) and "
                   f"every differing figure is drawn from the same numbers; {why}{kept}", err=True)
    else:
        bad = sum(f.level == "c" for f in verdict.findings)
        click.echo(f"level (c): {bad} output(s) differ in numbers or content ({n} differ in all){kept}", err=True)
    sys.exit(verdict.exit_code)


INIT_README = """# A working copy of the HAT review

Made by `hatmeta init` from hatmeta {version}. `hatmeta` commands run in this folder (or below it) use
these files instead of the copy bundled with the package:

- `data/extracted/`: the extraction (trials, arms, outcomes with their sources; see its README.md).
  Add a trial with `hatmeta add-trial --from new/`; check it with `hatmeta validate`.
- `analyses/`: one specification per analysis (`hatmeta pool <name>`); see analyses/README.md.

Keep this folder under version control (`git init && git add . && git commit -m "start"`) so that
`hatmeta pool retention --compare HEAD~1` shows what a new trial changed.
"""


@click.command()
@click.argument("folder", type=click.Path(file_okay=False))
@click.pass_context
def init(ctx, folder):
    """Write a working copy of the review into FOLDER: data/extracted/, analyses/ and a README.

    FOLDER must be new or empty. The copy is taken from --data-dir / --analyses-dir if given, else from
    the project found from here (a clone), else from the copy bundled with the package.
    """
    import shutil

    from .. import __version__
    from .extraction import default_data_dir
    from .spec import default_analyses_dir

    out = Path(folder)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError("folder exists and is not empty: choose a new folder", file=str(out))
    data_dir = Path(_data_dir(ctx) or default_data_dir())
    analyses_dir = Path((ctx.obj or {}).get("analyses_dir") or default_analyses_dir())
    for src, what in ((data_dir, "extraction"), (analyses_dir, "analysis specs")):
        if not src.is_dir():
            raise InputError(f"no {what} found to copy", file=str(src))
    tmp = out.with_name(f".{out.name}.init-tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        (tmp / "data").mkdir(parents=True)
        for src, dst, patterns in ((data_dir, tmp / "data" / "extracted", ("*.csv", "README.md")),
                                   (analyses_dir, tmp / "analyses", ("*.toml", "README.md")),
                                   (analyses_dir / "networks", tmp / "analyses" / "networks", ("*.toml",))):
            if not src.is_dir():
                continue  # no network specs to copy
            dst.mkdir()
            for pattern in patterns:
                for path in sorted(src.glob(pattern)):
                    shutil.copyfile(path, dst / path.name)
        (tmp / "README.md").write_text(INIT_README.format(version=__version__), encoding="utf-8")
        if out.exists():
            out.rmdir()  # empty: replaced whole by the finished copy
        tmp.rename(out)  # the copy appears complete or not at all
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise InputError(f"cannot write the working copy: {exc.strerror or exc}", file=str(out)) from None
    n_data = len(list((out / "data" / "extracted").iterdir()))
    n_specs = len(list((out / "analyses").glob("*.toml")))
    click.echo(f"wrote {out}: data/extracted/ ({n_data} files), analyses/ ({n_specs} specs), README.md")
    click.echo(f"next: cd {out} && hatmeta pool retention")
