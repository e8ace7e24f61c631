"""One entry point from options to a result: what the command line and notebooks call.

``pool_table`` runs the whole chain on a TrialTable (escalc -> rma -> optional analyses);
``pool_file`` reads a CSV first; ``pool_by`` pools every group of rows at once.
"""

from __future__ import annotations

from dataclasses import replace

from .fit.effects import escalc
from .errors import InputError
from .fit.models import rma
from .io.trial_table import read_table


def pool_table(table, measure, method="REML", ci="wald", pi="t", level=0.95, cc=0.5, preset=None,
               leave_one_out=False, cumulative=None, subgroup=None, moderators=(), small_study=None,
               compare_methods=False):
    """Pool a validated TrialTable; returns a MetaResult (analysis scale).

    ``compare_methods``: also pool with every method that suits the layout (JSON ``compare_methods``).
    Sparse binary data (a zero cell or an arm with < 5 events) get the advice of
    ``methods.sparse.advise`` as a note and under JSON ``sparse_data``."""
    if not 0 < level < 1:
        raise InputError(f"level must lie between 0 and 1, got {level}", column="--level")
    _check_glmm_options(method, leave_one_out, cumulative, subgroup, moderators)
    es = escalc(table, measure, cc=cc)
    res = rma(es, method=method, ci=ci, pi=pi, level=level, preset=preset)
    method = "DL" if preset else res.method  # the preset's sequences use its DL random effects
    extra = {}
    if leave_one_out:
        from .methods.sensitivity import leave_one_out as loo

        extra["leave_one_out"] = loo(es, method=method, ci=res.ci_method, level=level)
    if cumulative:
        from .methods.sensitivity import cumulative as cum

        extra["cumulative"] = cum(es, cumulative, method=method, ci=res.ci_method, level=level)
    if subgroup:
        from .methods.sensitivity import subgroups

        extra["subgroups"], extra["subgroup_test"] = subgroups(es, subgroup, method=method,
                                                                ci=res.ci_method, level=level)
    if moderators:
        from .fit.metareg import meta_regression

        extra["meta_regression"] = meta_regression(es, list(moderators), ci=res.ci_method, level=level)
    if small_study:
        if str(small_study).lower() != "egger":
            raise InputError(f"unknown small-study test {small_study!r}; choose egger", column="--small-study")
        from .methods.small_study import egger

        extra["egger"] = egger(es)
        if extra["egger"].warning:
            extra["notes"] = res.notes + (extra["egger"].warning,)
    sparse = _sparse_data(table, es, res, compare_methods, level)
    if sparse:
        extra["notes"] = extra.get("notes", res.notes) + sparse.pop("notes")
        extra["extra"] = {**res.extra, **sparse}
    return replace(res, **extra) if extra else res


def _check_glmm_options(method, leave_one_out, cumulative, subgroup, moderators):
    from .fit.models import GLMM_METHODS

    if str(method).strip().upper() in GLMM_METHODS and (leave_one_out or cumulative or subgroup or moderators):
        raise InputError(f"--leave-one-out, --cumulative, --subgroup and --moderator use the inverse-variance "
                         f"engine; with {str(method).upper()} drop them (or compare with --compare-methods)",
                         column="--method")


def _sparse_data(table, es, res, compare, level):
    """The sparse-data advice (binary tables with few events) and the side-by-side methods, as
    {"sparse_data": ..., "compare_methods": [...], "notes": (...)}; empty when neither applies."""
    from .methods import sparse

    out, notes = {}, ()
    if table.layout == "binary" and es.measure in ("OR", "RR", "RD") and sparse.is_sparse(table):
        advice = sparse.advise(table, es, compared=compare)
        out["sparse_data"] = advice
        notes += (advice.advice,)
    if compare:
        out["compare_methods"] = list(sparse.compare_methods(es, level=level))
    if out:
        out["notes"] = notes
    return out


def read_data(path, measure):
    """(TrialTable, measure) for ``--data PATH --measure M``: the measure is required and checked first,
    so the table is read in the layout it needs."""
    from .fit.effects import normalise_measure

    if not measure:
        raise InputError("--measure is required with --data (RR, OR, RD, MD, SMD, IRR or GEN)",
                         column="--measure")
    measure = normalise_measure(measure)
    return read_table(path, measure=measure), measure


def pool_file(path, measure, **options):
    """Read a trial table CSV and pool it (see ``pool_table`` for the options)."""
    return pool_table(read_table(path, measure=measure), measure, **options)


def pool_by(table, by, measure, method="REML", ci="wald", pi="t", level=0.95, cc=0.5):
    """Pool every group of rows (column ``by``) separately, all groups in one vectorised fit.

    Returns MetaResults in the order groups first appear. Groups too small for the method get a
    result whose notes say why (with NaN numbers) rather than stopping the run.
    """
    from .fit.batch import pool_groups

    return pool_groups(table, by, measure, method=method, ci=ci, pi=pi, level=level, cc=cc)


def pool_analysis(name, data_dir=None, analyses_dir=None, **overrides):
    """Pool a bundled analysis (e.g. "retention"): its spec's settings, overridden by ``overrides``.

    Returns (MetaResult, Analysis).
    """
    from .evidence import load_analysis

    analysis = load_analysis(name, data_dir=data_dir, analyses_dir=analyses_dir)
    spec = analysis.spec
    options = {"method": spec.method, "ci": spec.ci, "pi": spec.pi}
    if getattr(spec, "compare_methods", False):
        options["compare_methods"] = True
    options.update({k: v for k, v in overrides.items() if v is not None})
    if str(options.get("method", "")).upper().startswith("GLMM") and overrides.get("ci") is None:
        options["ci"] = "wald"  # the spec's CI belongs to its own method; a GLMM gives a Wald CI
    measure = options.pop("measure", None) or spec.measure
    table = analysis.table
    if table.k < 2 and str(options.get("method", "REML")).upper() not in ("FE", "MH", "PETO"):
        raise InputError(f"only {table.k} trial ({', '.join(table.studies)}) reports {spec.outcome} by arm; "
                         f"pooling needs at least 2 ({len(analysis.omitted)} omitted: "
                         + ", ".join(t for t, _ in analysis.omitted) + "; see hatmeta trials)",
                         file=spec.path, column="trials")
    res = pool_table(table, measure, **options)
    notes = tuple(f"omitted {trial}: {reason}" for trial, reason in analysis.omitted) + tuple(analysis.notes)
    return replace(res, notes=res.notes + notes, extra={**res.extra, "analysis": spec.name,
                                                         "omitted": [{"study": t, "reason": r}
                                                                     for t, r in analysis.omitted]}), analysis


def _bayes_settings(result, tau_prior, mu_prior_sd, threshold):
    """(default priors apply, mu prior SD, threshold on the analysis scale) for a Bayesian fit.

    Roever 2020's defaults (half-normal(0.5) on tau, N(0, 4^2) on mu) fit log ratios and SMDs; on
    another scale (MD, RD, GEN) no default fits, so the priors must be given. ``threshold`` comes on
    the natural scale (e.g. 1.25 for a ratio)."""
    import math

    default_scale = result.scale == "log" or result.measure == "SMD"
    if not default_scale and (tau_prior is None or mu_prior_sd is None):
        raise InputError(f"{result.measure} is not on a log scale: give --tau-prior and --mu-prior-sd "
                         "in its units", column="--tau-prior")
    if threshold is not None and result.scale == "log":
        if threshold <= 0:
            raise InputError(f"a ratio threshold must be positive, got {threshold:g}", column="--threshold")
        threshold = math.log(threshold)
    return default_scale, 4.0 if mu_prior_sd is None else mu_prior_sd, threshold


SENSITIVITY_PRIORS = ("halfnormal:0.5", "halfnormal:1", "halfcauchy:0.5", "uniform:4", "turner:marginal")


def pool_bayes(result, tau_prior=None, mu_prior_sd=None, threshold=None, benefit="lower", level=0.95,
               prior_sensitivity=False):
    """Bayesian random-effects posterior for the studies of a frequentist ``result`` (exact engine).

    Priors and threshold as in ``_bayes_settings``. Returns the BayesResult, and a tuple of
    BayesResults under other tau priors if asked.
    """
    from .bayes import bayes_exact, prior_sensitivity as sensitivity

    default_scale, mu_prior_sd, threshold = _bayes_settings(result, tau_prior, mu_prior_sd, threshold)
    studies = [s.study for s in result.studies]
    yi = [s.yi for s in result.studies]
    vi = [s.vi for s in result.studies]
    opts = dict(mu_prior_sd=mu_prior_sd, threshold=threshold, benefit=benefit, level=level)
    main = bayes_exact(yi, vi, studies, tau_prior=tau_prior, **opts)
    alternatives = [p for p in (SENSITIVITY_PRIORS if default_scale else ()) if p != main.prior["tau_prior"]]
    others = sensitivity(yi, vi, alternatives, **opts) if prior_sensitivity else ()
    return main, others


def pool_bayes_mcmc(result, likelihood="normal", tau_prior=None, mu_prior_sd=None, threshold=None, benefit="lower",
                    level=0.95, seed=1, draws=1500, save_trace=None, progressbar=False, parameterisation="marginal"):
    """The PyMC engine on a frequentist ``result``'s studies: normal-normal on (yi, vi) (``parameterisation``
    "marginal" or "noncentred"), or binomial-normal on the arm counts (log OR), or Poisson on events and
    person-time (log IRR)."""
    try:
        from .bayes.mcmc import bayes_pymc
    except ImportError:  # pragma: no cover - depends on the installation
        raise InputError("the PyMC engine needs PyMC and ArviZ: pip install 'hatmeta[bayes]'",
                         column="--engine") from None
    needs = {"binomial": ("OR", "binary", "events_treat, n_treat, events_ctrl, n_ctrl"),
             "poisson": ("IRR", "rates", "events_treat, time_treat, events_ctrl, time_ctrl")}
    arms = None
    if likelihood in needs:
        measure, _, columns = needs[likelihood]
        if result.measure != measure:
            raise InputError(f"the {likelihood} likelihood models the {measure}: use --measure {measure}",
                             column="--likelihood")
        names = [c.strip() for c in columns.split(",")]
        arms = {c: [s.inputs[c] for s in result.studies] for c in names}
    _, mu_prior_sd, threshold = _bayes_settings(result, tau_prior, mu_prior_sd, threshold)
    return bayes_pymc([s.yi for s in result.studies], [s.vi for s in result.studies],
                      [s.study for s in result.studies], tau_prior=tau_prior,
                      mu_prior_sd=mu_prior_sd, likelihood=likelihood, arms=arms,
                      seed=seed, draws=draws, save_trace=save_trace, progressbar=progressbar, threshold=threshold,
                      benefit=benefit, level=level, parameterisation=parameterisation)
