"""One entry point from options to a result: what the command line and notebooks call.

``pool_table`` runs the whole chain on a TrialTable (escalc -> rma -> optional analyses);
``pool_file`` reads a CSV first; ``pool_by`` pools every group of rows at once.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .errors import InputError
from .fit.effects import escalc
from .fit.models import rma
from .io.trial_table import TrialTable, read_table
from .vocabulary import COMMON_EFFECT_METHODS

if TYPE_CHECKING:
    import os

    from .bayes.exact import BayesResult
    from .fit.batch import BatchResult
    from .io.trial_table import TableSource
    from .results import MetaResult


def pool_table(table: TrialTable | TableSource, measure: str, method: str = "REML", ci: str = "wald",
               pi: str = "t", level: float = 0.95, cc: float = 0.5, preset: str | None = None,
               leave_one_out: bool = False, cumulative: str | None = None, subgroup: str | None = None,
               moderators: Sequence[str] = (), small_study: str | Sequence[str] | None = None,
               input_level: float = 0.95, scale: str | None = None, pet_peese: bool = False, trim_fill: bool = False,
               trim_fill_estimator: str = "L0", selection_model: str | None = None,
               steps: Sequence[float] = (0.025,), benefit: str = "lower", influence: bool = False,
               both_models: bool = False, lenient: Collection[str] = (), compare_methods: bool = False,
               drop_incomplete: bool = False) -> MetaResult:
    """Pool a TrialTable (or a pandas DataFrame, a dict of columns or a CSV path, read first);
    returns a MetaResult (analysis scale). ``input_level``: level of CIs given in the table;
    ``scale="log"``: a GEN estimate given as a ratio (pooled on the log scale).

    Robustness options (issue 13; JSON keys in brackets): ``small_study`` one or more of egger, peters,
    harbord, begg [each under its name]; ``pet_peese`` [pet_peese]; ``trim_fill`` with
    ``trim_fill_estimator`` L0 or R0 [trim_fill]; ``selection_model="step"`` with ``steps`` (one-sided
    p cut-points, selection in the ``benefit`` direction) [selection_model]; ``influence``
    [influence, and i2_ci_low/high, h2_ci_low/high]; ``both_models`` [common_effect, random_effects].
    ``lenient``: names of those options whose failure (e.g. too few studies) becomes a note instead of
    an error (an analysis spec's [robustness] requests, so that the report still pools the analysis).
    ``compare_methods``: also pool with every method that suits the layout (JSON ``compare_methods``).
    ``drop_incomplete``: rows with a missing value in a column the layout needs are left out and named in
    the notes (the command line's ``--drop-incomplete``), instead of stopping with the first.
    Sparse binary data (a zero cell or an arm with < 5 events) get the advice of
    ``methods.sparse.advise`` as a note and under JSON ``sparse_data``.
    """
    if not 0 < level < 1:
        raise InputError(f"level must lie between 0 and 1, got {level}", column="--level")
    _check_glmm_options(method, leave_one_out, cumulative, subgroup, moderators)
    if not hasattr(table, "layout"):  # read once: the not-estimable rows below need the table as read
        table = read_table(table, measure=measure, drop_incomplete=drop_incomplete)
    elif drop_incomplete:
        raise InputError("drop_incomplete applies when the table is read here: pass the DataFrame, dict or path, "
                         "or read_table(..., drop_incomplete=True)")
    es = escalc(table, measure, cc=cc, input_level=input_level, scale=scale)
    res = rma(es, method=method, ci=ci, pi=pi, level=level, preset=preset)
    method = "DL" if preset else res.method  # the preset's sequences use its DL random effects
    extra: dict[str, Any] = {}
    if leave_one_out:
        from .methods.sensitivity import leave_one_out as loo

        extra["leave_one_out"] = loo(es, method=method, ci=res.ci_method, level=level).rows
    if cumulative:
        from .methods.sensitivity import cumulative as cum

        extra["cumulative"] = cum(es, cumulative, method=method, ci=res.ci_method, level=level).rows
    if subgroup:
        from .methods.sensitivity import subgroups

        if preset and str(preset).lower() in ("revman5", "revman"):  # RevMan 5's subgroups (fit/revman5.py)
            from .fit.revman5 import subgroups_extra

            extra.update(subgroups_extra(es, res, subgroup, level))
        else:
            found = subgroups(es, subgroup, method=method, ci=res.ci_method, level=level)
            extra["subgroups"], extra["subgroup_test"] = found.groups, found.test
    if moderators:
        from .fit.metareg import meta_regression

        if preset or res.method in ("MH", "PETO"):
            raise InputError(f"moderators need an inverse-variance model (FE or a tau^2 estimator); "
                             f"{'the ' + str(preset) + ' preset' if preset else 'method ' + res.method} "
                             f"cannot take them", column="--moderator")
        extra["meta_regression"] = meta_regression(es, list(moderators), ci=res.ci_method, level=level,
                                                   method=res.method)
    if small_study:
        tests = [small_study] if isinstance(small_study, str) else list(small_study)
        if any(str(t).lower() == "egger" for t in tests):
            from .methods.publication_bias import egger

            extra["egger"] = egger(es)
            if extra["egger"].warning:
                extra["notes"] = res.notes + (extra["egger"].warning,)
    else:
        tests = []
    robust = _robustness(es, res, [t for t in tests if str(t).lower() != "egger"], pet_peese, trim_fill,
                         trim_fill_estimator, selection_model, steps, benefit, influence, both_models, method,
                         level, set(lenient))
    if robust:
        notes = extra.get("notes", res.notes) + robust.pop("notes")
        extra["notes"] = notes
        extra["extra"] = {**res.extra, **robust}
    sparse = _sparse_data(table if hasattr(table, "layout") else es.table, es, res, compare_methods, level)
    if sparse:
        extra["notes"] = extra.get("notes", res.notes) + sparse.pop("notes")
        extra["extra"] = {**extra.get("extra", res.extra), **sparse}
    if es.dropped:  # listed as 'Not estimable' rows in figures, tables and JSON
        from .fit.effects import not_estimable_rows

        # ``table`` was read above, so it is a TrialTable here (its annotation is still the union it came in as)
        extra["not_estimable"] = not_estimable_rows(table, es)  # type: ignore[arg-type]
    return replace(res, **extra) if extra else res


def _robustness(es, res, tests, pet_peese, trim_fill, estimator, selection, steps, benefit, influence,
                both_models, method, level, lenient=frozenset()):
    """The issue-13 analyses as a dict of JSON keys (plus "notes": their warnings), or {} if none asked."""
    if not (tests or pet_peese or trim_fill or selection or influence or both_models):
        return {}
    from .methods import publication_bias as pb

    out: dict[str, Any] = {}
    notes: tuple[str, ...] = ()

    def attempt(option, key, run):
        """Run one analysis; under ``lenient`` a refusal becomes {"error": ...} and a note."""
        nonlocal notes
        try:
            out[key] = run()
        except InputError as exc:
            if option not in lenient:
                raise
            out[key] = {"error": exc.message}
            notes += (f"{key.replace('_', ' ')} not computed: {exc.message}",)
            return None
        return out[key]

    for t in tests:
        r = attempt("small_study", str(t).lower(), lambda t=t: pb.small_study_test(es, t))
        if r is not None:
            notes += tuple(r.notes) + ((r.warning,) if r.warning else ())
    if pet_peese:
        r = attempt("pet_peese", "pet_peese", lambda: pb.pet_peese(es, level=level))
        notes += (r.warning,) if r is not None and r.warning else ()
    if trim_fill:
        r = attempt("trim_fill", "trim_fill", lambda: pb.trim_fill(
            es, method=res.method if res.method != "MH-DL" else "DL", estimator=estimator, level=level))
        if r is not None:
            notes += r.notes + ((r.warning,) if r.warning else ())
    if selection:
        if str(selection).lower() != "step":
            raise InputError(f"unknown selection model {selection!r}; choose step", column="--selection-model")
        sel = attempt("selection_model", "selection_model", lambda: pb.selection_model(
            es, steps=steps, benefit=benefit, method=res.method, level=level))
        if sel is not None:
            notes += tuple(f"selection model: {n}" for n in sel.notes) + ((sel.warning,) if sel.warning else ())
    if influence:
        from .methods.influence import heterogeneity_ci, influence as infl

        rows = attempt("influence", "influence", lambda: infl(
            es, method=method if res.method != "MH-DL" else "DL", ci=res.ci_method).rows)
        if rows is not None:
            het = heterogeneity_ci(es.yi, es.vi, level)
            out.update({k: het[k] for k in ("i2_ci_low", "i2_ci_high", "h2_ci_low", "h2_ci_high")})
            if res.method in COMMON_EFFECT_METHODS:
                notes += ("influence diagnostics of a common-effect model use inverse-variance weights",)
    if both_models:
        out.update(_both_models(es, res, level))
    out["notes"] = notes
    return out


def _both_models(es, res, level):
    """Common-effect and random-effects summaries side by side (as R's meta prints both): the model
    fitted, and the other one (inverse-variance common effect, or REML random effects)."""
    common = res if res.method in COMMON_EFFECT_METHODS else rma(es, method="FE", level=level)
    random = res if res.method not in COMMON_EFFECT_METHODS else rma(es, method="REML", level=level)

    def summary(r):
        d = {"method": r.method, "ci_method": r.ci_method, "estimate": r.estimate, "se": r.se,
             "ci_low": r.ci_low, "ci_high": r.ci_high, r.stat_name: r.stat, "p": r.p}
        if r.method not in COMMON_EFFECT_METHODS:
            d.update(tau2=r.tau2, pi_low=r.pi_low, pi_high=r.pi_high)
        return d

    return {"common_effect": summary(common), "random_effects": summary(random)}


def _check_glmm_options(method, leave_one_out, cumulative, subgroup, moderators):
    from .vocabulary import GLMM_METHODS

    if str(method).strip().upper() in GLMM_METHODS and (leave_one_out or cumulative or subgroup or moderators):
        raise InputError(f"--leave-one-out, --cumulative, --subgroup and --moderator use the inverse-variance "
                         f"engine; with {str(method).upper()} drop them (or compare with --compare-methods)",
                         column="--method")


def _sparse_data(table, es, res, compare, level):
    """The sparse-data advice (binary tables with few events) and the side-by-side methods, as
    {"sparse_data": ..., "compare_methods": [...], "notes": (...)}; empty when neither applies."""
    from .methods import sparse

    out: dict[str, Any] = {}
    notes: tuple[str, ...] = ()
    if table.layout == "binary" and es.measure in ("OR", "RR", "RD") and sparse.is_sparse(table):
        advice = sparse.advise(table, es, compared=compare)
        out["sparse_data"] = advice
        notes += (advice.advice,)
    if compare:
        out["compare_methods"] = list(sparse.compare_methods(es, level=level))
    if out:
        out["notes"] = notes
    return out


def read_data(path: TableSource, measure: str | None, drop_incomplete: bool = False) -> tuple[TrialTable, str]:
    """(TrialTable, measure) for ``--data PATH --measure M``: the measure is required and checked first,
    so the table is read in the layout it needs."""
    from .fit.effects import normalise_measure

    measure = normalise_measure(measure)
    from .io.columnar import read_any  # large CSV files through pyarrow, Parquet files and folders

    return read_any(path, measure=measure, drop_incomplete=drop_incomplete), measure


def pool_file(path: TableSource, measure: str, drop_incomplete: bool = False, **options: Any) -> MetaResult:
    """Read a trial table CSV and pool it.

    Parameters
    ----------
    path : str, os.PathLike, pandas.DataFrame or mapping
        As ``read_table``.
    measure : str
        Effect measure (see ``escalc``).
    drop_incomplete : bool
        Leave out rows with a missing value, naming them (``read_table``).
    **options
        The options of ``pool_table``.

    Returns
    -------
    MetaResult
        As ``pool_table`` (analysis scale).
    """
    return pool_table(read_table(path, measure=measure, drop_incomplete=drop_incomplete), measure, **options)


def pool_by(table: TrialTable | TableSource | None, by: str, measure: str, method: str = "REML", ci: str = "wald",
            pi: str = "t", level: float = 0.95, cc: float = 0.5, input_level: float = 0.95,
            scale: str | None = None, failed: dict[Any, str] | None = None,
            group_keys: Sequence[Any] | None = None, strict: bool = False) -> BatchResult:
    """Pool every group of rows (column ``by``) separately, all groups in one vectorised fit.

    Groups too small for the method get a result whose notes say why (with NaN numbers) rather than
    stopping the run. Study names need to be unique only within a group.

    Parameters
    ----------
    table : TrialTable, pandas.DataFrame, mapping, path or dask.dataframe.DataFrame
        The rows of every group.
    by : str
        The column that names each row's group.
    measure, method, ci, pi, level, cc, input_level, scale
        As ``pool_table``.
    failed, group_keys : optional
        From ``read_data_by``: groups with a bad row are answered with its error.
    strict : bool
        An effect that cannot be computed stops the run instead of failing its group.

    Returns
    -------
    BatchResult
        A sequence of MetaResults (analysis scale) in the order groups first appear; ``to_frame()``
        gives one row per group. Given a Dask DataFrame, a Dask DataFrame with one row per group (the
        columns of ``to_frame()``), each group pooled whole in one partition
        (``hatmeta.fit.distributed``); with millions of groups fetch it with
        ``hatmeta.fit.distributed.collect(result, client)``, not ``.compute()``.
    """
    from .fit.batch import pool_groups
    from .fit.distributed import is_dask
    from .io.trial_table import TrialTable

    if is_dask(table):  # a dask.dataframe.DataFrame: a Dask DataFrame of per-group results (lazy)
        from .fit.distributed import pool_by_dask

        return pool_by_dask(table, by, measure, method=method, ci=ci, pi=pi, level=level, cc=cc,
                            input_level=input_level, scale=scale)
    if not isinstance(table, TrialTable) and table is not None:
        table = read_table(table, measure=measure)
    return pool_groups(table, by, measure, method=method, ci=ci, pi=pi, level=level, cc=cc,
                       input_level=input_level, scale=scale, failed=failed, group_keys=group_keys, strict=strict)



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


def pool_bayes(result: MetaResult, tau_prior: str | None = None, mu_prior_sd: float | None = None,
               threshold: float | None = None, benefit: str = "lower", level: float = 0.95,
               prior_sensitivity: bool = False) -> tuple[BayesResult, tuple[BayesResult, ...]]:
    """Bayesian random-effects posterior for the studies of a frequentist ``result`` (exact engine).

    Priors and threshold as in ``_bayes_settings``. Returns the BayesResult, and a tuple of
    BayesResults under other tau priors if asked.
    """
    from .bayes import bayes_exact, prior_sensitivity as sensitivity

    default_scale, mu_prior_sd, threshold = _bayes_settings(result, tau_prior, mu_prior_sd, threshold)
    studies = [s.study for s in result.studies]
    yi = [s.yi for s in result.studies]
    vi = [s.vi for s in result.studies]
    opts: dict[str, Any] = dict(mu_prior_sd=mu_prior_sd, threshold=threshold, benefit=benefit, level=level)
    main = bayes_exact(yi, vi, studies, tau_prior=tau_prior, **opts)
    alternatives = [p for p in (SENSITIVITY_PRIORS if default_scale else ()) if p != main.prior["tau_prior"]]
    others = sensitivity(yi, vi, alternatives, **opts) if prior_sensitivity else ()
    return main, others


def pool_bayes_mcmc(result: MetaResult, likelihood: str = "normal", tau_prior: str | None = None,
                    mu_prior_sd: float | None = None, threshold: float | None = None, benefit: str = "lower",
                    level: float = 0.95, seed: int = 1, draws: int = 1500, save_trace: str | None = None,
                    progressbar: bool = False, parameterisation: str = "marginal") -> BayesResult:
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


def robustness_by(table: TrialTable, by: str, measure: str, small_study: str | Sequence[str] = (),
                  influence: bool = False, method: str = "REML", ci: str = "wald", cc: float = 0.5,
                  pet_peese: bool = False, level: float = 0.95, input_level: float = 0.95, scale: str | None = None,
                  trim_fill: bool = False, trim_fill_estimator: str = "L0", trim_fill_side: str | None = None,
                  selection_model: str | None = None, steps: Sequence[float] = (0.025,),
                  benefit: str = "lower") -> list[dict[str, Any]]:
    """Small-study tests and influence diagnostics for every group of rows (column ``by``), vectorised
    across groups: a list, in the order groups first appear (as ``pool_by``), of dicts with one key
    per test and ``influence`` (list of per-study dicts), JSON-ready.

    ``trim_fill`` (``trim_fill_estimator`` L0 or R0; ``trim_fill_side`` None: decided per group, or
    "left"/"right") adds ``trim_fill`` (vectorised across groups); ``selection_model="step"`` with
    ``steps`` and ``benefit`` adds ``selection_model`` (fitted group by group). Their keys are those of
    the single-fit JSON; a group too small, or where the method fails, gets null numbers and the reason
    in the block's ``warning`` and ``notes``."""
    import numpy as np

    from .fit.models import normalise_method

    method = normalise_method(method)
    all_keys = table.column(by)
    groups = list(dict.fromkeys(all_keys))
    lookup = {x: j for j, x in enumerate(groups)}
    es = escalc(table, measure, cc=cc, input_level=input_level, scale=scale)
    gid = np.fromiter((lookup[x] for x in es.table.column(by)), dtype=np.intp, count=es.k)
    out: list[dict[str, Any]] = [dict() for _ in groups]
    if small_study:
        from .methods.publication_bias import tests_by_group

        tests = [small_study] if isinstance(small_study, str) else list(small_study)
        for j, d in enumerate(tests_by_group(es, gid, len(groups), tests)):
            out[j].update(d)
    if pet_peese:
        from .methods.publication_bias import pet_peese_by_group

        for j, d in enumerate(pet_peese_by_group(es, gid, len(groups), level=level)):
            out[j]["pet_peese"] = d
    if influence:
        from .methods.influence import influence_by_group

        for j, rows in enumerate(influence_by_group(es, gid, len(groups), method=method, ci=ci)):
            out[j]["influence"] = rows
    if trim_fill:
        from .methods.bias_by import trim_fill_by_group

        for j, d in enumerate(trim_fill_by_group(es, gid, len(groups), method=method,
                                                 estimator=trim_fill_estimator, side=trim_fill_side, level=level)):
            out[j]["trim_fill"] = d
    if selection_model:
        from .methods.bias_by import selection_model_by_group

        if str(selection_model).lower() != "step":
            raise InputError(f"unknown selection model {selection_model!r}; choose step", column="--selection-model")
        for j, d in enumerate(selection_model_by_group(es, gid, len(groups), steps=steps, benefit=benefit,
                                                       method=method, level=level)):
            out[j]["selection_model"] = d
    return out



def read_data_by(path: str | os.PathLike[str], measure: str | None, by: str, strict: bool = False,
                 drop_incomplete: bool = False,
                 ) -> tuple[TrialTable | None, str, dict[Any, str], Sequence[Any] | None]:
    """``read_data`` for ``--by``: (TrialTable of the good rows or None, measure, {group: error of its
    first bad row}, key of every row read). With ``strict`` the first bad row stops the run
    (InputError), as without ``--by``."""
    from .fit.effects import normalise_measure
    from .io.lenient import read_table_by

    if strict or drop_incomplete:  # (rows left out by --drop-incomplete are named by the exact reader)
        table, measure = read_data(path, measure, drop_incomplete=drop_incomplete)
        return table, measure, {}, None
    measure = normalise_measure(measure)
    import os

    from .io import columnar

    parquet = columnar.is_parquet(path)
    known_bad = False
    if parquet or (os.path.isfile(path) and os.path.getsize(path) >= columnar.FAST_BYTES):
        # Large input: the fast reader first; only if it finds a bad row, the row-by-row reader.
        try:
            table = columnar.read_any(path, measure=measure, by=by.strip().lower())
            return table, measure, {}, None
        except InputError as exc:
            if exc.line is None:
                raise
            known_bad = True
    if parquet:
        from .io.lenient import table_by

        got = table_by(columnar.parquet_rows(path), by, path=str(path), measure=measure, first_line=0,
                       try_exact=not known_bad)
    else:
        got = read_table_by(path, by, measure=measure, try_exact=not known_bad)
    failed: dict[Any, str] = {}
    for i in sorted(got.errors):
        failed.setdefault(got.keys[i], got.errors[i])
    return got.table, measure, failed, got.keys


