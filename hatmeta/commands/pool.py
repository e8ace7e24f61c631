"""`hatmeta pool`: pool a bundled analysis (`hatmeta pool retention`) or any trial table (`--data FILE`)."""

from __future__ import annotations

import sys

import click

from ..errors import InputError
from . import multilevel as _mv  # --random / --cluster / --robust (issue 23): options and the hand-over

FORMATS = ("text", "json", "csv", "markdown")


def _choice(values):
    return click.Choice(values, case_sensitive=False)


@click.command()
@click.argument("analysis", required=False)
@click.option("--data", "data_file", type=click.Path(),
              help="A trial table to pool: CSV, or Parquet (a file, a folder or a glob).")
@click.option("--measure", help="RR, OR, RD, MD, SMD, IRR, GEN, HR, ROM, IRD, PR, PLO, PFT, COR or ZCOR "
              "(case-insensitive).")
@click.option("--method", help="FE, MH, PETO, DL, REML (default), ML, PM, HE, SJ, EB, or a GLMM on the counts: "
              "GLMM-FS, GLMM-RS, GLMM-EXACT (metafor UM.FS, UM.RS, CM.EL).")
@click.option("--ci", "ci", type=_choice(["wald", "hksj"]), help="CI for the mean: wald (default) or hksj.")
@click.option("--pi", "pi", type=_choice(["t", "z", "metafor"]),
              help="Prediction interval: t on k-2 df (default; Higgins et al. 2009), z, or metafor's predict() "
                   "(z after a Wald test, t on k-1 df after HKSJ).")
@click.option("--level", type=float, default=0.95, show_default=True, help="Confidence level.")
@click.option("--cc", type=float, default=0.5, show_default=True, help="Zero-cell increment.")
@click.option("--preset", type=_choice(["revman5", "revman", "revman-web"]),
              help="revman5: RevMan 5 exactly (--method MH, MH-DL, FE, IV-DL, PETO; default DL: M-H, Random for "
              "counts, IV, Random otherwise); revman: alias of revman5; revman-web: RevMan Web's REML, HKSJ, "
              "Q-profile CI for tau^2, prediction interval and I^2 from tau^2.")
@click.option("--outcome", metavar="ID", help="With --data FILE.rm5: the RevMan outcome to pool (e.g. CMP-001.01; "
              "`hatmeta revman FILE` lists them), with the review's stored settings.")
@click.option("--leave-one-out", is_flag=True, help="Refit omitting each study in turn.")
@click.option("--cumulative", metavar="COL", help="Cumulative meta-analysis ordered by COL (e.g. year).")
@click.option("--subgroup", metavar="COL", help="Subgroup analysis by COL, with the test for differences.")
@click.option("--moderator", "moderators", metavar="COL", multiple=True,
              help="Meta-regression moderator (repeatable; A:B for the product of two numeric columns).")
@click.option("--small-study", type=_choice(["egger", "peters", "harbord", "begg"]), multiple=True,
              help="Small-study test (repeatable): egger, peters, harbord (binary counts) or begg.")
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
@click.option("--compare", "compare_ref", metavar="REF",
              help="Show what changed since REF: a git revision of the data and specs (e.g. HEAD~1) or a saved "
              "result JSON; before/after k, trials, estimate, CI, tau2, I2, prediction interval.")
@click.option("--input-level", type=float, default=0.95, show_default=True,
              help="Level of the CIs given as estimate, ci_low, ci_high in the table.")
@click.option("--scale", "scale", type=_choice(["log", "identity"]),
              help="With GEN: log for a ratio given as estimate, ci_low, ci_high (pooled on the log scale).")
@click.option("--drop-incomplete", is_flag=True, help="Leave out rows with missing values (named in a note).")
@click.option("--strict", is_flag=True, help="With --by: stop at the first bad row (exit 2) instead of failing "
              "only its group.")
@click.option("--batch-rows", type=click.IntRange(min=1), help="With --by on Parquet input: stream, pooling N rows "
              "at a time (memory bounded by one batch; the rows of a group must come together).")
@click.option("-v", "--verbose", is_flag=True, help="Text: every note in full (default: grouped by kind and counted).")
@click.option("--pet-peese", is_flag=True, help="PET and PEESE limit estimates (Stanley & Doucouliagos 2014).")
@click.option("--trim-fill", is_flag=True, help="Duval & Tweedie trim-and-fill (per group with --by).")
@click.option("--trim-fill-estimator", type=_choice(["L0", "R0"]), default="L0", show_default=True,
              help="Estimator of the number of missing studies.")
@click.option("--selection-model", type=_choice(["step"]),
              help="Vevea-Hedges step-function selection model (selection in the --benefit direction; per "
              "group with --by).")
@click.option("--steps", default="0.025", show_default=True, metavar="P[,P...]",
              help="One-sided p-value cut-points of the selection model.")
@click.option("--influence", is_flag=True,
              help="Influence diagnostics per study (metafor's influence) and I^2 / H^2 confidence intervals.")
@click.option("--both-models", is_flag=True, help="Show common-effect and random-effects results together.")
@click.option("--dask", "dask_spec", metavar="local:N|ADDRESS", help="With --by: pool on a Dask cluster (local:N "
              "starts N worker processes); the output of --by, byte for byte (needs dask[distributed]).")
@click.option("--compare-methods", is_flag=True,
              help="Also pool with every method that suits the data (IV, MH, Peto, GLMMs), one row per method.")
@click.option("--methods-plot", type=click.Path(dir_okay=False),
              help="With --compare-methods: write the methods side by side as a figure (.png, .svg or .pdf).")
@_mv.options
@click.pass_context
def pool(ctx, /, analysis, data_file, measure, method, ci, pi, level, cc, preset, outcome, leave_one_out, cumulative,
         subgroup, moderators, small_study, by, bayes, tau_prior, mu_prior_sd, threshold, benefit,
         prior_sensitivity, engine, likelihood, parameterisation, seed, draws, save_trace, fmt, compare_ref=None,
         input_level=0.95, scale=None, drop_incomplete: bool = False, verbose: bool = False,
         pet_peese: bool = False, trim_fill: bool = False, trim_fill_estimator: str = "L0", selection_model=None,
         steps: str = "0.025",
         influence: bool = False, both_models: bool = False, strict: bool = False, batch_rows=None, dask_spec=None,
         compare_methods: bool = False, methods_plot=None, **mv_options):
    """Pool a bundled analysis (retention, illicit-use, ...) or any trial table (--data FILE).

    Estimates are on the analysis scale (log for RR, OR, IRR) in JSON and CSV; text shows ratios
    on the natural scale too.
    """
    if _mv.wanted(mv_options):
        return _mv.run(ctx.params)
    from .. import api
    from .named import analyses, source

    source(analysis, data_file)
    from .multivariate_named import run_named

    if analysis is not None and run_named(ctx, analysis):  # a multivariate spec (analyses/multivariate/)
        return None
    if cc is not None and not (cc == cc and 0 <= cc < float("inf")):  # NaN would be blamed on a data cell
        raise InputError(f"must be a finite number of at least 0, got {cc}", option="--cc")
    options = dict(ci=(ci or "").lower() or None, pi=(pi or "").lower() or None, level=level, cc=cc,
                   preset=preset, leave_one_out=leave_one_out, cumulative=cumulative, subgroup=subgroup,
                   moderators=moderators, small_study=small_study)
    robust = dict(pet_peese=pet_peese, trim_fill=trim_fill, trim_fill_estimator=trim_fill_estimator,
                  selection_model=selection_model, steps=_steps(steps), influence=influence,
                  both_models=both_models)
    if not trim_fill and trim_fill_estimator.upper() != "L0":
        raise InputError("--trim-fill-estimator needs --trim-fill", column="--trim-fill-estimator")
    options.update({k: v for k, v in robust.items() if v and k not in ("steps", "trim_fill_estimator")})
    if trim_fill:
        options["trim_fill_estimator"] = trim_fill_estimator.upper()
    if selection_model:
        options["steps"] = robust["steps"]
    if benefit:
        options["benefit"] = benefit
    asked = [o for o, v in robust.items() if v and o not in ("steps", "trim_fill_estimator")]
    if (asked or len(small_study) > 1 or any(t.lower() != "egger" for t in small_study)) \
            and fmt.lower() in ("csv", "markdown"):
        # CSV and Markdown hold the study and pooled rows only: say so rather than drop the analyses.
        raise InputError("--small-study (other than egger), --pet-peese, --trim-fill, --selection-model, "
                         "--influence and --both-models are shown in --format text or json", column="--format")
    if methods_plot and not compare_methods:
        raise InputError("--methods-plot needs --compare-methods", column="--methods-plot")
    if compare_methods:
        options["compare_methods"] = True
    if method:
        options["method"] = method
    if dask_spec:
        if not (data_file is not None and by):
            raise InputError("--dask pools --by groups of a --data table (--data FILE --by COL)", option="--dask")
        if asked or small_study:  # the cluster path pools the basic model only: say so, never drop them
            raise InputError("--dask pools each group with the basic model only: drop --small-study, --pet-peese, "
                             "--trim-fill, --selection-model, --influence and --both-models "
                             "(or run --by without --dask)",
                             option="--dask")
        if strict or drop_incomplete or batch_rows:  # not on the cluster path: say so rather than ignore them
            raise InputError("--dask does not take --strict, --drop-incomplete or --batch-rows", option="--dask")
        options.update(input_level=input_level, scale=scale.lower() if scale else None)
        return _pool_by_dask(data_file, measure, by, options, dask_spec, fmt)
    if batch_rows and not (data_file is not None and by):
        raise InputError("--batch-rows streams --by over Parquet input (--data FILE --by COL)", column="--batch-rows")
    if data_file is not None and by:
        if compare_ref:
            raise InputError("--compare works on one pooled result, not with --by", option="--compare")
        if input_level != 0.95:
            options["input_level"] = input_level
        if scale:
            options["scale"] = scale.lower()
        return _pool_by(data_file, measure, by, options, leave_one_out, moderators, strict, fmt, batch_rows,
                        drop_incomplete)
    if outcome and data_file is None:
        raise InputError("--outcome picks an outcome of a RevMan file given with --data FILE.rm5", option="--outcome")
    if data_file is not None and (outcome or str(data_file).lower().endswith(".rm5")):  # a RevMan 5 review
        from ..results import study_labels
        from .revman import pool_rm5

        result = pool_rm5(data_file, outcome, measure, options)
        benefit, named = benefit or "lower", None
        text_opts = dict(verbose=verbose, study_labels=study_labels(result))
    elif data_file is not None:
        table, measure = api.read_data(data_file, measure, drop_incomplete=drop_incomplete)
        for a, b in table.identical_rows():  # pooled as two studies (named in the notes): say it aloud
            click.echo(f"warning: {data_file}: lines {a} and {b} are identical in every column (pasted twice?); "
                       "both are pooled", err=True)
        options = {k: v for k, v in options.items() if v is not None}
        if input_level != 0.95:
            options["input_level"] = input_level
        if scale:
            options["scale"] = scale.lower()
        result = api.pool_table(table, measure, **options)
        benefit = benefit or "lower"
        from ..results import study_labels

        text_opts = dict(verbose=verbose, study_labels=study_labels(result))
        named = None
    else:
        if by:
            raise InputError("--by works with --data tables", column="--by")
        if drop_incomplete or scale or input_level != 0.95:
            raise InputError("--drop-incomplete, --scale and --input-level apply to --data tables",
                             column="--drop-incomplete" if drop_incomplete else "--scale" if scale else "--input-level")
        try:
            named = analyses(ctx).pool(analysis, measure=measure, **options)
        except InputError as exc:  # a refused analysis: -v lists each trial's note instead of the groups
            if verbose and exc.details_full:
                exc.details = exc.details_full
            raise
        result = named.result
        benefit = benefit or named.benefit
        text_opts = dict(verbose=verbose, labels=named.labels, study_labels=named.study_labels)
    compared = None
    if compare_ref:
        if by:
            raise InputError("--compare works on one pooled result, not with --by", option="--compare")
        ref_opts = {k: v for k, v in options.items() if v is not None}
        if result.extra.get("revman_outcome") and not str(compare_ref).lower().endswith(".json"):
            from .revman import compare_reference  # another version of the RevMan review, the same outcome

            ref_opts = {"reference": compare_reference(compare_ref, result, measure, options)}
        compared = analyses(ctx).compare(result, compare_ref, analysis, benefit,
                                         named.labels if named is not None else None, measure, **ref_opts)
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
    after = (named.text_blocks(verbose) if named is not None else []) if fmt == "text" else []
    if compared is not None and fmt == "text":
        after.append(analyses(ctx).compare_text(compared, compare_ref, result))
    _emit(result, fmt, posterior, others, compared, text_opts, after)


def _methods_plot(result, path):
    """Write the methods side by side (forest-style) to ``path``; the format follows the suffix."""
    from pathlib import Path

    from ..render import plots
    from ..render.plots.methods import methods_plot

    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    if fmt not in ("png", "svg", "pdf"):
        raise InputError(f"--methods-plot writes .png, .svg or .pdf, not .{fmt}", column="--methods-plot")
    plots.save(methods_plot(result), path, fmt)


def _emit(result, fmt, posterior=None, others=(), compared=None, text_opts=None, after=()) -> None:
    """Write one pooled result; ``after``: text blocks printed below it (text format only)."""
    from ..render.batch_csv import to_csv
    from ..summary import bayes_text, to_markdown

    if fmt == "json":
        from ..results import StudyRows

        # Many studies (compact output): the per-study array is written column-wise in chunks.
        columnar = (result.k > 1000 and isinstance(result.studies, StudyRows)
                    and not result.extra.get("study_annotations"))
        out = result.to_dict(studies=not columnar)
        if posterior is not None:
            out["bayes"] = posterior.to_dict()
            if others:
                out["bayes"]["prior_sensitivity"] = [o.to_dict() for o in others]
        if compared is not None:
            out["compare"] = compared
        from ..precision import dumps

        # Indented for people; above 1,000 studies compact (one line). Floats rounded by the
        # output policy (hatmeta/precision.py), keys sorted.
        if columnar:
            if _emit_columnar(out, result.studies):
                return
            out["studies"] = result.studies.to_dicts()  # the splice point was not unique: the plain way
        click.echo(dumps(out, indent=result.k <= 1000))
    elif fmt == "csv":
        click.echo(to_csv([result]), nl=False)
    elif fmt == "markdown":
        click.echo(to_markdown(result), nl=False)
    else:
        from ..summary import format_result

        click.echo(format_result(result, **(text_opts or {})))
        if posterior is not None:
            click.echo("\n" + bayes_text(result, posterior, others))
        for block in after:
            click.echo("\n" + block)


def _emit_many(results, fmt, more=None) -> None:
    """Write a BatchResult (``--by``) as JSON lines, CSV or text; ``more``: a dict per group to add."""
    out = sys.stdout
    if fmt == "json":
        # Each group's tests and influence rows (``more``) join its JSON object.
        out.flush()
        binary = getattr(out, "buffer", None)  # bytes straight to the file (no decode and re-encode)
        for block in results.json_blocks(more=more):
            binary.write(block) if binary is not None else out.write(block.decode())
    elif fmt == "csv":
        from ..render.batch_csv import batch_csv_chunks

        out.writelines(batch_csv_chunks(results))  # in blocks of groups: never the whole text at once
    else:
        texts = [r.summary() for r in results]
        if more is not None:
            texts = [t + _by_group_text(extra) for t, extra in zip(texts, more)]
        out.write("\n\n".join(texts) + "\n")


def _by_group_text(extra):
    from ..numbers import p_bare
    from ..summary import fmt as f
    from ..vocabulary import TEST_NAMES

    lines = []
    for key, t in extra.items():
        if key == "pet_peese":
            if t["chosen"] is not None:
                lines.append(f"PET-PEESE: {t['chosen'].upper()} estimate {f(t['estimate'])} "
                             f"[{f(t['ci_low'])}, {f(t['ci_high'])}] (analysis scale)"
                             + (f" ({t['warning']})" if t["warning"] else ""))
            continue
        if key == "influence":
            flagged = [r["study"] for r in t if r["influential"]]
            lines.append(f"Influential studies (metafor's rule): {', '.join(flagged) if flagged else 'none'}")
            continue
        if key in ("trim_fill", "selection_model"):
            lines.append(_bias_line(key, t))
            continue
        stat = ("tau" if key == "begg" else "t") + " = " + f(t["statistic"])
        lines.append(f"{TEST_NAMES[key]}: {stat}, p = {p_bare(t['p'])}"
                     + (f" ({t['warning']})" if t["warning"] else ""))
    return "\n" + "\n".join(lines) if lines else ""


def _bias_line(key, t):
    """One text line for a --by group's trim-and-fill or selection model block (analysis scale)."""
    from ..numbers import p_bare
    from ..summary import fmt as f

    if t["estimate"] is None:
        name = "Trim-and-fill" if key == "trim_fill" else "Step-function selection model"
        return f"{name}: not computed ({t['warning']})"
    interval = f"{f(t['estimate'])} [{f(t['ci_low'])}, {f(t['ci_high'])}] (analysis scale)"
    if key == "trim_fill":
        line = (f"Trim-and-fill ({t['estimator']}): {t['k0']} stud{'y' if t['k0'] == 1 else 'ies'} filled on the "
                f"{t['side']}; adjusted estimate {interval}, tau^2 = {f(t['tau2'])}")
    else:
        line = (f"Step-function selection model (cut-points {', '.join(f'{c:g}' for c in t['steps'][:-1])}, "
                f"alternative {t['alternative']}): estimate {interval}, tau^2 = {f(t['tau2'])}, delta = "
                f"{', '.join(f(d) for d in t['delta'])}; LRT p = {p_bare(t['lrt_p'])}")
    return line + (f" ({t['warning']})" if t["warning"] else "")


def _steps(text):
    """``--steps 0.025,0.5`` as a tuple of floats strictly between 0 and 1."""
    try:
        vals = tuple(float(x) for x in str(text).split(",") if x.strip())
    except ValueError:
        raise InputError(f"--steps takes numbers separated by commas, got {text!r}", column="--steps") from None
    if not vals or any(not 0 < v < 1 for v in vals):
        raise InputError(f"--steps takes p-values strictly between 0 and 1, got {text!r}", column="--steps")
    return vals


def _pool_by(data_file, measure, by, options, leave_one_out, moderators, strict, fmt, batch_rows=None,
             drop_incomplete: bool = False):
    """``--data FILE --by COL``: a bad row fails only its group (one summary line on stderr, exit 0),
    or with ``--strict`` stops the run at the first bad row (exit 2)."""
    from .. import api

    options = {k: v for k, v in options.items() if v is not None}
    # Small-study tests, PET-PEESE, trim-and-fill, the selection model and influence diagnostics are
    # run for every group (vectorised across groups, the selection model group by group); the rest is not.
    extras = [o for o in ("preset", "cumulative", "subgroup", "both_models")
              if options.get(o)]
    if extras or leave_one_out or moderators:
        raise InputError("--by pools each group with the basic model only; drop "
                         + ", ".join("--" + o.replace("_", "-") for o in extras or ["other options"]),
                         column="--by")
    robust = {k: options[k] for k in ("small_study", "influence", "pet_peese", "trim_fill", "selection_model")
              if options.get(k)}
    if robust and fmt.lower() in ("csv", "markdown"):
        raise InputError("--small-study, --pet-peese, --trim-fill, --selection-model and --influence with --by "
                         "need --format json or text", column="--format")
    if robust.get("trim_fill"):
        robust["trim_fill_estimator"] = options.get("trim_fill_estimator", "L0")
    if robust.get("selection_model"):
        robust.update(steps=options.get("steps", (0.025,)), benefit=options.get("benefit", "lower"))
    kw = {k: options[k] for k in ("method", "ci", "pi", "level", "cc", "input_level", "scale") if k in options}
    if batch_rows:
        if drop_incomplete or robust:
            raise InputError("--batch-rows streams the basic model only: drop --drop-incomplete, --small-study, "
                             "--pet-peese, --trim-fill, --selection-model and --influence", option="--batch-rows")
        return _pool_by_stream(data_file, measure, by, kw, strict, fmt, batch_rows)
    table, measure, failed, keys = api.read_data_by(data_file, measure, by, strict=strict,
                                                    drop_incomplete=drop_incomplete)
    results = api.pool_by(table, by, measure, failed=None if strict else failed, group_keys=keys,
                          strict=strict, **kw)
    more = None
    if robust and table is not None:  # (no table: every row failed, and each group says why)
        per_group = api.robustness_by(table, by, measure, **robust,
                                      **{k: kw[k] for k in ("method", "ci", "cc", "level", "input_level", "scale")
                                         if k in kw})
        found = dict(zip(dict.fromkeys(table.column(by)), per_group))
        more = [found.get(str(g), {}) for g in results.groups]  # a group whose rows all failed has none
    _emit_many(results, fmt, more)
    bad = results.failed
    if bad:
        shown = "; ".join(f"{g}: {e}" for g, e in bad[:3])
        rest = f"; and {len(bad) - 3} more" if len(bad) > 3 else ""
        click.echo(f"{len(bad)} of {len(results)} groups failed: {shown}{rest}", err=True)


def _pool_by_stream(data_file, measure, by, kw, strict, fmt, batch_rows):
    from ..fit.effects import normalise_measure
    from ..fit.stream import pool_by_stream
    from ..io.columnar import is_parquet

    if not is_parquet(data_file):
        raise InputError("--batch-rows streams Parquet input (a .parquet file, a folder or a glob)",
                         column="--batch-rows")
    measure = normalise_measure(measure)
    failed, total, first = [], 0, True
    for part in pool_by_stream(data_file, by, measure, batch_rows=batch_rows, strict=strict, **kw):
        if fmt == "csv" and not first:
            from ..render.batch_csv import batch_csv_chunks

            sys.stdout.writelines(batch_csv_chunks(part, header=False))  # one header for the whole stream
        elif fmt == "text" and not first:
            sys.stdout.write("\n")
            _emit_many(part, fmt)
        else:
            _emit_many(part, fmt)
        sys.stdout.flush()
        first = False
        total += len(part)
        failed += part.failed
    if failed:
        shown = "; ".join(f"{g}: {e}" for g, e in failed[:3])
        more = f"; and {len(failed) - 3} more" if len(failed) > 3 else ""
        click.echo(f"{len(failed)} of {total} groups failed: {shown}{more}", err=True)


def _pool_by_dask(data_file, measure, by, options, spec, fmt):
    """``--dask``: read the table as a Dask DataFrame (CSV as text; Parquet as stored), pool each group
    whole on the cluster, and write what ``--by`` writes in memory and streamed, byte for byte: the
    groups in order of first appearance, each written by the same writer on its worker."""
    try:
        import dask.dataframe as dd

        from ..fit.distributed import blocks_by_dask, client
    except ImportError:
        raise InputError("--dask needs Dask: pip install 'dask[dataframe]' distributed", option="--dask") from None
    from ..fit.effects import normalise_measure
    from ..io.columnar import is_parquet

    measure = normalise_measure(measure)
    kw = {k: options[k] for k in ("method", "ci", "pi", "level", "cc", "input_level", "scale")
          if options.get(k) is not None}  # (--cc 0 too)
    with client(spec) as dask_client:
        if is_parquet(data_file):
            ddf = dd.read_parquet(data_file)
            ddf = ddf.assign(_line=ddf.assign(_one=1)["_one"].cumsum())  # Parquet rows count from 1
        else:
            ddf = dd.read_csv(data_file, dtype=str, keep_default_na=False, blocksize="64MB")
            ddf = ddf.assign(_line=ddf.assign(_one=1)["_one"].cumsum() + 1)  # the header is line 1
        # The streamed and in-memory writers on the workers; the groups in order of first appearance.
        from ..render.batch_csv import header_line
        from ..render.batch_parts import csv_part, json_part, text_part

        report: dict = {}
        write = {"json": json_part, "csv": csv_part}.get(fmt, text_part)
        out = sys.stdout
        out.flush()
        binary = getattr(out, "buffer", None)

        def put(data: bytes) -> None:
            binary.write(data) if binary is not None else out.write(data.decode())

        if fmt == "csv":
            put(header_line().encode())
        last = b""
        for block in blocks_by_dask(ddf, by, measure, dask_client, write, path=str(data_file), report=report,
                                    **kw):
            put(last)
            last = block
        if write is text_part:  # groups joined by a blank line, as in memory: the last one's dropped
            last = last[:-1] if last else b"\n"
        put(last)
        bad, total = report["failed"], report["groups"]
    if bad:
        shown = "; ".join(f"{g}: {e}" for g, e in bad[:3])
        more = f"; and {len(bad) - 3} more" if len(bad) > 3 else ""
        click.echo(f"{len(bad)} of {total} groups failed: {shown}{more}", err=True)


def _emit_columnar(out, rows) -> bool:
    """Write ``out`` (compact, by the output policy) with its empty "studies" list filled from the
    StudyRows ``rows`` column-wise: the same bytes as ``dumps(out)`` with the study dicts, without a
    dict per study (hatmeta/json_columns.py). False, having written nothing, if the splice point is
    not unique."""
    import orjson

    from ..io.trial_table import COUNT_COLUMNS
    from ..json_columns import study_rows_chunks
    from ..precision import dumps

    mark = "\x00hatmeta-studies\x00"
    out = {**out, "studies": mark}
    text = dumps(out, indent=False, as_bytes=True)
    head, sep, tail = text.partition(orjson.dumps(mark))
    if not sep or sep in tail:
        return False
    click.echo(head, nl=False)
    for piece in study_rows_chunks(rows, COUNT_COLUMNS):
        click.echo(piece, nl=False)
    click.echo(tail)
    return True
