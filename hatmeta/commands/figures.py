"""`hatmeta forest | funnel | table | sof | report | reproduce`: figures, tables and the report."""

from __future__ import annotations

import sys

import click

from ..errors import InputError


def _source_opts(omit=()):
    """The options that say what to pool: a bundled analysis, or a --data table (less ``omit``)."""
    opts = [
        ("analysis", click.argument("analysis", required=False)),
        ("data", click.option("--data", "data_file", type=click.Path(dir_okay=False), help="A trial table (CSV).")),
        ("measure", click.option("--measure", help="RR, OR, RD, MD, SMD, IRR or GEN (with --data).")),
        ("method", click.option("--method", help="Estimator (default: the spec's, or REML).")),
        ("ci", click.option("--ci", type=click.Choice(["wald", "hksj"], case_sensitive=False))),
        ("pi", click.option("--pi", type=click.Choice(["t", "z"], case_sensitive=False))),
        ("subgroup", click.option("--subgroup", metavar="COL", help="Draw subgroup blocks by COL.")),
        ("benefit", click.option("--benefit", type=click.Choice(["lower", "higher"]),
                                 help="Which side favours the experimental arm (default: the spec's; 'lower' "
                                      "with --data).")),
        ("labels", click.option("--labels", metavar="EXP,CTRL",
                                help="Names of the two groups, e.g. 'HAT,Methadone' (long names wrap).")),
        ("title", click.option("--title", help="Title of the figure or table (default: the analysis's title, "
                                               "or the file name with --data).")),
    ]

    def decorate(f):
        for name, opt in reversed(opts):
            if name not in omit:
                f = opt(f)
        return f
    return decorate


_source_options = _source_opts()


def _pool(ctx, analysis, data_file, measure, method, ci, pi, subgroup, benefit, labels, title=None, **extra):
    """(result, benefit, (exp, ctrl) labels, title, study -> subgroup, table) for a figure or table."""
    from .. import api

    if (analysis is None) == (data_file is None):
        raise InputError("give either an analysis name (e.g. 'retention') or --data FILE", column="ANALYSIS")
    given_title = title
    opts = {k: v for k, v in dict(method=method, ci=ci and ci.lower(), pi=pi and pi.lower(), subgroup=subgroup,
                                  **extra).items() if v}
    if data_file:
        table, measure = api.read_data(data_file, measure)
        res = api.pool_table(table, measure, **opts)
        names = ("experimental", "control")
        from pathlib import Path

        from ..render.plots.forest import MEASURE_NAMES

        title = f"{Path(data_file).name}: {MEASURE_NAMES.get(res.measure, res.measure)}"
        chosen = benefit or "lower"
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
    if given_title is not None:
        title = given_title or None  # --title "" draws no title
    # For the caller: the rows pooled (--sort year reads another column) and whether --title was given.
    ctx.meta["hatmeta.table"], ctx.meta["hatmeta.title_given"] = table, given_title is not None
    return res, chosen, names, title, groups


def _risk_of_bias(res):
    from ..review.appraisal import risk_of_bias_of

    return risk_of_bias_of(res)


def _save(plots, figure_fn, path, fmt, **kwargs):
    """Draw and save a figure; warnings (a label no installed font draws) print as one 'warning:' line each."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plots.save(figure_fn(**kwargs), path, fmt)
    for w in dict.fromkeys(str(w.message) for w in caught):
        click.echo(f"warning: {w}", err=True)


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
@click.option("--sort", type=click.Choice(["weight", "effect", "year"]),
              help="Order of the studies in each block: weight (largest first), effect (smallest first) or year "
                   "(oldest first; needs a 'year' column). Default: as listed.")
@click.option("--level", type=float, help="Confidence level of the intervals (default 0.95).")
@click.option("--cumulative", metavar="COL", help="Draw the cumulative meta-analysis ordered by COL (e.g. year).")
@click.option("--leave-one-out", is_flag=True, help="Draw the leave-one-out analysis.")
@click.pass_context
def forest(ctx, analysis, data_file, measure, method, ci, pi, subgroup, benefit, labels, title, bayes, tau_prior,
           mu_prior_sd, out, fmt, sort, level, cumulative=None, leave_one_out=False):
    """Forest plot of ANALYSIS (or --data FILE) in the Cochrane layout; with --cumulative COL or
    --leave-one-out, the sequence of refits as a forest plot."""
    from ..render import plots
    from ..api import pool_bayes

    if cumulative or leave_one_out:
        _sensitivity_forest(ctx, analysis, data_file, measure, method, ci, pi, subgroup, benefit, labels, bayes,
                            out, fmt, cumulative, leave_one_out)
        return

    res, chosen, names, title, groups = _pool(ctx, analysis, data_file, measure, method, ci, pi, subgroup,
                                              benefit, labels, title, level=level)
    years = None
    if sort == "year":
        table = ctx.meta["hatmeta.table"]
        if "year" not in table.all_columns():
            raise InputError("--sort year needs a 'year' column in the table", column="--sort")
        years = dict(zip(table.studies, table.column("year")))
    post = pool_bayes(res, tau_prior, mu_prior_sd, benefit=chosen, level=res.level)[0].to_dict() if bayes else None
    path, fmt = _out_path(out, f"forest-{analysis or 'data'}", fmt)
    _save(plots, plots.forest, path, fmt, res=res, benefit=chosen, labels=names, title=title, study_groups=groups,
          bayes=post, sort=sort, years=years, risk_of_bias=_risk_of_bias(res))
    click.echo(str(path))


@click.command()
@_source_options
@_bayes_options
@click.option("--out", type=click.Path(dir_okay=False), help="File to write (default posterior-ANALYSIS.png).")
@click.option("--format", "fmt", type=click.Choice(["png", "svg", "pdf"]))
@click.pass_context
def posterior(ctx, analysis, data_file, measure, method, ci, pi, subgroup, benefit, labels, title, tau_prior,
              mu_prior_sd, out, fmt):
    """Posterior densities of mu and tau against their priors (exact Bayesian engine)."""
    from ..render import plots
    from ..api import pool_bayes

    res, chosen, _, title, _ = _pool(ctx, analysis, data_file, measure, method, ci, pi, subgroup, benefit, labels,
                                     title)
    post, _ = pool_bayes(res, tau_prior, mu_prior_sd, benefit=chosen)
    path, fmt = _out_path(out, f"posterior-{analysis or 'data'}", fmt)
    _save(plots, plots.posterior, path, fmt, post=post, measure=res.measure, scale=res.scale, title=title)
    click.echo(str(path))


@click.command()
@_source_opts(omit=("subgroup", "labels", "benefit"))
@click.option("--out", type=click.Path(dir_okay=False), help="File to write (default funnel-ANALYSIS.png).")
@click.option("--format", "fmt", type=click.Choice(["png", "svg", "pdf"]))
@click.option("--egger-line", is_flag=True,
              help="Draw Egger's regression line even with fewer than 10 studies (drawn from 10 on).")
@click.option("--trim-fill", is_flag=True, help="Draw the studies filled by trim-and-fill (L0) as open circles.")
@click.pass_context
def funnel(ctx, analysis, data_file, measure, method, ci, pi, title, out, fmt, egger_line, trim_fill=False):
    """Contour-enhanced funnel plot; Egger's line from 10 studies (needs at least 3 studies)."""
    from ..render import plots
    from ..render.plots.funnel import MIN_K_LINE

    res, _, _, title, _ = _pool(ctx, analysis, data_file, measure, method, ci, pi, None, None, None, title,
                                small_study="egger", trim_fill=trim_fill)
    if res.k < MIN_K_LINE:
        what = "drawn as asked (--egger-line)" if egger_line else "not drawn (--egger-line draws it)"
        click.echo(f"warning: {res.k} studies: funnel plot asymmetry tests have too little power below "
                   f"{MIN_K_LINE} studies (Cochrane Handbook 13.3.5.4); Egger's line {what}", err=True)
    path, fmt = _out_path(out, f"funnel-{analysis or 'data'}", fmt)
    _save(plots, plots.funnel, path, fmt, res=res, egger=res.egger, title=title, line=egger_line or None,
          filled=res.extra.get("trim_fill"))
    click.echo(str(path))


@click.command()
@_source_options
@click.option("--format", "fmt", type=click.Choice(["markdown", "csv", "html", "latex"]), default="markdown",
              show_default=True)
@click.option("--level", type=float, default=0.95, show_default=True, help="Confidence level of the intervals.")
@click.pass_context
def table(ctx, analysis, data_file, measure, method, ci, pi, subgroup, benefit, labels, title, fmt, level=0.95):
    """Study-level and pooled results of ANALYSIS as a table."""
    from ..render import tables

    res, _, names, title, _ = _pool(ctx, analysis, data_file, measure, method, ci, pi, subgroup, benefit, labels,
                                    title, level=level)
    if data_file and not ctx.meta["hatmeta.title_given"]:
        title = None  # a table's caption is the analysis title; a --data table has none unless --title
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
    from ..review import list_analyses

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
    from ..review.compare import read_results, report_changes, report_changes_text
    from ..review.report import build_report

    old = read_results(out)  # the report as it was (in a clean tree: the committed one)
    files = build_report(out, data_dir=(ctx.obj or {}).get("data_dir"), progress=_progress(True))
    click.echo(f"{len(files)} files written to {out} (see {out}/index.html)")
    if old:
        new = read_results(out)
        click.echo(report_changes_text(report_changes(old, new), old, new, out))


@click.command()
@click.option("--reports", "folder", type=click.Path(file_okay=False), default="reports", show_default=True)
@click.option("--keep", type=click.Path(file_okay=False), help="Regenerate into this (new or empty) folder and keep it.")
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
    from ..review.report import reproduce as run
    from ..review.verdict import TOLERANCE_TEXT

    text = fmt == "text"
    if text:
        from ..review.report import find_lock

        from pathlib import Path

        where = lock or find_lock(Path(folder))
        if where is None:
            click.echo("environment: no lock file found (requirements-reports.txt); versions not compared", err=True)
    verdict = run(folder, data_dir=(ctx.obj or {}).get("data_dir"), keep=keep, lock=lock,
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
            from ..review import load_analysis

            table = load_analysis(analysis, data_dir=(ctx.obj or {}).get("data_dir")).table
        keys = dict(zip(table.studies, table.column(cumulative)))
    kind = "cumulative" if cumulative else "leave_one_out"
    suffix = "cumulative" if cumulative else "leave-one-out"
    path, fmt = _out_path(out, f"forest-{analysis or 'data'}-{suffix}", fmt)
    save(sensitivity_forest(res, kind, benefit=chosen, labels=names, title=title, order_by=cumulative, keys=keys),
         path, fmt)
    click.echo(str(path))
