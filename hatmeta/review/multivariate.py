"""A multivariate analysis of the HAT trials: one outcome at several time points, modelled jointly
(``analyses/multivariate/<name>.toml``, run by ``hatmeta pool NAME``) with the engine's ``rma_mv``.

A multivariate spec is a pairwise spec (eligibility, arms, definition, exclusions: read by
``hatmeta.review.spec.read_spec``) plus a ``[multivariate]`` table: the time points (weeks), the
random-effects structure across them, the assumed within-trial correlation of the sampling errors of
a trial's effects at two time points and its sensitivity range, each with the reason. Every trial is
checked at each time point as the pairwise analysis checks it at one (the time-point rule becomes
"exact" at that time point), so a trial enters once per time point at which every arm has a figure,
and what it lacks at another time point is named with the reason.

What the data identify is said, never assumed silently: the between-trial correlation of the time
points' true effects (``rho`` of ``~ timepoint | trial``) and the within-trial sampling correlation
enter the likelihood only through trials that report two time points. With none, the model is fitted
as ``~ 1 | trial`` (one tau^2, the same likelihood as compound symmetry with any rho) and the
sensitivity table shows the estimates do not move with the assumed correlation.

Multivariate specs live in their own folder so that the pairwise listings (``hatmeta sof``,
``add-trial``'s placement, the report's pairwise pages) never take them for pairwise ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import InputError, NotPooled
from .spec import AnalysisSpec, _line_of, read_spec

MV_KEYS = {"timepoints", "random", "struct", "within_rho", "rho_sensitivity", "rho_reason", "reason"}
# The random-effects forms a spec may ask for (trial = the cluster, timepoint = the inner factor).
RANDOM_FORMS = {"~ timepoint | trial": "structured", "~ 1 | trial": "intercept"}
STRUCTS = ("CS", "HCS", "UN")


@dataclass(frozen=True)
class MultivariateSpec:
    """A pairwise spec (``base``) with the [multivariate] settings: time points in weeks (sorted), the
    random term and structure, the assumed within-trial correlation and the sensitivity values."""

    base: AnalysisSpec
    timepoints: tuple
    random: str
    struct: str
    within_rho: float
    rho_sensitivity: tuple
    rho_reason: str
    reason: str

    @property
    def name(self) -> str:
        return self.base.name

    @property
    def title(self) -> str:
        return self.base.title


def multivariate_dir(analyses_dir=None) -> Path:
    """The folder of multivariate specs: ``<analyses>/multivariate``."""
    from .spec import default_analyses_dir

    return Path(analyses_dir or default_analyses_dir()) / "multivariate"


def list_multivariate(analyses_dir=None) -> list:
    """Names of the multivariate specs (file stems), sorted."""
    folder = multivariate_dir(analyses_dir)
    return sorted(p.stem for p in folder.glob("*.toml") if p.is_file()) if folder.is_dir() else []


def is_multivariate(name: str, analyses_dir=None) -> bool:
    """Whether ``name`` names a multivariate spec (a name, never a path)."""
    return isinstance(name, str) and name in list_multivariate(analyses_dir)


def read_multivariate_spec(name: str, analyses_dir=None) -> MultivariateSpec:
    """The multivariate spec ``name`` (inside analyses/multivariate/), checked key by key."""
    folder = multivariate_dir(analyses_dir)
    if not is_multivariate(name, analyses_dir):
        known = ", ".join(list_multivariate(analyses_dir)) or "none"
        raise InputError(f"no multivariate analysis {name!r} in {folder} (known: {known})", option="ANALYSIS")
    path = folder / f"{name}.toml"
    base = read_spec(path)
    text = path.read_text(encoding="utf-8")
    file = str(path)
    table = base.raw.get("multivariate")

    def fail(message, key):
        raise InputError(message, file=file, line=_line_of(text, key, "multivariate") or _line_of(text, "multivariate"),
                         column=f"multivariate.{key}")

    if not isinstance(table, dict):
        raise InputError("a multivariate spec needs a [multivariate] table (timepoints, within_rho, ...)",
                         file=file, column="multivariate")
    for key in table:
        if key not in MV_KEYS:
            fail(f"unknown key; allowed: {', '.join(sorted(MV_KEYS))}", key)
    if base.measure not in ("RR", "OR", "RD", "MD", "SMD"):
        raise InputError(f"a multivariate analysis pools RR, OR, RD, MD or SMD, not {base.measure}", file=file,
                         column="measure")
    points = table.get("timepoints")
    if (not isinstance(points, list) or len(points) < 2 or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0 for x in points)
            or len(set(points)) != len(points)):
        fail("must list at least two different time points in weeks (e.g. [26, 52])", "timepoints")
    random = " ".join(str(table.get("random", "~ timepoint | trial")).split())
    if random not in RANDOM_FORMS:
        fail(f"must be one of {', '.join(repr(r) for r in RANDOM_FORMS)}", "random")
    struct = str(table.get("struct", "CS")).upper()
    if struct not in STRUCTS:
        fail(f"must be one of {', '.join(STRUCTS)}", "struct")

    def rho(value, key):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not -1 < value < 1:
            fail("must be a correlation strictly between -1 and 1", key)
        return float(value)

    if "within_rho" not in table:
        fail("required: the assumed within-trial correlation (with rho_reason)", "within_rho")
    within = rho(table["within_rho"], "within_rho")
    sens = table.get("rho_sensitivity", [])
    if not isinstance(sens, list) or not sens:
        fail("must list the correlations of the sensitivity analysis (e.g. [0.3, 0.5, 0.7, 0.9])", "rho_sensitivity")
    values = tuple(sorted({rho(v, "rho_sensitivity") for v in sens} | {within}))
    reasons = {}
    for key in ("rho_reason", "reason"):
        value = table.get(key)
        if not isinstance(value, str) or not value.strip():
            fail("required: say why (a source, or that it is an assumption and why)", key)
        reasons[key] = " ".join(value.split())
    return MultivariateSpec(base=base, timepoints=tuple(sorted(float(x) for x in points)), random=random,
                            struct=struct, within_rho=within, rho_sensitivity=values,
                            rho_reason=reasons["rho_reason"], reason=reasons["reason"])


# ---------------------------------------------------------------- the trials at each time point

@dataclass(frozen=True)
class MultivariateAnalysis:
    """The rows to model (one per trial and time point, in trial then time order), each trial's status at
    each time point, the trials left out with the reason at every time point, and the notes."""

    spec: MultivariateSpec
    rows: tuple  # (trial, weeks, Comparison)
    status: dict  # trial -> {weeks: "" (contributes) or the reason it does not}
    omitted: tuple  # (trial, reason): trials that contribute no time point
    notes: tuple
    labels: dict  # trial -> display label
    extraction: Any = None

    def trials(self) -> list:
        """The contributing trials, in extraction order."""
        seen: list = []
        for trial, _, _ in self.rows:
            if trial not in seen:
                seen.append(trial)
        return seen

    def paired(self) -> list:
        """Trials contributing more than one time point."""
        return [t for t in self.trials() if sum(1 for r in self.rows if r[0] == t) > 1]


def build_multivariate(spec: MultivariateSpec, ex) -> MultivariateAnalysis:
    """Check every trial at every time point (the pairwise checks, time point rule 'exact')."""
    from .analysis import build_analysis, trial_labels

    by_time, status, notes = {}, {}, []
    for weeks in spec.timepoints:
        at = replace(spec.base, timepoint_rule="exact", timepoint_weeks=weeks, max_weeks=None)
        try:
            an = build_analysis(at, ex)
        except NotPooled as exc:
            comparisons, omitted, more = (), exc.omitted, ()
        else:
            comparisons, omitted, more = an.comparisons, an.omitted, an.notes
        by_time[weeks] = {c.trial: c for c in comparisons}
        for trial, reason in omitted:
            status.setdefault(trial, {})[weeks] = _context(reason, ex, trial, at.outcome, weeks)
        for c in comparisons:
            status.setdefault(c.trial, {})[weeks] = ""
        for n in more:
            if n not in notes:
                notes.append(n)
    order = [t for t in ex.trial_ids() if t in status]
    rows = tuple((t, w, by_time[w][t]) for t in order for w in spec.timepoints if t in by_time[w])
    omitted = []
    for t in order:
        if all(status[t].get(w) for w in spec.timepoints):
            reasons = {status[t][w] for w in spec.timepoints}
            if len(reasons) == 1:  # the same reason at every time point (an exclusion, the route, the arms)
                omitted.append((t, reasons.pop()))
            else:
                omitted.append((t, "; ".join(f"at {w:g} weeks: {status[t][w]}" for w in spec.timepoints)))
    return MultivariateAnalysis(spec=spec, rows=rows, status={t: status[t] for t in order}, omitted=tuple(omitted),
                                notes=tuple(notes), labels=trial_labels(ex, order), extraction=ex)


def _context(reason: str, ex, trial: str, outcome: str, weeks: float) -> str:
    """A time-point reason made specific: the extraction's 'not reported' note for that time point when
    it has one, else whether the time point lies beyond the trial's randomised phase (not measured) or
    within it (no figure in outcomes.csv)."""
    if not reason.startswith("[timepoint]"):
        return reason
    rows = [r for r in ex.outcomes_of(trial, outcome) if r["timepoint_weeks"]
            and float(r["timepoint_weeks"]) == weeks and r["status"] == "not reported"]
    if rows:
        return rows[0]["note"] or f"not reported at {weeks:g} weeks"
    fu = ex.trial(trial)["followup_weeks"]
    if fu and weeks > float(fu):
        return f"{reason} (its randomised phase ended at {float(fu):g} weeks)"
    return reason + (f" (within its randomised phase of {float(fu):g} weeks; no row in outcomes.csv)" if fu else "")


def trial_table(an: MultivariateAnalysis):
    """The rows as a TrialTable: one row per trial and time point, with ``trial`` and ``timepoint``
    columns (the cluster and the inner factor of the model)."""
    from ..io.trial_table import table_from_rows
    from .analysis import LAYOUT_COLUMNS, _format

    kind = an.spec.base.kind
    head = ["study", *LAYOUT_COLUMNS[kind], "trial", "timepoint", "label"]
    rows = [head] + [[f"{t}, {w:g} weeks", *(_format(c.values[col]) for col in LAYOUT_COLUMNS[kind]), t,
                      f"{w:g}", f"{an.labels[t]}, {w:g} weeks"] for t, w, c in an.rows]
    table = table_from_rows(rows, path=str(an.extraction.paths["outcomes.csv"]), measure=an.spec.base.measure)
    return replace(table, lines=tuple(c.rows[0].line for _, _, c in an.rows))


# ---------------------------------------------------------------- the model

@dataclass(frozen=True)
class TimepointEstimate:
    """The pooled effect at one time point (analysis scale) and how many trials inform it directly."""

    weeks: float
    trials: int
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p: float


@dataclass(frozen=True)
class SensitivityRow:
    """The model refitted with one within-trial correlation."""

    rho: float
    estimates: tuple  # of TimepointEstimate
    tau2: float
    rho_between: float | None
    loglik: float


@dataclass(frozen=True, eq=False)
class MultivariateResult:
    """A multivariate analysis fitted: the model at the assumed correlation (``fit``, an MvResult), the
    estimates per time point and their difference, what is and is not identified, the sensitivity to
    the within-trial correlation, and which trials contribute which time points. Analysis scale
    (log for RR and OR); ``to_dict()`` is the JSON, ``summary()`` the text."""

    name: str
    title: str
    measure: str
    scale: str
    level: float
    fit: Any  # hatmeta.fit.multilevel.MvResult
    random_used: str
    estimates: tuple  # of TimepointEstimate
    difference: dict  # later minus earlier time point: estimate, se, ci_low, ci_high, z, p
    tau2: float
    rho_between: float | None
    identified: tuple  # sentences
    within_rho: float
    rho_reason: str
    reason: str
    sensitivity: tuple  # of SensitivityRow
    contributions: tuple  # (trial, label, {weeks: reason or ""})
    omitted: tuple  # (trial, reason)
    notes: tuple = ()
    timepoints: tuple = field(default_factory=tuple)
    labels: dict = field(default_factory=dict)  # trial -> display label, as pool names trials in its text

    def to_dict(self) -> dict:
        from ..precision import plain

        def est(e):
            return {"weeks": e.weeks, "trials": e.trials, "estimate": e.estimate, "se": e.se, "ci_low": e.ci_low,
                    "ci_high": e.ci_high, "p": e.p}

        return plain({
            "analysis": self.name, "title": self.title, "model": "rma.mv", "measure": self.measure,
            "scale": self.scale, "method": self.fit.method, "level": self.level, "k": self.fit.k,
            "random": self.random_used, "timepoints": list(self.timepoints),
            "estimates": [est(e) for e in self.estimates], "difference": dict(self.difference),
            "tau2": self.tau2, "rho_between": self.rho_between, "identified": list(self.identified),
            "within_rho": {"value": self.within_rho, "source": "assumption", "reason": self.rho_reason},
            "reason": self.reason,
            "sensitivity": [{"within_rho": s.rho, "estimates": [est(e) for e in s.estimates], "tau2": s.tau2,
                             "rho_between": s.rho_between, "loglik": s.loglik} for s in self.sensitivity],
            "contributions": [{"trial": t, "label": label,
                               "timepoints": [{"weeks": w, "contributes": not why, "reason": why}
                                              for w, why in sorted(st.items())]}
                              for t, label, st in self.contributions],
            "omitted": [{"trial": t, "reason": r} for t, r in self.omitted],
            "fit": self.fit.to_dict(), "notes": list(self.notes)})

    def to_frame(self):
        """The sensitivity table (pandas): one row per within-trial correlation and time point."""
        import pandas as pd

        return pd.DataFrame([{"within_rho": s.rho, "weeks": e.weeks, "estimate": e.estimate, "se": e.se,
                              "ci_low": e.ci_low, "ci_high": e.ci_high, "tau2": s.tau2, "loglik": s.loglik}
                             for s in self.sensitivity for e in s.estimates])

    def summary(self) -> str:
        from ..precision import quantised

        return multivariate_text(quantised(self))

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return multivariate_html(self)


def pool_multivariate(name: str, data_dir: str | Path | None = None, analyses_dir: str | Path | None = None,
                      level: float = 0.95) -> tuple[MultivariateResult, MultivariateAnalysis]:
    """Fit the multivariate analysis ``name`` (``analyses/multivariate/<name>.toml``).

    Parameters
    ----------
    name : str
        The spec's name, e.g. ``"retention-multivariate"``.
    data_dir, analyses_dir : path, optional
        The extraction and the analyses folder (default: the project's).
    level : float
        Confidence level of the Wald intervals.

    Returns
    -------
    tuple
        (MultivariateResult, MultivariateAnalysis): estimates per time point on the analysis scale (log
        for RR and OR), the rho sensitivity, and the trials and time points behind them.

    Raises NotPooled when the rows cannot identify the model (no row, or no more rows than coefficients).
    """
    from .extraction import load_extraction

    spec = read_multivariate_spec(name, analyses_dir)
    an = build_multivariate(spec, load_extraction(data_dir))
    return fit_multivariate(an, level=level), an


def fit_multivariate(an: MultivariateAnalysis, level: float = 0.95) -> MultivariateResult:
    """The model of ``an`` at the spec's within-trial correlation and at each sensitivity value.

    The design has one column per time point with a row (metafor's ``mods = ~ factor(timepoint) - 1``);
    V has covariance rho sqrt(vi vj) between a trial's rows (metafor's ``vcalc(vi, cluster = trial,
    obs = timepoint, rho = rho)``). The random term is the spec's ``~ timepoint | trial`` with its
    structure when some trial contributes two time points, otherwise ``~ 1 | trial`` (see the module
    docstring)."""
    import numpy as np

    from ..fit.effects import escalc
    from ..fit.multilevel import rma_mv, vcalc

    spec = an.spec
    base = spec.base
    if not an.rows:
        raise NotPooled(f"no trial contributes {base.outcome!r} at any of "
                        f"{', '.join(f'{w:g}' for w in spec.timepoints)} weeks", omitted=an.omitted,
                        file=base.path)
    table = trial_table(an)
    es = escalc(table, base.measure, cc=0.5)
    notes = list(an.notes) + list(es.notes)
    dropped = {s for s, _ in es.dropped}
    for s, why in es.dropped:
        notes.append(f"{s}: left out of the model: {why}")
    rows = [r for r in an.rows if f"{r[0]}, {r[1]:g} weeks" not in dropped]
    weeks_present = [w for w in spec.timepoints if any(r[1] == w for r in rows)]
    for w in spec.timepoints:
        if w not in weeks_present:
            notes.append(f"no trial contributes {w:g} weeks: that time point has no estimate")
    k, p = len(rows), len(weeks_present)
    if k <= p:
        raise NotPooled(f"{k} effect(s) for {p} time point(s): the model needs more effects than time points "
                        "to estimate the between-trial variance", omitted=an.omitted, file=base.path)
    X = np.array([[1.0 if r[1] == w else 0.0 for w in weeks_present] for r in rows])
    names = [f"{w:g} weeks" for w in weeks_present]
    trials = [r[0] for r in rows]
    paired = [t for t in dict.fromkeys(trials) if trials.count(t) > 1]
    if spec.random == "~ timepoint | trial" and paired:
        random, struct = ["~ timepoint | trial"], spec.struct
    else:
        random, struct = ["~ 1 | trial"], "CS"
    identified = _identified(an, rows, weeks_present, paired, spec)

    def fit(rho):
        V = vcalc(es.vi, trials, rho)
        return rma_mv(es, random=random, struct=struct, V=V, method="ML" if base.method == "ML" else "REML",
                      level=level, X=X, names=names)

    def estimates(res):
        return tuple(TimepointEstimate(weeks=w, trials=sum(1 for r in rows if r[1] == w), estimate=c.estimate,
                                       se=c.se, ci_low=c.ci_low, ci_high=c.ci_high, p=c.p)
                     for w, c in zip(weeks_present, res.coefficients))

    def variance(res):
        if res.struct is not None:
            return res.tau2[0].estimate, (res.rho[0] if res.rho else None)
        return res.sigma2[0].estimate, None

    main = fit(spec.within_rho)
    sens = []
    for rho in spec.rho_sensitivity:
        res = main if rho == spec.within_rho else fit(rho)
        tau2, rb = variance(res)
        sens.append(SensitivityRow(rho=rho, estimates=estimates(res), tau2=tau2, rho_between=rb, loglik=res.loglik))
    tau2, rho_between = variance(main)
    difference: dict = {}
    if p >= 2:
        from .. import dist

        c = np.zeros(p)
        c[0], c[-1] = -1.0, 1.0
        d = float(c @ np.array([e.estimate for e in main.coefficients]))
        se = float(math.sqrt(c @ main.vcov @ c))
        zq = dist.norm_ppf(0.5 + level / 2)
        difference = {"from_weeks": weeks_present[0], "to_weeks": weeks_present[-1], "estimate": d, "se": se,
                      "ci_low": d - zq * se, "ci_high": d + zq * se, "z": d / se, "p": 2 * dist.norm_sf(abs(d / se))}
    contributions = tuple((t, an.labels[t], dict(an.status[t])) for t in an.trials())
    return MultivariateResult(
        name=spec.name, title=spec.title, measure=base.measure, scale=es.scale, level=level, fit=main,
        random_used=random[0] + (f" (struct {struct})" if random[0] != "~ 1 | trial" else ""),
        estimates=estimates(main), difference=difference, tau2=tau2, rho_between=rho_between,
        identified=tuple(identified), within_rho=spec.within_rho, rho_reason=spec.rho_reason, reason=spec.reason,
        sensitivity=tuple(sens), contributions=contributions, omitted=an.omitted, notes=tuple(notes),
        timepoints=tuple(spec.timepoints), labels=dict(an.labels))


def _identified(an, rows, weeks_present, paired, spec) -> list:
    """What the rows identify and what they do not, in words."""
    out = []
    if paired:
        out.append(f"{len(paired)} trial(s) contribute more than one time point ({', '.join(paired)}): the "
                   f"within-trial correlation enters the sampling covariance of their rows, and the "
                   f"between-trial correlation of the time points' true effects is estimated from them "
                   f"({spec.struct}).")
        if len(paired) < 3:
            out.append("With fewer than 3 such trials the between-trial correlation rests on very little "
                       "information and may sit on its bound (-1 or 1).")
    else:
        out.append("No trial contributes more than one time point, so the within-trial correlation enters no "
                   "covariance (V is diagonal) and the estimates cannot depend on it: the sensitivity table "
                   "shows the same numbers at every value.")
        if spec.random == "~ timepoint | trial":
            out.append("The between-trial correlation of a trial's true effects at the two time points (rho of "
                       "~ timepoint | trial) is not identified without a trial reporting both; the model is "
                       "fitted as ~ 1 | trial (one tau^2 for every time point), which has the same likelihood "
                       "as compound symmetry with any rho.")
    if not paired and len(weeks_present) > 1:
        out.append("The difference between the time points is then a comparison between trials (each time "
                   "point's trials against the other's), not a change within trials: it is confounded with "
                   "everything else in which those trials differ (country, control arm, definition).")
    for w in weeks_present:
        n = sum(1 for r in rows if r[1] == w)
        if n == 1:
            only = next(r[0] for r in rows if r[1] == w)
            only = an.labels.get(only, only)
            out.append(f"{w:g} weeks rests on one trial ({only}): its estimate is that trial's effect, with the "
                       "between-trial variance estimated from the other time point(s) added to its variance.")
    df = len(rows) - len(weeks_present)
    out.append(f"{len(rows)} effects and {len(weeks_present)} time-point coefficients leave {df} degree(s) of "
               "freedom for the between-trial variance" + (": a very imprecise tau^2." if df < 3 else "."))
    return out


# ---------------------------------------------------------------- text and HTML

def _nat(res, x):
    if x is None or not math.isfinite(x):
        return "NA"
    return f"{math.exp(x):.2f}" if res.scale == "log" else f"{x:.2f}"


def _est_row(res, e):
    from ..numbers import p_bare

    return (f"{e.weeks:g} weeks", e.trials, _nat(res, e.estimate), f"[{_nat(res, e.ci_low)}, {_nat(res, e.ci_high)}]",
            f"{e.estimate:.4f}", f"{e.se:.4f}", p_bare(e.p))


def multivariate_text(res: MultivariateResult) -> str:
    """The result as text at 80 columns: estimates per time point, variance components, what is
    identified, the sensitivity table, which trials contribute which time points and the omitted."""
    import textwrap

    from ..numbers import level_text, p_bare
    from ..summary import text_table

    nat = res.measure
    lv = level_text(res.level)

    def para(text, indent="  "):
        return textwrap.wrap(text, 80, initial_indent=indent, subsequent_indent=indent)

    lines = textwrap.wrap(res.title, 80)
    lines += textwrap.wrap(f"Multivariate model (metafor rma.mv): {res.fit.method}, random {res.random_used}, "
                           f"k = {res.fit.k} effects", 80)
    lines += textwrap.wrap(f"Within-trial correlation of the sampling errors: {res.within_rho:g} (an assumption; "
                           "see below)", 80)
    lines += ["", f"Estimates per time point ({nat}, {lv} CI)"]
    head = ("time point", "trials", nat, f"{lv} CI", "log " + nat if res.scale == "log" else "estimate", "SE", "p")
    rows = [_est_row(res, e) for e in res.estimates]
    lines += text_table(head, rows)
    d = res.difference
    if d:
        what = "ratio of the risk ratios" if res.scale == "log" else "difference"
        lines += para(f"{d['to_weeks']:g} vs {d['from_weeks']:g} weeks ({what}): {_nat(res, d['estimate'])} "
                      f"[{_nat(res, d['ci_low'])}, {_nat(res, d['ci_high'])}], p = {p_bare(d['p'])}")
    lines += ["", "Variance components"]
    lines += [f"  tau^2 (between trials) = {res.tau2:.4f}, tau = {math.sqrt(max(res.tau2, 0)):.4f}"]
    if res.rho_between is not None:
        lines += [f"  rho (between trials, across time points) = {res.rho_between:.4f}"]
    else:
        lines += ["  rho (between trials, across time points): not identified"]
    lines += [f"  QE = {res.fit.qe:.4f} on {res.fit.qe_df} df, p = {p_bare(res.fit.qe_p)}; "
              f"logLik = {res.fit.loglik:.4f}"]
    lines += ["", "What the data identify"]
    for s in res.identified:
        lines += textwrap.wrap(s, 80, initial_indent="  - ", subsequent_indent="    ")
    lines += ["", f"Sensitivity to the within-trial correlation ({nat}, {lv} CI)"]
    head = ("rho", *(f"{e.weeks:g} weeks" for e in res.estimates), "tau^2", "logLik")
    rows = [(f"{s.rho:g}", *(f"{_nat(res, e.estimate)} [{_nat(res, e.ci_low)}, {_nat(res, e.ci_high)}]"
                              for e in s.estimates), f"{s.tau2:.4f}", f"{s.loglik:.4f}") for s in res.sensitivity]
    lines += text_table(head, rows)
    lines += ["", "Which trials contribute which time points"]
    weeks = list(res.timepoints)
    head = ("trial", *(f"{w:g} weeks" for w in weeks))
    rows = [(label, *("yes" if not st.get(w) else "no" for w in weeks)) for _, label, st in res.contributions]
    lines += text_table(head, rows)
    for _, label, st in res.contributions:
        for w in weeks:
            if st.get(w):
                lines += textwrap.wrap(f"{label} at {w:g} weeks: {st[w]}", 80, initial_indent="  ",
                                       subsequent_indent="    ")
    if res.omitted:
        lines += ["", "Left out (no time point)"]
        for t, why in res.omitted:
            lines += textwrap.wrap(f"{res.labels.get(t, t)}: {why}", 80, initial_indent="  ", subsequent_indent="    ")
    lines += ["", f"Why rho = {res.within_rho:g}"] + para(res.rho_reason)
    lines += ["", "The model"] + para(res.reason)
    if res.notes:
        lines += ["", "Notes"]
        for n in res.notes:
            lines += textwrap.wrap(n, 80, initial_indent="  - ", subsequent_indent="    ")
    return "\n".join(lines) + "\n"


def multivariate_html(res: MultivariateResult) -> str:
    """The report page's body: the same content as the text, as HTML tables."""
    import html

    from ..numbers import level_text, p_bare

    e = html.escape
    lv = level_text(res.level)
    nat = res.measure

    def table(head, rows):
        return ("<table><thead><tr>" + "".join(f"<th>{e(str(h))}</th>" for h in head) + "</tr></thead><tbody>"
                + "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>" for r in rows)
                + "</tbody></table>")

    out = [f"<p>Multivariate model (metafor <code>rma.mv</code>): {e(res.fit.method)}, random "
           f"<code>{e(res.random_used)}</code>, k = {res.fit.k} effects; within-trial correlation of the "
           f"sampling errors {res.within_rho:g} (an assumption, see below).</p>",
           "<h3>Estimates per time point</h3>",
           table(("time point", "trials", nat, f"{lv} CI", "log " + nat if res.scale == "log" else "estimate",
                  "SE", "p"), [_est_row(res, x) for x in res.estimates])]
    d = res.difference
    if d:
        what = "ratio of the risk ratios" if res.scale == "log" else "difference"
        out.append(f"<p>{d['to_weeks']:g} vs {d['from_weeks']:g} weeks ({what}): {_nat(res, d['estimate'])} "
                   f"[{_nat(res, d['ci_low'])}, {_nat(res, d['ci_high'])}], p = {e(p_bare(d['p']))}.</p>")
    rho_b = f"{res.rho_between:.4f}" if res.rho_between is not None else "not identified"
    out += ["<h3>Variance components</h3>",
            table(("component", "estimate"), [("tau^2 (between trials)", f"{res.tau2:.4f}"),
                                              ("tau", f"{math.sqrt(max(res.tau2, 0)):.4f}"),
                                              ("rho (between trials, across time points)", rho_b),
                                              ("QE (df, p)", f"{res.fit.qe:.4f} ({res.fit.qe_df}, "
                                                             f"{p_bare(res.fit.qe_p)})"),
                                              ("logLik", f"{res.fit.loglik:.4f}")]),
            "<h3>What the data identify</h3>",
            "<ul>" + "".join(f"<li>{e(s)}</li>" for s in res.identified) + "</ul>",
            "<h3>Sensitivity to the within-trial correlation</h3>",
            table(("within-trial rho", *(f"{x.weeks:g} weeks: {nat} [{lv} CI]" for x in res.estimates), "tau^2",
                   "logLik"),
                  [(f"{s.rho:g}" + (" (assumed)" if s.rho == res.within_rho else ""),
                    *(f"{_nat(res, x.estimate)} [{_nat(res, x.ci_low)}, {_nat(res, x.ci_high)}]" for x in s.estimates),
                    f"{s.tau2:.4f}", f"{s.loglik:.4f}") for s in res.sensitivity]),
            f"<p><strong>Why rho = {res.within_rho:g}:</strong> {e(res.rho_reason)}</p>",
            "<h3>Which trials contribute which time points</h3>"]
    weeks = list(res.timepoints)
    out.append(table(("trial", *(f"{w:g} weeks" for w in weeks)),
                     [(label, *("contributes" if not st.get(w) else f"no: {st[w]}" for w in weeks))
                      for _, label, st in res.contributions]))
    if res.omitted:
        out += ["<h3>Left out (no time point)</h3>",
                "<ul>" + "".join(f"<li>{e(res.labels.get(t, t))}: {e(r)}</li>" for t, r in res.omitted) + "</ul>"]
    out += [f"<h3>The model</h3><p>{e(res.reason)}</p>"]
    if res.notes:
        out += ["<h3>Notes</h3>", "<ul>" + "".join(f"<li>{e(n)}</li>" for n in res.notes) + "</ul>"]
    return "\n".join(out)


def render_multivariate(out: Path, data_dir=None, analyses_dir=None) -> list:
    """A report page per multivariate spec (analyses/multivariate/*.toml): the estimates per time point,
    the variance components, what is and is not identified, the within-trial correlation's sensitivity
    table and reason, which trials contribute which time points and those left out.
    results/<name>-mv.json holds the numbers. Returns [(name, title, files)]."""
    import html

    from ..precision import dumps
    from .report import standalone_page

    done = []
    for name in list_multivariate(analyses_dir):
        files: list = []
        try:
            res, an = pool_multivariate(name, data_dir=data_dir, analyses_dir=analyses_dir)
        except InputError as exc:
            title = name
            body = f'<p class="refused">Not pooled: {html.escape(exc.message)}</p>'
            omitted = getattr(exc, "omitted", ())
            if omitted:
                body += "<ul>" + "".join(f"<li>{html.escape(t)}: {html.escape(r)}</li>" for t, r in omitted) + "</ul>"
        else:
            title = res.title
            (out / "results").mkdir(parents=True, exist_ok=True)
            path = out / "results" / f"{name}-mv.json"
            path.write_text(dumps(res.to_dict()) + "\n")
            files.append(path)
            about = " ".join(str(an.spec.base.raw.get("description", "")).split())
            body = (f"<p>{html.escape(about)}</p>\n" + res._repr_html_()
                    + f'\n<p>The numbers: <a href="results/{html.escape(name)}-mv.json">results/'
                      f"{html.escape(name)}-mv.json</a>. Pairwise analyses of one time point each: "
                      '<a href="retention.html">retention</a> (up to 52 weeks), '
                      '<a href="retention-26-weeks.html">retention at 26 weeks</a>.</p>\n')
        files.append(standalone_page(out, name, title, body))
        done.append((name, title, files))
    return done
