"""`hatmeta forest | funnel | posterior | table`: figures and tables of a named analysis or a --data table."""

from __future__ import annotations

import click

from ..errors import InputError
from . import mvforest as _mvforest  # forest --random (issue 23): a multilevel model's forest plot


def _keep_outcome(ctx, param, value):
    """--outcome reaches ``_pool`` through the context (the commands' signatures stay as they are)."""
    ctx.meta["hatmeta.outcome"] = value
    return value


def _source_opts(omit=()):
    """The options that say what to pool: a bundled analysis, or a --data table (less ``omit``)."""
    opts = [
        ("analysis", click.argument("analysis", required=False)),
        ("data", click.option("--data", "data_file", type=click.Path(dir_okay=False), help="A trial table (CSV), "
                              "or a RevMan review (.rm5, data package, analyses CSV) with --outcome.")),
        ("outcome", click.option("--outcome", metavar="ID", expose_value=False, callback=_keep_outcome,
                                 help="With --data FILE.rm5: the RevMan outcome (e.g. CMP-001.01), pooled with "
                                      "the review's stored settings.")),
        ("measure", click.option("--measure", help="RR, OR, RD, MD, SMD, IRR or GEN (with --data).")),
        ("method", click.option("--method", help="Estimator (default: the spec's, or REML).")),
        ("ci", click.option("--ci", type=click.Choice(["wald", "hksj"], case_sensitive=False))),
        ("pi", click.option("--pi", type=click.Choice(["t", "z", "metafor"], case_sensitive=False),
                            help="Prediction interval: t on k-2 df (default), z, or metafor's predict().")),
        ("subgroup", click.option("--subgroup", metavar="COL", help="Draw subgroup blocks by COL.")),
        ("benefit", click.option("--benefit", type=click.Choice(["lower", "higher"]),
                                 help="Which side favours the experimental arm (default: the spec's; 'lower' "
                                      "with --data).")),
        ("labels", click.option("--labels", metavar="EXP,CTRL",
                                help="Names of the two groups, e.g. 'Vaccine,Control' (long names wrap).")),
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
    from .named import analyses, source

    source(analysis, data_file)
    given_title = title
    opts = {k: v for k, v in dict(method=method, ci=ci and ci.lower(), pi=pi and pi.lower(), subgroup=subgroup,
                                  **extra).items() if v}
    from ..io.revman_source import wants_review

    if wants_review(data_file, ctx.meta.get("hatmeta.outcome")):  # a RevMan review's outcome: its stored analysis
        from ..io.revman_source import outcome_source
        from .revman import pool_rm5

        src = outcome_source(data_file, ctx.meta.get("hatmeta.outcome"), measure)
        res = pool_rm5(src.review, src.outcome.id, measure, opts)
        table, names, title, chosen = src.table, src.labels, src.title, benefit or "lower"
        subgroup = src.options["subgroup"]
        ctx.meta["hatmeta.risk_of_bias"] = src.risk_of_bias or None
        if src.outcome.totals == "NO":  # drawn, but said: the review's authors chose to show no total
            click.echo(f"warning: the review shows no total for {src.outcome.id} (RevMan's TOTALS=NO); the "
                       "total drawn is hatmeta's, with the stored method", err=True)
    elif data_file:
        table, measure = api.read_data(data_file, measure)
        res = api.pool_table(table, measure, **opts)
        names = ("experimental", "control")
        from pathlib import Path

        from ..vocabulary import MEASURE_TITLES

        title = f"{Path(data_file).name}: {MEASURE_TITLES.get(res.measure, res.measure)}"
        chosen = benefit or "lower"
        ctx.meta["hatmeta.risk_of_bias"] = None
    else:
        named = analyses(ctx).pool(analysis, measure=measure, **opts)
        res, table, names = named.result, named.table, named.labels
        title, chosen = named.title, benefit or named.benefit
        ctx.meta["hatmeta.risk_of_bias"] = named.risk_of_bias
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


def _risk_of_bias(ctx):
    """The risk-of-bias judgements of the named analysis just pooled (None for a --data table)."""
    return ctx.meta.get("hatmeta.risk_of_bias")


def _save(plots, figure_fn, path, fmt, **kwargs) -> None:
    """Draw and save a figure; warnings (a label no installed font draws) print as one 'warning:' line each."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plots.save(figure_fn(**kwargs), path, fmt)
    # What the user can act on (a label no font draws); libraries' deprecation notices are not theirs.
    shown = (w for w in caught if not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning)))
    for w in dict.fromkeys(str(w.message) for w in shown):
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
@click.option("--preset", type=click.Choice(["revman5", "revman", "revman-web"], case_sensitive=False),
              help="Pool as RevMan does (as hatmeta pool --preset): revman5 (alias revman) or revman-web.")
@_mvforest.options
@click.pass_context
def forest(ctx, analysis, data_file, measure, method, ci, pi, subgroup, benefit, labels, title, bayes, tau_prior,
           mu_prior_sd, out, fmt, sort, level, cumulative=None, leave_one_out=False, preset=None, random=(),
           struct=None, v_cov_cluster=None, v_rho=None, v_columns=None, moderators=(), mv_test=None):
    """Forest plot of ANALYSIS (or --data FILE) in the Cochrane layout; with --cumulative COL or
    --leave-one-out, the sequence of refits as a forest plot; with --random, a multilevel model's effects
    grouped by cluster."""
    from ..api import pool_bayes
    from ..render import plots

    if _mvforest.wanted(dict(random=random, struct=struct, v_cov_cluster=v_cov_cluster, v_rho=v_rho,
                             v_columns=v_columns, moderators=moderators, mv_test=mv_test)):
        _mvforest.run({**ctx.params})
        return

    if (cumulative or leave_one_out) and preset:
        raise InputError("--preset draws the pooled forest plot, not the cumulative or leave-one-out one",
                         option="--preset")
    if cumulative or leave_one_out:
        _sensitivity_forest(ctx, analysis, data_file, measure, method, ci, pi, subgroup, benefit, labels, bayes,
                            out, fmt, cumulative, leave_one_out)
        return

    res, chosen, names, title, groups = _pool(ctx, analysis, data_file, measure, method, ci, pi, subgroup,
                                              benefit, labels, title, level=level,
                                              preset=preset.lower() if preset else None)
    years = None
    if sort == "year":
        table = ctx.meta["hatmeta.table"]
        if "year" not in table.all_columns():
            raise InputError("--sort year needs a 'year' column in the table", column="--sort")
        years = dict(zip(table.studies, table.column("year")))
    post = pool_bayes(res, tau_prior, mu_prior_sd, benefit=chosen, level=res.level)[0].to_dict() if bayes else None
    path, fmt = _out_path(out, f"forest-{analysis or 'data'}", fmt)
    _save(plots, plots.forest, path, fmt, res=res, benefit=chosen, labels=names, title=title, study_groups=groups,
          bayes=post, sort=sort, years=years, risk_of_bias=_risk_of_bias(ctx))
    click.echo(str(path))


@click.command()
@_source_options
@_bayes_options
@click.option("--out", type=click.Path(dir_okay=False), help="File to write (default posterior-ANALYSIS.png).")
@click.option("--format", "fmt", type=click.Choice(["png", "svg", "pdf"]))
@click.pass_context
def posterior(ctx, analysis, data_file, measure, method, ci, pi, subgroup, benefit, labels, title, tau_prior,
              mu_prior_sd, out, fmt) -> None:
    """Posterior densities of mu and tau against their priors (exact Bayesian engine)."""
    from ..api import pool_bayes
    from ..render import plots

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
def funnel(ctx, analysis, data_file, measure, method, ci, pi, title, out, fmt, egger_line,
           trim_fill: bool = False) -> None:
    """Contour-enhanced funnel plot; Egger's line from 10 studies (needs at least 3 studies)."""
    from ..render import plots
    from ..render.plots.funnel import MIN_K_LINE

    res, _, _, title, _ = _pool(ctx, analysis, data_file, measure, method, ci, pi, None, None, None, title,
                                small_study="egger", trim_fill=trim_fill)
    if res.k < MIN_K_LINE:
        what = "drawn as asked (--egger-line)" if egger_line else "not drawn (--egger-line draws it)"
        click.echo(f"warning: {res.k} studies: funnel plot asymmetry tests have too little power below "
                   f"{MIN_K_LINE} studies (Cochrane Handbook 13.3.5.4); Egger's line {what}", err=True)
    filled = res.extra.get("trim_fill")
    if trim_fill and filled is not None and not filled.k0:
        click.echo(f"note: trim-and-fill ({filled.estimator}) filled no studies; the legend says so", err=True)
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
def table(ctx, analysis, data_file, measure, method, ci, pi, subgroup, benefit, labels, title, fmt, level=0.95) -> None:
    """Study-level and pooled results of ANALYSIS as a table."""
    from ..render import tables

    res, _, names, title, _ = _pool(ctx, analysis, data_file, measure, method, ci, pi, subgroup, benefit, labels,
                                    title, level=level)
    if data_file and not ctx.meta["hatmeta.title_given"]:
        title = None  # a table's caption is the analysis title; a --data table has none unless --title
    click.echo(tables.result_table(res, fmt, names, caption=title), nl=False)



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
        if data_file:
            table = ctx.meta["hatmeta.table"]  # the rows _pool read (a --data table or a RevMan outcome)
        else:
            from .named import analyses

            table = analyses(ctx).table(analysis)
        keys = dict(zip(table.studies, table.column(cumulative)))
    kind = "cumulative" if cumulative else "leave_one_out"
    suffix = "cumulative" if cumulative else "leave-one-out"
    path, fmt = _out_path(out, f"forest-{analysis or 'data'}-{suffix}", fmt)
    save(sensitivity_forest(res, kind, benefit=chosen, labels=names, title=title, order_by=cumulative, keys=keys),
         path, fmt)
    click.echo(str(path))
