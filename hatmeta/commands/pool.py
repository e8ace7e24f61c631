"""`hatmeta pool`: pool a bundled analysis (`hatmeta pool retention`) or any trial table (`--data FILE`)."""

from __future__ import annotations

import json
import sys

import click

from ..errors import InputError

FORMATS = ("text", "json", "csv", "markdown")


def _choice(values):
    return click.Choice(values, case_sensitive=False)


@click.command()
@click.argument("analysis", required=False)
@click.option("--data", "data_file", type=click.Path(dir_okay=False), help="A trial table (CSV) to pool.")
@click.option("--measure", help="RR, OR, RD, MD, SMD, IRR or GEN (case-insensitive).")
@click.option("--method", help="FE, MH, PETO, DL, REML (default), ML, PM, HE, SJ or EB.")
@click.option("--ci", "ci", type=_choice(["wald", "hksj"]), help="CI for the mean: wald (default) or hksj.")
@click.option("--pi", "pi", type=_choice(["t", "z"]), help="Prediction interval: t on k-2 df (default) or z.")
@click.option("--level", type=float, default=0.95, show_default=True, help="Confidence level.")
@click.option("--cc", type=float, default=0.5, show_default=True, help="Zero-cell increment.")
@click.option("--preset", type=_choice(["revman"]), help="revman: RevMan 5 'M-H, Random'.")
@click.option("--leave-one-out", is_flag=True, help="Refit omitting each study in turn.")
@click.option("--cumulative", metavar="COL", help="Cumulative meta-analysis ordered by COL (e.g. year).")
@click.option("--subgroup", metavar="COL", help="Subgroup analysis by COL, with the test for differences.")
@click.option("--moderator", "moderators", metavar="COL", multiple=True, help="Meta-regression moderator (repeatable).")
@click.option("--small-study", type=_choice(["egger"]), help="Small-study test: egger.")
@click.option("--by", metavar="COL", help="Pool every group of rows (by COL) separately; one JSON object per line.")
@click.option("--format", "fmt", type=_choice(FORMATS), default="text", show_default=True)
@click.pass_context
def pool(ctx, analysis, data_file, measure, method, ci, pi, level, cc, preset, leave_one_out, cumulative,
         subgroup, moderators, small_study, by, fmt):
    """Pool ANALYSIS (e.g. retention) from the bundled extraction, or a trial table with --data.

    Estimates are on the analysis scale (log for RR, OR, IRR) in JSON and CSV; text shows ratios
    on the natural scale too.
    """
    from .. import api

    if (analysis is None) == (data_file is None):
        raise InputError("give either an analysis name (e.g. 'retention') or --data FILE", column="ANALYSIS")
    options = dict(ci=(ci or "").lower() or None, pi=(pi or "").lower() or None, level=level, cc=cc,
                   preset=preset, leave_one_out=leave_one_out, cumulative=cumulative, subgroup=subgroup,
                   moderators=moderators, small_study=small_study)
    if method:
        options["method"] = method
    if data_file is not None:
        if not measure:
            raise InputError("--measure is required with --data (RR, OR, RD, MD, SMD, IRR or GEN)",
                             column="--measure")
        from ..effects import normalise_measure
        from ..table import read_table

        measure = normalise_measure(measure)
        table = read_table(data_file, measure=measure)
        options = {k: v for k, v in options.items() if v is not None}
        if by:
            extras = [o for o in ("preset", "cumulative", "subgroup", "small_study") if options.get(o)]
            if extras or leave_one_out or moderators:
                raise InputError("--by pools each group with the basic model only; drop "
                                 + ", ".join("--" + o.replace("_", "-") for o in extras or ["other options"]),
                                 column="--by")
            results = api.pool_by(table, by, measure, **{k: options[k] for k in ("method", "ci", "pi", "level", "cc")
                                                         if k in options})
            _emit_many(results, fmt)
            return
        result = api.pool_table(table, measure, **options)
    else:
        if by:
            raise InputError("--by works with --data tables", column="--by")
        result, _ = api.pool_analysis(analysis, data_dir=ctx.obj.get("data_dir") if ctx.obj else None,
                                      measure=measure, **options)
    _emit(result, fmt)


def _emit(result, fmt):
    from ..report_text import to_csv, to_markdown

    if fmt == "json":
        # Indented for people; above 1,000 studies compact, because indenting bypasses json's C encoder.
        indent = 2 if result.k <= 1000 else None
        click.echo(json.dumps(result.to_dict(), indent=indent, allow_nan=False))
    elif fmt == "csv":
        click.echo(to_csv([result]), nl=False)
    elif fmt == "markdown":
        click.echo(to_markdown(result), nl=False)
    else:
        click.echo(result.summary())


def _emit_many(results, fmt):
    from ..report_text import to_csv

    out = sys.stdout
    if fmt == "json":
        out.writelines(line + "\n" for line in results.json_lines())
    elif fmt == "csv":
        out.write(to_csv(results))
    else:
        out.write("\n\n".join(r.summary() for r in results) + "\n")
