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
@click.option("--method", help="FE, MH, PETO, DL, REML (default), ML, PM, HE, SJ, EB, or a GLMM on the counts: "
              "GLMM-FS, GLMM-RS, GLMM-EXACT (metafor UM.FS, UM.RS, CM.EL).")
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
@click.option("--bayes", is_flag=True, help="Also fit the Bayesian normal-normal model (exact, no MCMC).")
@click.option("--tau-prior", help="Prior on tau: halfnormal:S (default 0.5), halfcauchy:S, uniform:A, "
              "lognormal:M,S (on tau^2) or turner:NAME.")
@click.option("--mu-prior-sd", type=float, help="SD of the N(0, SD^2) prior on mu (default 4 on the log scale).")
@click.option("--threshold", type=float, help="Report P(effect beyond THRESHOLD), natural scale (e.g. 1.25).")
@click.option("--benefit", type=_choice(["lower", "higher"]),
              help="Which direction favours treatment (default: the analysis spec's; 'lower' with --data).")
@click.option("--prior-sensitivity", is_flag=True, help="With --bayes: pool under several tau priors too.")
@click.option("--engine", type=_choice(["exact", "pymc"]), default="exact", show_default=True,
              help="exact: numerical integration; pymc: MCMC (needs pip install 'hatmeta[bayes]').")
@click.option("--likelihood", type=_choice(["normal", "binomial", "poisson"]), default="normal", show_default=True,
              help="With --engine pymc: binomial-normal (OR) for rare events, poisson (IRR) for rates.")
@click.option("--parameterisation", type=_choice(["marginal", "noncentred"]),
              help="With --engine pymc and the normal likelihood: sample (mu, tau) with the study effects "
              "integrated out (marginal, the default) or in the textbook non-centred form.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the MCMC draws.")
@click.option("--draws", type=int, default=1500, show_default=True, help="MCMC draws per chain (after tuning).")
@click.option("--save-trace", type=click.Path(dir_okay=False), help="Write the ArviZ InferenceData (netCDF).")
@click.option("--format", "fmt", type=_choice(FORMATS), default="text", show_default=True)
@click.option("--compare-methods", is_flag=True,
              help="Also pool with every method that suits the data (IV, MH, Peto, GLMMs), one row per method.")
@click.option("--methods-plot", type=click.Path(dir_okay=False),
              help="With --compare-methods: write the methods side by side as a figure (.png, .svg or .pdf).")
@click.pass_context
def pool(ctx, analysis, data_file, measure, method, ci, pi, level, cc, preset, leave_one_out, cumulative,
         subgroup, moderators, small_study, by, bayes, tau_prior, mu_prior_sd, threshold, benefit,
         prior_sensitivity, engine, likelihood, parameterisation, seed, draws, save_trace, fmt,
         compare_methods=False, methods_plot=None):
    """Pool a bundled analysis (retention, illicit-use, ...) or any trial table (--data FILE).

    Estimates are on the analysis scale (log for RR, OR, IRR) in JSON and CSV; text shows ratios
    on the natural scale too.
    """
    from .. import api

    if (analysis is None) == (data_file is None):
        raise InputError("give either an analysis name (e.g. 'retention') or --data FILE", column="ANALYSIS")
    options = dict(ci=(ci or "").lower() or None, pi=(pi or "").lower() or None, level=level, cc=cc,
                   preset=preset, leave_one_out=leave_one_out, cumulative=cumulative, subgroup=subgroup,
                   moderators=moderators, small_study=small_study)
    if methods_plot and not compare_methods:
        raise InputError("--methods-plot needs --compare-methods", column="--methods-plot")
    if compare_methods:
        options["compare_methods"] = True
    if method:
        options["method"] = method
    if data_file is not None:
        table, measure = api.read_data(data_file, measure)
        options = {k: v for k, v in options.items() if v is not None}
        if by:
            extras = [o for o in ("preset", "cumulative", "subgroup", "small_study", "compare_methods") if options.get(o)]
            if extras or leave_one_out or moderators:
                raise InputError("--by pools each group with the basic model only; drop "
                                 + ", ".join("--" + o.replace("_", "-") for o in extras or ["other options"]),
                                 column="--by")
            results = api.pool_by(table, by, measure, **{k: options[k] for k in ("method", "ci", "pi", "level", "cc")
                                                         if k in options})
            _emit_many(results, fmt)
            return
        result = api.pool_table(table, measure, **options)
        benefit = benefit or "lower"
    else:
        if by:
            raise InputError("--by works with --data tables", column="--by")
        result, an = api.pool_analysis(analysis, data_dir=ctx.obj.get("data_dir") if ctx.obj else None,
                                       measure=measure, **options)
        benefit = benefit or an.spec.benefit
    if not bayes and (tau_prior or mu_prior_sd is not None or threshold is not None or prior_sensitivity):
        raise InputError("--tau-prior, --mu-prior-sd, --threshold and --prior-sensitivity need --bayes",
                         column="--bayes")
    mcmc_only = engine.lower() != "exact" or likelihood.lower() != "normal" or save_trace or parameterisation
    if mcmc_only and not bayes:
        raise InputError("--engine, --likelihood, --parameterisation and --save-trace need --bayes", column="--bayes")
    if parameterisation and (engine.lower() != "pymc" or likelihood.lower() != "normal"):
        raise InputError("--parameterisation applies to --engine pymc with the normal likelihood",
                         column="--parameterisation")
    posterior = others = None
    if bayes and engine.lower() == "pymc":
        if prior_sensitivity:
            raise InputError("--prior-sensitivity uses the exact engine; drop --engine pymc", column="--engine")
        # A progress bar only for a person at a terminal, never in JSON output.
        posterior = api.pool_bayes_mcmc(result, likelihood=likelihood.lower(), tau_prior=tau_prior,
                                        mu_prior_sd=mu_prior_sd, threshold=threshold, benefit=benefit,
                                        level=level, seed=seed, draws=draws, save_trace=save_trace,
                                        progressbar=fmt != "json" and sys.stderr.isatty(),
                                        parameterisation=(parameterisation or "marginal").lower())
        for w in posterior.warnings:
            click.echo(f"warning: {w}", err=True)
    elif bayes:
        if likelihood.lower() != "normal" or save_trace:
            raise InputError("--likelihood binomial/poisson and --save-trace need --engine pymc", column="--engine")
        posterior, others = api.pool_bayes(result, tau_prior=tau_prior, mu_prior_sd=mu_prior_sd,
                                           threshold=threshold, benefit=benefit, level=level,
                                           prior_sensitivity=prior_sensitivity)
    if methods_plot:
        _methods_plot(result, methods_plot)
    _emit(result, fmt, posterior, others)


def _methods_plot(result, path):
    """Write the methods side by side (forest-style) to ``path``; the format follows the suffix."""
    from pathlib import Path

    from ..render import plots
    from ..render.plots.methods import methods_plot

    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    if fmt not in ("png", "svg", "pdf"):
        raise InputError(f"--methods-plot writes .png, .svg or .pdf, not .{fmt}", column="--methods-plot")
    plots.save(methods_plot(result), path, fmt)


def _emit(result, fmt, posterior=None, others=()):
    from ..render.text import bayes_text, to_csv, to_markdown

    if fmt == "json":
        out = result.to_dict()
        if posterior is not None:
            out["bayes"] = posterior.to_dict()
            if others:
                out["bayes"]["prior_sensitivity"] = [o.to_dict() for o in others]
        # Indented for people; above 1,000 studies compact, because indenting bypasses json's C encoder.
        indent = 2 if result.k <= 1000 else None
        click.echo(json.dumps(out, indent=indent, allow_nan=False))
    elif fmt == "csv":
        click.echo(to_csv([result]), nl=False)
    elif fmt == "markdown":
        click.echo(to_markdown(result), nl=False)
    else:
        click.echo(result.summary())
        if posterior is not None:
            click.echo("\n" + bayes_text(result, posterior, others))


def _emit_many(results, fmt):
    from ..render.text import to_csv

    out = sys.stdout
    if fmt == "json":
        out.writelines(line + "\n" for line in results.json_lines())
    elif fmt == "csv":
        out.write(to_csv(results))
    else:
        out.write("\n\n".join(r.summary() for r in results) + "\n")
