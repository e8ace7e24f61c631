"""Effect sizes per study (metafor's ``escalc``): ``yi`` and sampling variance ``vi`` on the analysis scale.

Ratio measures (RR, OR, IRR) are on the log scale; RD, MD, SMD and GEN on the identity scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..io.trial_table import LAYOUTS, MEASURE_LAYOUTS, TrialTable

MEASURES = ("RR", "OR", "RD", "MD", "SMD", "IRR", "GEN")
LOG_MEASURES = {"RR", "OR", "IRR", "PETO"}
Z975 = 1.959963984540054  # qnorm(0.975): CIs given in a table are taken to be 95%


@dataclass(frozen=True)
class EffectSizes:
    """Study effects on the analysis scale, with the rows they came from.

    ``table`` holds the rows kept (after double-zero studies are dropped), in the same order as
    ``yi``; ``dropped`` lists (study, reason) for rows left out; ``corrected`` flags studies whose
    cells received the zero-cell increment ``cc``.
    """

    measure: str
    scale: str
    yi: np.ndarray
    vi: np.ndarray
    table: TrialTable
    dropped: tuple = ()
    corrected: tuple = ()
    cc: float = 0.5
    notes: tuple = field(default_factory=tuple)

    @property
    def studies(self) -> tuple:
        return self.table.studies

    @property
    def k(self) -> int:
        return len(self.yi)

    def subset(self, index) -> "EffectSizes":
        index = np.asarray(index, dtype=int)
        return EffectSizes(self.measure, self.scale, self.yi[index], self.vi[index],
                           self.table.subset(index), self.dropped,
                           tuple(self.corrected[i] for i in index) if self.corrected else (),
                           self.cc, self.notes)


def normalise_measure(measure: str) -> str:
    m = str(measure).strip().upper()
    if m not in MEASURES:
        raise InputError(f"unknown measure {measure!r}; choose one of {', '.join(MEASURES)}",
                         column="--measure")
    return m


def escalc(table: TrialTable, measure: str, cc: float = 0.5, drop00: bool | None = None) -> EffectSizes:
    """Compute yi, vi for every study of ``table``.

    Zero cells: ``cc`` is added to every cell of a study with a zero cell (metafor's
    ``add=1/2, to="only0"``). Studies with no events (or only events) in both arms are dropped
    for RR and OR (their ratio is undefined; metafor's ``drop00=TRUE``) and named in ``dropped``.
    """
    measure = normalise_measure(measure)
    if table.layout not in MEASURE_LAYOUTS[measure]:
        needs = " or ".join(", ".join(LAYOUTS[lay]) for lay in MEASURE_LAYOUTS[measure])
        raise InputError(f"measure {measure} needs columns {needs}; this table has the "
                         f"'{table.layout}' layout", file=table.path, line=1)
    if cc < 0:
        raise InputError(f"zero-cell increment must not be negative, got {cc:g}", column="--cc")
    scale = "log" if measure in LOG_MEASURES else "identity"
    if drop00 is None:
        drop00 = measure in ("RR", "OR")
    cols = table.columns
    if table.layout == "binary":
        return _binary(table, measure, cc, drop00, scale)
    if table.layout == "continuous":
        yi, vi = _continuous(cols, measure)
        return EffectSizes(measure, scale, yi, vi, table, cc=cc)
    if table.layout == "rates":
        return _rates(table, cc, scale)
    yi, vi = _precomputed(table, measure)
    return EffectSizes(measure, scale, yi, vi, table, cc=cc)


def _binary(table, measure, cc, drop00, scale):
    c = table.columns
    a, n1, ci_, n2 = c["events_treat"], c["n_treat"], c["events_ctrl"], c["n_ctrl"]
    b, d = n1 - a, n2 - ci_
    keep = np.ones(len(a), dtype=bool)
    dropped = []
    if drop00:
        both0 = ((a == 0) & (ci_ == 0)) | ((b == 0) & (d == 0))
        for i in np.flatnonzero(both0):
            what = "no events" if a[i] == 0 else "only events"
            dropped.append((table.studies[i], f"{what} in both arms: {measure} undefined"))
        keep = ~both0
    if not keep.any():
        raise InputError(f"every study has {'no' if a.sum() == 0 else 'only'} events in both arms: "
                         f"{measure} cannot be estimated", file=table.path)
    if not keep.all():
        table = table.subset(np.flatnonzero(keep))
        a, b, ci_, d = a[keep], b[keep], ci_[keep], d[keep]
    # metafor escalc(add=1/2, to="only0"): the increment goes to all four cells of studies with a zero cell.
    zero = (a == 0) | (b == 0) | (ci_ == 0) | (d == 0)
    inc = np.where(zero, cc, 0.0)
    a, b, ci_, d = a + inc, b + inc, ci_ + inc, d + inc
    n1, n2 = a + b, ci_ + d
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "RR":
            yi = np.log(a / n1) - np.log(ci_ / n2)
            vi = 1 / a - 1 / n1 + 1 / ci_ - 1 / n2
        elif measure == "OR":
            yi = np.log(a * d / (b * ci_))
            vi = 1 / a + 1 / b + 1 / ci_ + 1 / d
        else:  # RD, large-sample variance (metafor's default vtype="LS")
            p1, p2 = a / n1, ci_ / n2
            yi = p1 - p2
            vi = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
    _check_finite(table, yi, vi, measure, cc)
    notes = []
    if dropped:
        notes.append(f"{len(dropped)} stud{'y' if len(dropped) == 1 else 'ies'} dropped ("
                     + "; ".join(f"{s}: {r}" for s, r in dropped) + ")")
    if zero.any():
        notes.append(f"{cc:g} added to every cell of {int(zero.sum())} stud"
                     f"{'y' if zero.sum() == 1 else 'ies'} with a zero cell: "
                     + ", ".join(s for s, z in zip(table.studies, zero) if z))
    return EffectSizes(measure, scale, yi, vi, table, tuple(dropped), tuple(bool(z) for z in zero),
                       cc, tuple(notes))


def _continuous(c, measure):
    m1, s1, n1 = c["mean_treat"], c["sd_treat"], c["n_treat"]
    m2, s2, n2 = c["mean_ctrl"], c["sd_ctrl"], c["n_ctrl"]
    if measure == "MD":
        # Variance without assuming equal SDs, s1^2/n1 + s2^2/n2 (metafor's default vtype="LS" for MD).
        return m1 - m2, s1**2 / n1 + s2**2 / n2
    # Hedges' g: pooled SD, exact small-sample correction J(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2)),
    # m = n1 + n2 - 2 (Hedges 1981); large-sample variance 1/n1 + 1/n2 + g^2 / (2 (n1 + n2)) (metafor's default).
    m = n1 + n2 - 2
    sp = np.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / m)
    from scipy.special import gammaln

    j = np.exp(gammaln(m / 2) - 0.5 * np.log(m / 2) - gammaln((m - 1) / 2))
    g = j * (m1 - m2) / sp
    return g, 1 / n1 + 1 / n2 + g**2 / (2 * (n1 + n2))


def _rates(table, cc, scale):
    c = table.columns
    x1, t1, x2, t2 = c["events_treat"], c["time_treat"], c["events_ctrl"], c["time_ctrl"]
    both0 = (x1 == 0) & (x2 == 0)
    dropped = [(table.studies[i], "no events in both arms: IRR undefined") for i in np.flatnonzero(both0)]
    if both0.all():
        raise InputError("every study has no events in both arms: IRR cannot be estimated", file=table.path)
    if both0.any():
        keep = np.flatnonzero(~both0)
        table = table.subset(keep)
        x1, t1, x2, t2 = x1[keep], t1[keep], x2[keep], t2[keep]
    zero = (x1 == 0) | (x2 == 0)
    inc = np.where(zero, cc, 0.0)
    x1, x2 = x1 + inc, x2 + inc
    with np.errstate(divide="ignore"):
        yi = np.log(x1 / t1) - np.log(x2 / t2)
        vi = 1 / x1 + 1 / x2
    _check_finite(table, yi, vi, "IRR", cc)
    notes = []
    if dropped:
        notes.append("dropped: " + "; ".join(f"{s}: {r}" for s, r in dropped))
    if zero.any():
        notes.append(f"{cc:g} added to the event counts of studies with a zero count: "
                     + ", ".join(s for s, z in zip(table.studies, zero) if z))
    return EffectSizes("IRR", scale, yi, vi, table, tuple(dropped), tuple(bool(z) for z in zero), cc, tuple(notes))


def _precomputed(table, measure):
    c = table.columns
    if table.layout == "yi_vi":
        return c["yi"].copy(), c["vi"].copy()
    if table.layout == "yi_se":
        return c["yi"].copy(), c["se"] ** 2
    est, lo, hi = c["estimate"], c["ci_low"], c["ci_high"]
    if measure in LOG_MEASURES:
        # Ratio measures are given on the natural scale; the analysis runs on the log scale.
        for name, v in (("ci_low", lo), ("estimate", est), ("ci_high", hi)):
            bad = np.flatnonzero(v <= 0)
            if bad.size:
                i = bad[0]
                raise InputError(f"a ratio ({measure}) must be positive, got {v[i]:g}",
                                 file=table.path, line=table.line_of(i), column=name)
        est, lo, hi = np.log(est), np.log(lo), np.log(hi)
    # SE from the width of a 95% CI: (high - low) / (2 * 1.959964) (Cochrane Handbook 6.3.1).
    se = (hi - lo) / (2 * Z975)
    return est.copy(), se**2


def _check_finite(table, yi, vi, measure, cc):
    bad = np.flatnonzero(~(np.isfinite(yi) & np.isfinite(vi)) | (vi <= 0))
    if bad.size:
        i = bad[0]
        raise InputError(f"{measure} is undefined for this study (zero cell with increment {cc:g}); "
                         f"use --cc with a positive increment", file=table.path, line=table.line_of(i),
                         column="events_treat")


def ci_of(yi, vi, level=0.95):
    """Wald interval of each study's effect (analysis scale)."""
    from ._dist import norm_isf  # no SciPy import for this

    z = norm_isf((1 - level) / 2)
    se = np.sqrt(vi)
    return yi - z * se, yi + z * se


def is_ratio(measure: str) -> bool:
    return measure in LOG_MEASURES


__all__ = ["EffectSizes", "escalc", "MEASURES", "ci_of", "is_ratio", "normalise_measure"]
