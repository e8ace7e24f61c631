"""`hatmeta forest | funnel | table | sof | report | reproduce`: figures, tables and the report."""

from __future__ import annotations

import sys

import click

from ..errors import InputError


def _source_options(f):
    """The options that say what to pool: a bundled analysis, or a --data table."""
    for opt in reversed([
        click.argument("analysis", required=False),
        click.option("--data", "data_file", type=click.Path(dir_okay=False), help="A trial table (CSV)."),
        click.option("--measure", help="RR, OR, RD, MD, SMD, IRR or GEN (with --data)."),
        click.option("--method", help="Estimator (default: the spec's, or REML)."),
        click.option("--ci", type=click.Choice(["wald", "hksj"], case_sensitive=False)),
        click.option("--pi", type=click.Choice(["t", "z"], case_sensitive=False)),
        click.option("--subgroup", metavar="COL", help="Draw subgroup blocks by COL."),
        click.option("--benefit", type=click.Choice(["lower", "higher"]),
                     help="Which side favours the experimental arm (default: the spec's; 'lower' with --data)."),
        click.option("--labels", metavar="EXP,CTRL", help="Names of the two groups, e.g. 'HAT,Methadone'."),
    ]):
        f = opt(f)
    return f


def _pool(ctx, analysis, data_file, measure, method, ci, pi, subgroup, benefit, labels, **extra):
    """(result, benefit, (exp, ctrl) labels, title, study -> subgroup) for a figure or table."""
    from .. import api

    if (analysis is None) == (data_file is None):
        raise InputError("give either an analysis name (e.g. 'retention') or --data FILE", column="ANALYSIS")
    opts = {k: v for k, v in dict(method=method, ci=ci and ci.lower(), pi=pi and pi.lower(), subgroup=subgroup,
                                  **extra).items() if v}
    if data_file:
        table, measure = api.read_data(data_file, measure)
        res = api.pool_table(table, measure, **opts)
        names = ("experimental", "control")
        title, chosen = None, benefit or "lower"
    else:
        res, an = api.pool_analysis(analysis, data_dir=(ctx.obj or {}).get("data_dir"), measure=measure, **opts)
        table = an.table
        names = (an.spec.experimental_label, an.spec.control_label)
        title, chosen = an.spec.title, benefit or an.spec.benefit
    if labels:
        parts = [p.strip() for p in labels.split(",")]
        if len(parts) != 2 or not all(parts):
            raise InputError("--labels takes two names separated by a comma", column="--labels")
        names = tuple(parts)
    groups = dict(zip(table.studies, table.column(subgroup))) if subgroup else None
    return res, chosen, names, title, groups


def _out_path(out, default, fmt):
    from pathlib import Path

    path = Path(out) if out else Path(f"{default}.{fmt or 'png'}")
    return path, (fmt or path.suffix.lstrip(".") or "png")


def _bayes_options(f):
    for opt in reversed([
        click.option("--tau-prior", help="Prior on tau (default halfnormal:0.5)."),
        click.option("--mu-prior-sd", type=float, help="SD of the normal prior on mu (default 4, log scale)."),
    ]):
        f = opt(f)
    return f


@click.command()
@_source_options
@click.option("--bayes", is_flag=True, help="Overlay shrunken estimates, the posterior and the predictive interval.")
@_bayes_options
@click.option("--out", type=click.Path(dir_okay=False), help="File to write (default forest-ANALYSIS.png).")
@click.option("--format", "fmt", type=click.Choice(["png", "svg", "pdf"]), help="Default: from --out, else png.")
@click.option("--cumulative", metavar="COL", help="Draw the cumulative meta-analysis ordered by COL (e.g. year).")
@click.option("--leave-one-out", is_flag=True, help="Draw the leave-one-out analysis.")
@click.pass_context
def forest(ctx, analysis, data_file, measure, method, ci, pi, subgroup, benefit, labels, bayes, tau_prior,
           mu_prior_sd, out, fmt, cumulative=None, leave_one_out=False):
    """Forest plot of ANALYSIS (or --data FILE) in the Cochrane layout; with --cumulative COL or
    --leave-one-out, the sequence of refits as a forest plot."""
    from ..render import plots
    from ..api import pool_bayes

    if cumulative or leave_one_out:
        _sensitivity_forest(ctx, analysis, data_file, measure, method, ci, pi, subgroup, benefit, labels, bayes,
                            out, fmt, cumulative, leave_one_out)
        return

    res, chosen, names, title, groups = _pool(ctx, analysis, data_file, measure, method, ci, pi, subgroup,
                                              benefit, labels)
    post = pool_bayes(res, tau_prior, mu_prior_sd, benefit=chosen)[0].to_dict() if bayes else None
    path, fmt = _out_path(out, f"forest-{analysis or 'data'}", fmt)
    plots.save(plots.forest(res, benefit=chosen, labels=names, title=title, study_groups=groups, bayes=post),
               path, fmt)
    click.echo(str(path))


@click.command()
@_source_options
@_bayes_options
@click.option("--out", type=click.Path(dir_okay=False), help="File to write (default posterior-ANALYSIS.png).")
@click.option("--format", "fmt", type=click.Choice(["png", "svg", "pdf"]))
@click.pass_context
def posterior(ctx, analysis, data_file, measure, method, ci, pi, subgroup, benefit, labels, tau_prior,
              mu_prior_sd, out, fmt):
    """Posterior densities of mu and tau against their priors (exact Bayesian engine)."""
    from ..render import plots
    from ..api import pool_bayes

    res, chosen, _, title, _ = _pool(ctx, analysis, data_file, measure, method, ci, pi, subgroup, benefit, labels)
    post, _ = pool_bayes(res, tau_prior, mu_prior_sd, benefit=chosen)
    path, fmt = _out_path(out, f"posterior-{analysis or 'data'}", fmt)
    plots.save(plots.posterior(post, res.measure, res.scale, title=title), path, fmt)
    click.echo(str(path))


@click.command()
@_source_options
@click.option("--out", type=click.Path(dir_okay=False), help="File to write (default funnel-ANALYSIS.png).")
@click.option("--format", "fmt", type=click.Choice(["png", "svg", "pdf"]))
@click.pass_context
def funnel(ctx, analysis, data_file, measure, method, ci, pi, subgroup, benefit, labels, out, fmt):
    """Contour-enhanced funnel plot with Egger's line (needs at least 3 studies)."""
    from ..render import plots

    res, _, _, title, _ = _pool(ctx, analysis, data_file, measure, method, ci, pi, subgroup, benefit, labels,
                                small_study="egger")
    path, fmt = _out_path(out, f"funnel-{analysis or 'data'}", fmt)
    plots.save(plots.funnel(res, res.egger, title=title), path, fmt)
    click.echo(str(path))


@click.command()
@_source_options
@click.option("--format", "fmt", type=click.Choice(["markdown", "csv", "html", "latex"]), default="markdown",
              show_default=True)
@click.option("--level", type=float, default=0.95, show_default=True, help="Confidence level of the intervals.")
@click.pass_context
def table(ctx, analysis, data_file, measure, method, ci, pi, subgroup, benefit, labels, fmt, level=0.95):
    """Study-level and pooled results of ANALYSIS as a table."""
    from ..render import tables

    res, _, names, title, _ = _pool(ctx, analysis, data_file, measure, method, ci, pi, subgroup, benefit, labels,
                                    level=level)
    click.echo(tables.result_table(res, fmt, names, caption=title), nl=False)


@click.command()
@click.option("--format", "fmt", type=click.Choice(["markdown", "csv", "html", "latex"]), default="markdown",
              show_default=True)
@click.option("--threshold", type=float,
              help="Smallest important effect, natural scale (e.g. 1.25 for a ratio: 0.8 and 1.25), for the "
                   "imprecision suggestion.")
@click.pass_context
def sof(ctx, fmt, threshold):
    """Summary-of-findings table: one row per pooled analysis, with the GRADE ratings recorded."""
    from ..render import tables
    from ..api import pool_analysis
    from ..evidence import list_analyses

    data_dir = (ctx.obj or {}).get("data_dir")
    pooled, refused = [], []
    for name in sorted(list_analyses()):
        try:
            pooled.append(pool_analysis(name, data_dir=data_dir))
        except InputError as exc:
            refused.append((name, exc.message))
    rows = tables.summary_rows(pooled, refused, data_dir=data_dir, threshold=threshold)
    click.echo(tables.sof_table(rows, fmt, threshold), nl=False)
    for name, reason in refused:
        click.echo(f"not pooled: {name}: {reason.split(' (')[0]}", err=True)


@click.command()
@click.option("--out", type=click.Path(file_okay=False), default="reports", show_default=True)
@click.pass_context
def report(ctx, out):
    """Render every analysis (figures, tables, HTML pages, summary of findings) into OUT."""
    from ..methods.compare import read_results, report_changes, report_changes_text
    from ..render.report import build_report

    old = read_results(out)  # the report as it was (in a clean tree: the committed one)
    files = build_report(out, data_dir=(ctx.obj or {}).get("data_dir"))
    click.echo(f"{len(files)} files written to {out} (see {out}/index.html)")
    if old:
        new = read_results(out)
        click.echo(report_changes_text(report_changes(old, new), old, new, out))


@click.command()
@click.option("--reports", "folder", type=click.Path(file_okay=False), default="reports", show_default=True)
@click.pass_context
def reproduce(ctx, folder):
    """Regenerate every output in a temporary folder and compare with REPORTS; exit 1 if any differ."""
    from ..render.report import reproduce as run

    problems = run(folder, data_dir=(ctx.obj or {}).get("data_dir"))
    if not problems:
        click.echo(f"reproduced: every output in {folder} is byte-identical")
        return
    from ..render.report import NUMBERS

    for name, why in problems:
        click.echo(f"{folder}/{name}: {why}")
    numbers = sum(name.endswith(NUMBERS) for name, _ in problems)
    click.echo(f"{len(problems)} output(s) differ: {numbers} with numbers (JSON, CSV, Markdown, LaTeX), "
               f"{len(problems) - numbers} figures or pages", err=True)
    sys.exit(1)


def _sensitivity_forest(ctx, analysis, data_file, measure, method, ci, pi, subgroup, benefit, labels, bayes, out,
                        fmt, cumulative, leave_one_out):
    """`forest --cumulative COL` / `--leave-one-out`: hatmeta.render.plots.sensitivity."""
    from ..render.plots import save
    from ..render.plots.sensitivity import sensitivity_forest

    if cumulative and leave_one_out:
        raise InputError("draw one sequence at a time: --cumulative or --leave-one-out", option="--leave-one-out")
    for name, given in (("--subgroup", subgroup), ("--bayes", bayes)):
        if given:
            raise InputError(f"{name} does not apply to the cumulative or leave-one-out plot", option=name)
    extra = {"cumulative": cumulative} if cumulative else {"leave_one_out": True}
    res, chosen, names, title, _ = _pool(ctx, analysis, data_file, measure, method, ci, pi, None, benefit, labels,
                                         **extra)
    keys = None
    if cumulative:
        from .. import api

        if data_file:
            table = api.read_data(data_file, measure)[0]
        else:
            from ..evidence import load_analysis

            table = load_analysis(analysis, data_dir=(ctx.obj or {}).get("data_dir")).table
        keys = dict(zip(table.studies, table.column(cumulative)))
    kind = "cumulative" if cumulative else "leave_one_out"
    suffix = "cumulative" if cumulative else "leave-one-out"
    path, fmt = _out_path(out, f"forest-{analysis or 'data'}-{suffix}", fmt)
    save(sensitivity_forest(res, kind, benefit=chosen, labels=names, title=title, order_by=cumulative, keys=keys),
         path, fmt)
    click.echo(str(path))
