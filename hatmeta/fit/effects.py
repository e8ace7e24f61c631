"""Effect sizes per study (metafor's ``escalc``): ``yi`` and sampling variance ``vi`` on the analysis scale.

Ratio measures (RR, OR, IRR, HR, ROM) are on the log scale; RD, MD, SMD, IRD, PR, COR and GEN on the
identity scale (GEN on the log scale with ``scale="log"``); PLO on the logit, PFT on the Freeman-Tukey
double-arcsine and ZCOR on Fisher's z scale. Formulas and defaults follow metafor 3.8's escalc.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ..io.trial_table import LAYOUTS, MEASURE_LAYOUTS, TrialTable

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from ..io.trial_table import TableSource

MEASURES = ("RR", "OR", "RD", "MD", "SMD", "IRR", "GEN", "HR", "ROM", "IRD", "PR", "PLO", "PFT", "COR", "ZCOR")
LOG_MEASURES = {"RR", "OR", "IRR", "PETO", "HR", "ROM"}
# Analysis scales other than log and identity, and the measures on them.
SCALES = {"PLO": "logit", "PFT": "freeman-tukey", "ZCOR": "fisher-z"}
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

    def subset(self, index: ArrayLike) -> EffectSizes:
        index = np.asarray(index, dtype=int)
        return EffectSizes(self.measure, self.scale, self.yi[index], self.vi[index],
                           self.table.subset(index), self.dropped,
                           tuple(self.corrected[i] for i in index) if self.corrected else (),
                           self.cc, self.notes)


def normalise_measure(measure: str | None, allowed: tuple = MEASURES) -> str:
    """The measure in upper case, checked against ``allowed``; a missing one is the --measure error that
    every --data command gives (one wording, listing what can be chosen)."""
    if not measure:
        raise InputError(f"--measure is required with --data ({', '.join(allowed)})", column="--measure")
    m = str(measure).strip().upper()
    if m not in MEASURES:
        raise InputError(f"unknown measure {measure!r}; choose one of {', '.join(MEASURES)}",
                         column="--measure")
    return m


def escalc(table: TrialTable | TableSource, measure: str, cc: float = 0.5, drop00: bool | None = None,
           input_level: float = 0.95, scale: str | None = None) -> EffectSizes:
    """Effect sizes ``yi`` and sampling variances ``vi`` of every study (metafor's ``escalc``).

    Zero cells: ``cc`` is added to every cell of a study with a zero cell (metafor's
    ``add=1/2, to="only0"``; for PR and PLO to the events and non-events of a study with 0 or n
    events; none for PFT). Studies with no events (or only events) in both arms are dropped
    for RR and OR (their ratio is undefined; metafor's ``drop00=TRUE``) and named in ``dropped``.

    Parameters
    ----------
    table : TrialTable, pandas.DataFrame, mapping of columns or path
        The trials; anything but a TrialTable is read with ``read_table`` first.
    measure : str
        One of ``MEASURES``: RR, OR, IRR, HR, ROM (log scale), RD, MD, SMD (Hedges' g), IRD, GEN,
        PR, PLO (logit), PFT (Freeman-Tukey), COR, ZCOR (Fisher's z).
    cc : float
        Zero-cell increment (events), 0.5 by default.
    drop00 : bool, optional
        Drop double-zero studies (default: True for RR and OR, as metafor).
    input_level : float
        Level of confidence intervals given as ``estimate, ci_low, ci_high`` (0.95).
    scale : {None, "log"}
        "log" makes GEN a ratio given on the natural scale (logged, pooled on the log scale).

    Returns
    -------
    EffectSizes
        ``yi`` and ``vi`` on the analysis scale (``scale``: "log" for ratio measures, "logit",
        "freeman-tukey" or "fisher-z" for those measures, else "identity", in the units of the data),
        the rows kept, and the studies ``dropped`` and ``corrected`` with the reason in ``notes``.

    References
    ----------
    Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. J Stat Softw 36(3).
    """
    from ..io.trial_table import read_table

    if not isinstance(table, TrialTable):
        table = read_table(table, measure=measure)
    es = _escalc(table, measure, cc, drop00, input_level, scale)
    if table.notes or table.dropped:
        from dataclasses import replace

        dropped = tuple((s, r) for s, _, r, _ in table.dropped)
        es = replace(es, notes=tuple(table.notes) + tuple(es.notes), dropped=dropped + tuple(es.dropped))
    return es


def _escalc(table, measure, cc, drop00, input_level, scale_opt):
    measure = normalise_measure(measure)
    if table.layout not in MEASURE_LAYOUTS[measure]:
        needs = " or ".join(", ".join(LAYOUTS[lay]) for lay in MEASURE_LAYOUTS[measure])
        raise InputError(f"measure {measure} needs columns {needs}; this table has the "
                         f"'{table.layout}' layout", file=table.path, line=1)
    if cc < 0:
        raise InputError(f"zero-cell increment must not be negative, got {cc:g}", column="--cc")
    if not 0 < input_level < 1:
        raise InputError(f"input level must lie between 0 and 1, got {input_level}", column="--input-level")
    if input_level != 0.95 and table.layout != "estimate_ci":
        raise InputError("--input-level applies to tables that give estimate, ci_low, ci_high; this table has "
                         f"the '{table.layout}' layout", column="--input-level")
    ratio = measure in LOG_MEASURES
    if scale_opt is not None:
        scale_opt = str(scale_opt).strip().lower()
        if scale_opt not in ("log", "identity"):
            raise InputError(f"unknown scale {scale_opt!r}; choose log or identity", column="--scale")
        if measure != "GEN" and scale_opt != ("log" if ratio else SCALES.get(measure, "identity")):
            raise InputError(f"--scale applies to GEN; {measure} is always on its own scale", column="--scale")
        ratio = ratio or scale_opt == "log"
    scale = "log" if ratio else SCALES.get(measure, "identity")
    if drop00 is None:
        drop00 = measure in ("RR", "OR")
    if table.layout == "binary":
        return _binary(table, measure, cc, drop00, scale)
    if table.layout == "continuous":
        return _continuous(table, measure, scale)
    if table.layout == "rates":
        return _rates(table, cc, scale, measure)
    if table.layout == "proportion":
        return _proportion(table, measure, cc, scale)
    if table.layout == "correlation":
        return _correlation(table, measure, scale)
    yi, vi = _precomputed(table, measure, ratio, input_level)
    return EffectSizes(measure, scale, yi, vi, table, cc=cc)


def _drop(table, yi, vi, bad, reasons, measure, scale, cc=0.5, notes=()):
    """Leave out the rows flagged ``bad`` (effect undefined), naming each with its reason."""
    dropped = tuple((table.studies[i], reasons[i]) for i in np.flatnonzero(bad))
    if bad.all():
        raise InputError(f"{measure} is undefined for every study ({dropped[0][1]})", file=table.path)
    keep = np.flatnonzero(~bad)
    note = (f"{len(dropped)} stud{'y' if len(dropped) == 1 else 'ies'} left out ("
            + "; ".join(f"{s}: {r}" for s, r in dropped) + ")",)
    return EffectSizes(measure, scale, yi[keep], vi[keep], table.subset(keep), dropped, (), cc,
                       tuple(notes) + note)


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


def _continuous(table, measure, scale):
    c = table.columns
    m1, s1, n1 = c["mean_treat"], c["sd_treat"], c["n_treat"]
    m2, s2, n2 = c["mean_ctrl"], c["sd_ctrl"], c["n_ctrl"]
    if measure == "MD":
        # Variance without assuming equal SDs, s1^2/n1 + s2^2/n2 (metafor's default vtype="LS" for MD).
        return EffectSizes(measure, scale, m1 - m2, s1**2 / n1 + s2**2 / n2, table)
    if measure == "ROM":
        # Ratio of means, log(m1/m2), vi = sd1^2/(n1 m1^2) + sd2^2/(n2 m2^2) (metafor's ROM, vtype "LS";
        # Hedges, Gurevitch & Curtis 1999). Both means must be positive.
        for name, m in (("mean_treat", m1), ("mean_ctrl", m2)):
            bad = np.flatnonzero(m <= 0)
            if bad.size:
                raise InputError(f"a ratio of means needs positive means, got {m[bad[0]]:g}", file=table.path,
                                 line=table.line_of(bad[0]), column=name)
        return EffectSizes(measure, scale, np.log(m1 / m2), s1**2 / (n1 * m1**2) + s2**2 / (n2 * m2**2), table)
    # Hedges' g: pooled SD, exact small-sample correction J(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2)),
    # m = n1 + n2 - 2 (Hedges 1981); large-sample variance 1/n1 + 1/n2 + g^2 / (2 (n1 + n2)) (metafor's default).
    # J is undefined for m <= 1 (total n of 3 or less: an arm of one): metafor's escalc returns NA and rma
    # leaves the study out; hatmeta does the same and names it (README, conventions).
    m = n1 + n2 - 2
    from scipy.special import gammaln

    undefined = m <= 1
    mm = np.where(undefined, 2.0, m)
    sp = np.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / mm)
    j = np.exp(gammaln(mm / 2) - 0.5 * np.log(mm / 2) - gammaln((mm - 1) / 2))
    g = j * (m1 - m2) / sp
    vi = 1 / n1 + 1 / n2 + g**2 / (2 * (n1 + n2))
    if undefined.any():
        reasons = [f"Hedges' g undefined with n_treat + n_ctrl = {n1[i] + n2[i]:g} (needs at least 4)"
                   for i in range(len(m))]
        return _drop(table, g, vi, undefined, reasons, measure, scale)
    return EffectSizes(measure, scale, g, vi, table)


def _rates(table, cc, scale, measure: str = "IRR"):
    c = table.columns
    x1, t1, x2, t2 = c["events_treat"], c["time_treat"], c["events_ctrl"], c["time_ctrl"]
    if measure == "IRD":
        # Incidence rate difference x1/t1 - x2/t2, vi = x1/t1^2 + x2/t2^2; cc added to both counts of a
        # study with a zero count; double zeros kept (metafor's escalc defaults: to="only0", drop00=FALSE).
        zero = (x1 == 0) | (x2 == 0)
        inc = np.where(zero, cc, 0.0)
        r1, r2 = (x1 + inc) / t1, (x2 + inc) / t2
        yi, vi = r1 - r2, r1 / t1 + r2 / t2
        _check_finite(table, yi, vi, "IRD", cc)
        notes: tuple[str, ...] = ()
        if zero.any():
            notes = (f"{cc:g} added to the event counts of studies with a zero count: "
                     + ", ".join(s for s, z in zip(table.studies, zero) if z),)
        return EffectSizes("IRD", scale, yi, vi, table, (), tuple(bool(z) for z in zero), cc, notes)
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
    irr_notes = []
    if dropped:
        irr_notes.append("dropped: " + "; ".join(f"{s}: {r}" for s, r in dropped))
    if zero.any():
        irr_notes.append(f"{cc:g} added to the event counts of studies with a zero count: "
                         + ", ".join(s for s, z in zip(table.studies, zero) if z))
    return EffectSizes("IRR", scale, yi, vi, table, tuple(dropped), tuple(bool(z) for z in zero), cc, tuple(irr_notes))


def _proportion(table, measure, cc, scale):
    """Single-arm proportions from ``events, n`` (metafor's escalc PR, PLO, PFT; vtype "LS")."""
    c = table.columns
    x, n = c["events"], c["n"]
    if measure == "PFT":
        # Freeman-Tukey double arcsine (1950), no continuity correction (metafor: add = 0 for PFT).
        yi = 0.5 * (np.arcsin(np.sqrt(x / (n + 1))) + np.arcsin(np.sqrt((x + 1) / (n + 1))))
        return EffectSizes(measure, scale, yi, 1 / (4 * n + 2), table, cc=cc)
    zero = (x == 0) | (x == n)
    inc = np.where(zero, cc, 0.0)
    xa, ma = x + inc, n - x + inc
    na = xa + ma
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "PR":
            p = xa / na
            yi, vi = p, p * (1 - p) / na
        else:  # PLO: log odds, vi = 1/x + 1/(n - x)
            yi, vi = np.log(xa / ma), 1 / xa + 1 / ma
    _check_finite(table, yi, vi, measure, cc, column="events")
    notes: tuple[str, ...] = ()
    if zero.any():
        notes = (f"{cc:g} added to the events and non-events of studies with 0 or n events: "
                 + ", ".join(s for s, z in zip(table.studies, zero) if z),)
    return EffectSizes(measure, scale, yi, vi, table, (), tuple(bool(z) for z in zero), cc, notes)


def _correlation(table, measure, scale):
    """Correlations from ``r, n``: COR (raw r, vi = (1 - r^2)^2 / (n - 1)) or ZCOR (Fisher's z,
    vi = 1 / (n - 3)), as metafor's escalc. Rows where vi is undefined are left out and named."""
    c = table.columns
    r, n = c["r"], c["n"]
    need = 4 if measure == "ZCOR" else 2
    bad = (n < need) | (np.abs(r) >= 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "ZCOR":
            yi, vi = np.arctanh(r), 1 / (n - 3)
        else:
            yi, vi = r.copy(), (1 - r**2) ** 2 / (n - 1)
    if bad.any():
        reasons = [f"{measure} needs n >= {need} and |r| < 1 (n = {n[i]:g}, r = {r[i]:g})" for i in range(len(r))]
        return _drop(table, yi, vi, bad, reasons, measure, scale)
    return EffectSizes(measure, scale, yi, vi, table)


def _precomputed(table, measure, ratio=None, input_level=0.95):
    c = table.columns
    if table.layout == "yi_vi":
        return c["yi"].copy(), c["vi"].copy()
    if table.layout == "yi_se":
        return c["yi"].copy(), c["se"] ** 2
    est, lo, hi = c["estimate"], c["ci_low"], c["ci_high"]
    if measure in LOG_MEASURES if ratio is None else ratio:
        # Ratio measures are given on the natural scale; the analysis runs on the log scale.
        for name, v in (("ci_low", lo), ("estimate", est), ("ci_high", hi)):
            bad = np.flatnonzero(v <= 0)
            if bad.size:
                i = bad[0]
                raise InputError(f"a ratio ({measure}) must be positive, got {v[i]:g}",
                                 file=table.path, line=table.line_of(i), column=name)
        est, lo, hi = np.log(est), np.log(lo), np.log(hi)
    # SE from the width of the CI: (high - low) / (2 z), z = 1.959964 for a 95% CI (Cochrane Handbook
    # 6.3.1); another level with --input-level.
    from scipy.special import ndtri

    z = Z975 if input_level == 0.95 else float(ndtri(0.5 + input_level / 2))
    se = (hi - lo) / (2 * z)
    return est.copy(), se**2


def _check_finite(table, yi, vi, measure, cc, column: str = "events_treat"):
    bad = np.flatnonzero(~(np.isfinite(yi) & np.isfinite(vi)) | (vi <= 0))
    if bad.size:
        i = bad[0]
        raise InputError(f"{measure} is undefined for this study (zero cell with increment {cc:g}); "
                         f"use --cc with a positive increment", file=table.path, line=table.line_of(i),
                         column=column)


def ci_of(yi: ArrayLike, vi: ArrayLike, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wald interval of each study's effect (analysis scale)."""
    from ..dist import norm_isf  # no SciPy import for this

    z = norm_isf((1 - level) / 2)
    se = np.sqrt(vi)
    return yi - z * se, yi + z * se


def not_estimable_rows(table: TrialTable, es: EffectSizes) -> tuple:
    """The studies ``escalc`` dropped (measure undefined), with their label, reason and inputs as given:
    RevMan lists them as 'Not estimable' and counts their participants in the totals."""
    if not es.dropped:
        return ()
    where = {s: i for i, s in enumerate(table.studies)}
    labels = table.extra.get("label")
    out = []
    for study, reason in es.dropped:
        if study not in where:  # left out while reading (an incomplete row): named in the notes, not a RevMan row
            continue
        i = where[study]
        row = {"study": study}
        if labels is not None and labels[i]:
            row["label"] = labels[i]
        row["reason"] = reason
        row["order"] = i  # its place among the table's studies: RevMan lists it where it was entered
        row["inputs"] = {c: _as_given(c, v[i]) for c, v in table.columns.items()}
        out.append(row)
    return tuple(out)


def _as_given(column, x):
    from ..io.trial_table import COUNT_COLUMNS

    x = float(x)
    return int(x) if column in COUNT_COLUMNS and x.is_integer() else x


def is_ratio(measure: str) -> bool:
    return measure in LOG_MEASURES


from ..results import back_transform  # noqa: E402  (re-exported: the transforms live with the results)

__all__ = ["EffectSizes", "escalc", "not_estimable_rows", "MEASURES", "ci_of", "is_ratio", "normalise_measure",
           "back_transform"]
