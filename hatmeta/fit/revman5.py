"""RevMan 5's meta-analysis, reproduced exactly (``--preset revman5``; ``revman`` is its alias).

Source: Deeks JJ, Higgins JPT, "Statistical algorithms in Review Manager 5", Statistical Methods
Group of The Cochrane Collaboration, August 2010 (the RevMan 5 help; mirrored at
researchgate.net/publication/252093205), and the Cochrane Handbook 5.1, section 9.4.4 ("RevMan
automatically adds 0.5 to each cell of the 2x2 table for any such study"). Where the document leaves
a choice open, the rule below is the one RevMan's stored results confirm (issue 25; R meta's
``settings.meta("RevMan5")`` makes the same choices for RR, OR, MD and SMD):

- binary data: 0.5 is added to all four cells of a study with a zero cell, for the study's RR and OR,
  inside the Mantel-Haenszel RR and OR, and for the variance of a risk difference; a study with no
  events (or only events) in both arms is "not estimable" for RR and OR (it stays in for RD);
- Mantel-Haenszel RD: the estimate from the raw counts (weights n1 n2 / N), its variance
  sum((a b n2^3 + c d n1^3) / (n1 n2 N^2)) with the corrected cells over (sum n1 n2 / N)^2 with the raw
  counts (Greenland & Robins 1985, the Sato variance's RevMan form); the study's RD is the raw
  difference of proportions, its variance a b / n1^3 + c d / n2^3 from the corrected cells;
- heterogeneity: Q = sum w_i (y_i - theta)^2 with w_i = 1 / v_i around the fixed-effect estimate
  of the chosen method (Mantel-Haenszel, inverse variance or Peto), df = k - 1, I^2 = (Q - df) / Q;
- random effects: DerSimonian-Laird tau^2 = max(0, (Q - df) / (sum w - sum w^2 / sum w)) from that
  Q, then inverse-variance weights 1 / (v_i + tau^2); within each subgroup the same, with its own Q
  and tau^2;
- SMD: Hedges' g with the approximate correction J = 1 - 3 / (4 N - 9) and variance
  N / (n1 n2) + g^2 / (2 (N - 3.94)), N = n1 + n2;
- Peto: O - E and V = n1 n2 m1 m2 / (N^2 (N - 1)) on the raw tables (no correction), fixed effect only;
- test for subgroup differences: Q between the subgroup totals with weights 1 / SE_j^2, df = J - 1,
  and its I^2 (Deeks & Higgins 2010, "Tests for subgroup differences"; Borenstein & Higgins 2013).

All values are on the analysis scale (log for RR, OR, Peto OR, and generic ratios).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from .. import dist as _dist  # no SciPy import (600 ms at start-up) for these quantiles
from ..errors import InputError
from ..results import MetaResult, StudyRows, SubgroupResult, SubgroupTest
from .effects import EffectSizes, ci_of

# The preset's methods: RevMan's "statistical method" and "analysis model".
# DL (and the default REML, meaning "not chosen") is RevMan's random-effects model with its default
# statistical method for the data: Mantel-Haenszel for counts, inverse variance otherwise.
METHODS = {"MH": ("MH", False), "MH-DL": ("MH", True), "FE": ("IV", False), "IV": ("IV", False),
           "IV-DL": ("IV", True), "PETO": ("PETO", False)}
DEFAULT_RANDOM = ("DL", "REML")
NAMES = {("MH", False): "M-H, Fixed", ("MH", True): "M-H, Random", ("IV", False): "IV, Fixed",
         ("IV", True): "IV, Random", ("PETO", False): "Peto, Fixed"}
# hatmeta's method names of the five analyses (render/text.py names them).
RESULT_METHOD = {("MH", False): "MH", ("MH", True): "MH-DL", ("IV", False): "FE", ("IV", True): "DL",
                 ("PETO", False): "PETO"}
PRESETS = ("revman5", "revman")
CC = 0.5


def resolve_method(method: str | None, layout: str, measure: str) -> tuple[str, bool]:
    """(statistical method, random) of ``method`` under the preset: MH, MH-DL, FE (or IV), IV-DL,
    PETO; DL or none picks RevMan's default random-effects analysis for the data."""
    m = "DL" if method is None else str(method).strip().upper()
    binary = layout == "binary"
    if m in DEFAULT_RANDOM:
        return ("MH" if binary and measure in ("RR", "OR", "RD") else "IV"), True
    if m not in METHODS:
        raise InputError(f"the revman5 preset takes --method MH, MH-DL, FE (or IV), IV-DL, PETO or DL "
                         f"(RevMan's random effects), not {method}", column="--method")
    stat, random = METHODS[m]
    if stat in ("MH", "PETO") and not binary:
        raise InputError(f"RevMan's {stat} method needs binary counts", column="--method")
    if stat == "MH" and measure not in ("RR", "OR", "RD"):
        raise InputError(f"Mantel-Haenszel pools RR, OR or RD, not {measure}", column="--measure")
    if stat == "PETO" and measure not in ("OR", "PETO"):
        raise InputError("the Peto method pools odds ratios (--measure OR)", column="--measure")
    return stat, random


@dataclass(frozen=True)
class Rows:
    """RevMan's study effects ``yi``, ``vi`` (analysis scale) and, for binary data, the raw cells
    ``raw`` and the corrected cells ``cor`` (a, b, c, d), one entry per estimable study."""

    yi: np.ndarray
    vi: np.ndarray
    raw: tuple | None = None
    cor: tuple | None = None

    def take(self, idx: np.ndarray) -> Rows:
        def t(cells):
            return None if cells is None else tuple(x[idx] for x in cells)
        return Rows(self.yi[idx], self.vi[idx], t(self.raw), t(self.cor))


def study_effects(es: EffectSizes, stat: str) -> Rows:
    """RevMan's per-study effects for the rows escalc kept (double zeros already out for RR, OR)."""
    t = es.table
    c = t.columns
    if t.layout == "binary":
        a, n1, cc_, n2 = (np.asarray(c[k], float) for k in ("events_treat", "n_treat", "events_ctrl", "n_ctrl"))
        b, d = n1 - a, n2 - cc_
        raw = (a, b, cc_, d)
        if stat == "PETO":
            oe, v = _peto_oe_v(*raw)
            with np.errstate(divide="ignore", invalid="ignore"):
                return Rows(oe / v, 1 / v, raw, raw)
        zero = (a == 0) | (b == 0) | (cc_ == 0) | (d == 0)
        inc = np.where(zero, CC, 0.0)
        cor = (a + inc, b + inc, cc_ + inc, d + inc)
        ac, bc, ccc, dc = cor
        m1, m2 = ac + bc, ccc + dc
        if es.measure == "RD":
            yi = a / n1 - cc_ / n2  # the raw difference; the correction only enters the variance
            vi = ac * bc / m1**3 + ccc * dc / m2**3
        else:
            yi, vi = es.yi.copy(), es.vi.copy()  # escalc's RR and OR with to="only0": RevMan's
        return Rows(yi, vi, raw, cor)
    if t.layout == "continuous" and es.measure == "SMD":
        m1, s1, n1 = c["mean_treat"], c["sd_treat"], c["n_treat"]
        m2, s2, n2 = c["mean_ctrl"], c["sd_ctrl"], c["n_ctrl"]
        n = n1 + n2
        sp = np.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / (n - 2))
        g = (m1 - m2) / sp * (1 - 3 / (4 * n - 9))
        return Rows(g, n / (n1 * n2) + g**2 / (2 * (n - 3.94)))
    return Rows(es.yi.copy(), es.vi.copy())  # MD (s1^2/n1 + s2^2/n2) and generic inverse variance


def _peto_oe_v(a, b, c, d):
    n1, n2 = a + b, c + d
    n, m1 = n1 + n2, a + c
    with np.errstate(divide="ignore", invalid="ignore"):
        return a - n1 * m1 / n, n1 * n2 * m1 * (n - m1) / (n**2 * (n - 1))


def _mh(rows: Rows, measure: str):
    """Mantel-Haenszel estimate, SE and study weights (RevMan 5: corrected cells for RR and OR;
    the RD estimate and weights from raw counts, its variance's numerator from corrected cells)."""
    a, b, c, d = cast("tuple[Any, ...]", rows.cor)  # binary rows (the only ones pooled by MH) have cells
    n1, n2 = a + b, c + d
    n = n1 + n2
    if measure == "OR":
        R, S = np.sum(a * d / n), np.sum(b * c / n)
        if R == 0 or S == 0:
            raise InputError("Mantel-Haenszel OR is undefined: no discordant cells")
        P, Q = (a + d) / n, (b + c) / n
        var = (np.sum(P * a * d / n) / (2 * R**2) + np.sum(P * b * c / n + Q * a * d / n) / (2 * R * S)
               + np.sum(Q * b * c / n) / (2 * S**2))
        return float(np.log(R / S)), float(np.sqrt(var)), b * c / n
    if measure == "RR":
        R, S = np.sum(a * n2 / n), np.sum(c * n1 / n)
        var = np.sum((n1 * n2 * (a + c) - a * c * n) / n**2) / (R * S)
        return float(np.log(R / S)), float(np.sqrt(var)), c * n1 / n
    ra, rb, rc, rd = cast("tuple[Any, ...]", rows.raw)
    r1, r2 = ra + rb, rc + rd
    rn = r1 + r2
    w = r1 * r2 / rn
    est = np.sum((ra * r2 - rc * r1) / rn) / w.sum()
    var = np.sum((a * b * n2**3 + c * d * n1**3) / (n1 * n2 * n**2)) / w.sum() ** 2
    return float(est), float(np.sqrt(var)), w


def two_sided_p(z: float) -> float:
    """2 P(Z > |z|); NaN for an undefined z."""
    if not np.isfinite(z):
        return float("nan")
    return float(2 * _dist.norm_sf(np.array([abs(z)]))[0])


@dataclass(frozen=True)
class Pooled:
    """One RevMan total (overall or a subgroup's), analysis scale; weights in percent."""

    k: int
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    z: float
    p: float
    q: float
    df: int
    q_p: float
    i2: float
    tau2: float
    weights: np.ndarray


def pool_rows(rows: Rows, stat: str, random: bool, measure: str, level: float = 0.95) -> Pooled:
    """RevMan 5's total of ``rows`` under (``stat``, ``random``); see the module docstring."""
    k = len(rows.yi)
    if k == 0:
        raise InputError("no estimable study: RevMan shows this total as 'Not estimable'")
    y, v = rows.yi, rows.vi
    w = 1 / v
    if stat == "PETO":
        oe, vv = y / v, 1 / v  # (O - E) and V back from the study's Peto effect (y = (O-E)/V, v = 1/V)
        est, se, wt = float(oe.sum() / vv.sum()), float(1 / np.sqrt(vv.sum())), vv
    elif stat == "MH":
        est, se, wt = _mh(rows, measure)
    else:
        est, se, wt = float(np.sum(w * y) / w.sum()), float(1 / np.sqrt(w.sum())), w
    q = float(np.sum(w * (y - est) ** 2))
    df = k - 1
    tau2 = 0.0
    if random:
        denom = w.sum() - np.sum(w**2) / w.sum()
        tau2 = max(0.0, (q - df) / denom) if df > 0 else 0.0
        wt = 1 / (v + tau2)
        est, se = float(np.sum(wt * y) / wt.sum()), float(1 / np.sqrt(wt.sum()))
    crit = float(_dist.norm_isf((1 - level) / 2))
    z = est / se if se > 0 else float("nan")
    p = two_sided_p(z)
    i2 = 100 * max(0.0, (q - df) / q) if q > 0 and df > 0 else 0.0
    return Pooled(k=k, estimate=est, se=se, ci_low=est - crit * se, ci_high=est + crit * se, z=z, p=p, q=q,
                  df=df, q_p=float(_dist.chi2_sf(df, q)) if df > 0 else float("nan"), i2=i2, tau2=tau2,
                  weights=100 * np.asarray(wt, float) / np.sum(wt))


def subgroup_test(totals: list[Pooled]) -> tuple[float, int, float, float]:
    """Q between subgroup totals (weights 1 / SE_j^2), df = J - 1, p and I^2 (percent)."""
    est = np.array([t.estimate for t in totals])
    w = 1 / np.array([t.se for t in totals]) ** 2
    mu = np.sum(w * est) / w.sum()
    q = float(np.sum(w * (est - mu) ** 2))
    df = len(totals) - 1
    return (q, df, float(_dist.chi2_sf(df, q)) if df > 0 else float("nan"),
            (100 * max(0.0, (q - df) / q) if q > 0 else 0.0))


def revman5(es: EffectSizes, method: str | None = None, level: float = 0.95, preset: str = "revman5",
            study_level: float | None = None) -> MetaResult:
    """RevMan 5's analysis of ``es`` (the table's rows; escalc's effects for RR and OR).

    Parameters
    ----------
    es : EffectSizes
        From ``escalc(table, measure)``; binary counts, means and SDs, or a generic estimate and SE.
    method : str, optional
        MH, MH-DL, FE (or IV), IV-DL, PETO; DL or None: RevMan's random effects with its default
        statistical method (M-H for counts, IV otherwise).
    level : float
        Level of the total's CI (RevMan's CI_TOTAL / 100); ``study_level`` of the studies' CIs.

    Returns
    -------
    MetaResult
        Analysis scale; ``extra["revman5"]`` names RevMan's analysis (e.g. "M-H, Random").
    """
    stat, random = resolve_method(method, es.table.layout, es.measure)
    if es.table.layout == "binary" and es.cc != CC:
        raise InputError(f"RevMan 5 adds {CC:g} to the cells of a zero-cell study; drop --cc {es.cc:g}", column="--cc")
    rows = study_effects(es, stat)
    notes = [n for n in es.notes if not (stat == "PETO" and "added to every cell" in n)]
    bad = ~(np.isfinite(rows.yi) & np.isfinite(rows.vi) & (rows.vi > 0))
    if bad.any():  # e.g. Peto with V = 0, an SMD with SD 0: RevMan's 'Not estimable'
        gone = [s for s, b in zip(es.studies, bad) if b]
        notes.append(f"not estimable under RevMan 5 ({NAMES[(stat, random)]}): {', '.join(gone)}")
        keep = np.flatnonzero(~bad)
        es, rows = es.subset(keep), rows.take(keep)
    if es.k == 0:
        raise InputError("no estimable study: RevMan shows this total as 'Not estimable'", file=es.table.path)
    tot = pool_rows(rows, stat, random, es.measure, level)
    name = NAMES[(stat, random)]
    if es.measure == "SMD":
        notes.append("SMD: Hedges' g with J = 1 - 3/(4N - 9), variance N/(n1 n2) + g^2/(2(N - 3.94)) (RevMan 5)")
    notes.append(f"preset {preset}: RevMan 5 {name}" + (" (alias of revman5)" if preset == "revman" else ""))
    lo, hi = ci_of(rows.yi, rows.vi, study_level or level)
    studies = StudyRows(es.studies, rows.yi, rows.vi, tot.weights, lo, hi, inputs=es.table.columns,
                        labels=es.table.extra.get("label"))
    nan = float("nan")
    return MetaResult(
        measure=es.measure if stat != "PETO" else "PETO", method=RESULT_METHOD[(stat, random)], ci_method="wald",
        pi_method="none", scale=es.scale, k=tot.k, estimate=tot.estimate, se=tot.se, ci_low=tot.ci_low,
        ci_high=tot.ci_high, pi_low=nan, pi_high=nan, tau2=tot.tau2, tau2_ci_low=nan, tau2_ci_high=nan,
        tau=float(np.sqrt(tot.tau2)), q=tot.q, q_df=tot.df, q_p=tot.q_p, i2=tot.i2,
        h2=tot.q / tot.df if tot.df > 0 else nan, stat=tot.z, p=tot.p, df=None, studies=studies, level=level,
        notes=tuple(notes), extra={"preset": preset, "revman5": name})


def subgroups(es: EffectSizes, column: str, method: str | None = None, level: float = 0.95,
              ) -> tuple[tuple[SubgroupResult, ...], SubgroupTest, float]:
    """Each subgroup pooled as RevMan 5 pools it (its own MH estimate, Q and DL tau^2), and the test
    for subgroup differences between the subgroup totals: (SubgroupResults, SubgroupTest, I^2 of the test)."""
    stat, random = resolve_method(method, es.table.layout, es.measure)
    rows = study_effects(es, stat)
    ok = np.isfinite(rows.yi) & np.isfinite(rows.vi) & (rows.vi > 0)
    keys = es.table.column(column)
    levels = list(dict.fromkeys(k for k, good in zip(keys, ok) if good))
    # one subgroup left once not-estimable studies are out (RevMan still shows the others' empty totals)
    single = len(levels) == 1 and (len(set(keys)) > 1 or bool(es.dropped))
    if len(levels) < 2 and not single:
        raise InputError(f"subgroup column has a single value ({levels[0]!r}): nothing to compare" if levels
                         else "no estimable study", file=es.table.path, column=column)
    out, totals = [], []
    for g in levels:
        idx = np.flatnonzero(ok & (np.asarray(keys, dtype=object) == g))
        t = pool_rows(rows.take(idx), stat, random, es.measure, level)
        totals.append(t)
        out.append(SubgroupResult(group=g, k=t.k, estimate=t.estimate, se=t.se, ci_low=t.ci_low,
                                  ci_high=t.ci_high, tau2=t.tau2, q=t.q, i2=t.i2))
    # One estimable subgroup: RevMan 5 stores the test as Q = 0, P = 1 (Antibiotics for sore throat,
    # CD000023.pub4, analysis 4.3: its post-1975 studies have no events)
    q, df, p, i2 = subgroup_test(totals) if not single else (0.0, 0, 1.0, 0.0)
    return tuple(out), SubgroupTest(q=q, df=df, p=p), i2


def preset_fit(es: EffectSizes, preset: str, method: str | None = None, ci: str = "wald", pi: str = "t",
               level: float = 0.95) -> MetaResult:
    """The fit of a RevMan preset: "revman5" (alias "revman") or "revman-web" (fit/revman_web.py)."""
    name = str(preset).strip().lower()
    if name == "revman-web":
        from .revman_web import revman_web

        return revman_web(es, method=method, level=level)
    if name not in PRESETS:
        raise InputError(f"unknown preset {preset!r}; choose revman5 (alias revman) or revman-web", column="--preset")
    if str(ci).lower() != "wald":
        raise InputError("RevMan 5 gives Wald (normal) intervals only; use --preset revman-web for HKSJ",
                         column="--ci")
    return revman5(es, method=method, level=level, preset=name)


def subgroups_extra(es: EffectSizes, res: MetaResult, column: str, level: float = 0.95) -> dict:
    """``subgroups`` and ``subgroup_test`` of a revman5 fit ``res``, for ``MetaResult`` (the test's
    I^2 under ``extra["subgroup_test_i2"]``)."""
    method = {v: k for k, v in RESULT_METHOD.items()}[res.method]  # (statistical method, random)
    name = {("MH", False): "MH", ("MH", True): "MH-DL", ("IV", False): "FE", ("IV", True): "IV-DL",
            ("PETO", False): "PETO"}[method]
    groups, test, i2 = subgroups(es, column, method=name, level=level)
    return {"subgroups": groups, "subgroup_test": test, "extra": {**res.extra, "subgroup_test_i2": i2}}
