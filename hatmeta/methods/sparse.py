"""Sparse binary data: which pooling methods suit the data, what the zero-cell correction did, and
the methods side by side.

Guidance followed (cited in the advice text):
- Sweeting, Sutton & Lambert (2004), Stat Med 23:1351-75, and Bradburn, Deeks, Berlin & Localio
  (2007), Stat Med 26:53-77: inverse variance with a 0.5 correction is biased towards the null with
  rare events; Mantel-Haenszel without correction and Peto are better; Peto is least biased when
  event rates are below about 1%, arms are balanced and effects are not large, and biased with
  unbalanced arms (ratio beyond about 1:3 here).
- Cochrane Handbook (version 6.4) section 10.4.4: Peto for rare events with balanced arms, MH
  otherwise; double-zero studies are excluded from ratio measures.
- Stijnen, Hamza & Ozdemir (2010), Stat Med 29:3046-67; Jackson, Law, Stijnen, Viechtbauer & White
  (2018), Stat Med 37:1059-85: binomial-normal GLMMs (conditional model exact, or unconditional with
  fixed study intercepts) for random effects with sparse data, no correction needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..vocabulary import COMMON_EFFECT_METHODS

if TYPE_CHECKING:
    from ..fit.effects import EffectSizes
    from ..io.trial_table import TrialTable

FEW_EVENTS = 5  # an arm with fewer events than this makes the data "sparse" for the advice
UNBALANCED = 3.0  # arm-size ratio beyond 1:3 (or 3:1) counts as unbalanced for Peto


@dataclass(frozen=True)
class SparseAdvice:
    """Counts that describe how sparse a binary dataset is, and the advice drawn from them.

    Event rates are pooled over studies (events / participants, in percent); ``continuity`` lists
    each study whose cells received the zero-cell increment, with the cells given and used and the
    resulting study effect (analysis scale)."""

    k: int
    studies_with_zero_cell: int
    double_zero: int
    zero_cells: int
    events_treat: int
    events_ctrl: int
    event_rate_treat: float
    event_rate_ctrl: float
    arm_ratio_min: float
    arm_ratio_max: float
    unbalanced: int
    suits: tuple[str, ...]
    avoid: tuple[str, ...]
    advice: str
    continuity: tuple[dict[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        from ..results import _plain

        return {k: _plain(getattr(self, k)) for k in self.__dataclass_fields__}


def is_sparse(table: TrialTable) -> bool:
    """Binary arm counts with a zero cell or an arm with fewer than FEW_EVENTS events."""
    if table.layout != "binary":
        return False
    c = table.columns
    a, n1, cc, n2 = c["events_treat"], c["n_treat"], c["events_ctrl"], c["n_ctrl"]
    cells = np.stack([a, n1 - a, cc, n2 - cc])
    return bool((cells == 0).any() or (np.minimum(a, cc) < FEW_EVENTS).any())


def advise(table: TrialTable, es: EffectSizes, compared: bool = False) -> SparseAdvice:
    """Advice for the binary ``table`` (all rows, double zeros included) pooled as ``es``."""
    c = table.columns
    a, n1, cc, n2 = c["events_treat"], c["n_treat"], c["events_ctrl"], c["n_ctrl"]
    b, d = n1 - a, n2 - cc
    zero = (a == 0) | (b == 0) | (cc == 0) | (d == 0)
    dz = ((a == 0) & (cc == 0)) | ((b == 0) & (d == 0))
    r1, r2 = 100 * a.sum() / n1.sum(), 100 * cc.sum() / n2.sum()
    ratio = n1 / n2
    unbalanced = int(np.sum((ratio > UNBALANCED) | (ratio < 1 / UNBALANCED)))
    rare = max(r1, r2) < 1.0
    suits, avoid, why = [], [], []
    if es.measure in ("OR", "RR", "RD"):
        suits.append("MH")
        why.append("Mantel-Haenszel needs no zero-cell correction")
    if es.measure == "OR":
        suits += ["GLMM-EXACT", "GLMM-FS"]
        why.append("the GLMMs (GLMM-EXACT, GLMM-FS; Stijnen et al. 2010, Jackson et al. 2018) model the counts "
                   "directly and give random effects without a correction")
        if unbalanced == 0:
            suits.append("PETO")
            why.append("Peto suits " + ("these rates below 1% with balanced arms" if rare else
                                        "balanced arms, but is biased when effects are large or rates above ~1%")
                       + " (Bradburn et al. 2007)")
        else:
            avoid.append("PETO")
            why.append(f"avoid Peto: {unbalanced} stud{'y has' if unbalanced == 1 else 'ies have'} arm sizes beyond "
                       f"1:{UNBALANCED:g} (Bradburn et al. 2007)")
    if zero.any():
        avoid.append("IV with continuity correction")
        why.append(f"inverse variance with the {es.cc:g} correction is biased towards no effect with rare events "
                   "(Sweeting et al. 2004)")
    if dz.any():
        why.append(f"{int(dz.sum())} double-zero stud{'y is' if dz.sum() == 1 else 'ies are'} left out of every "
                   "ratio method here (no information on a ratio; metafor's drop00); the risk difference keeps them")
    summary = (f"sparse data: {int(zero.sum())} of {table.k} studies have a zero cell ({int(dz.sum())} double zero"
               f"{'' if dz.sum() == 1 else 's'}); event rates {r1:.2g}% (treatment) and {r2:.2g}% (control); "
               f"arm-size ratio {ratio.min():.2g} to {ratio.max():.2g}. Suited: {', '.join(suits) or 'none'}"
               + (f"; avoid: {', '.join(avoid)}" if avoid else "") + ". " + "; ".join(why)
               + ("." if compared else ". Compare them with --compare-methods."))
    return SparseAdvice(k=table.k, studies_with_zero_cell=int(zero.sum()), double_zero=int(dz.sum()),
                        zero_cells=int((np.stack([a, b, cc, d]) == 0).sum()), events_treat=int(a.sum()),
                        events_ctrl=int(cc.sum()), event_rate_treat=float(r1), event_rate_ctrl=float(r2),
                        arm_ratio_min=float(ratio.min()), arm_ratio_max=float(ratio.max()), unbalanced=unbalanced,
                        suits=tuple(suits), avoid=tuple(avoid), advice=summary, continuity=continuity(es))


def continuity(es: EffectSizes) -> tuple[dict[str, Any], ...]:
    """What the zero-cell increment did to each corrected study: the cells given (a, b, c, d), the
    cells used, and the study effect (analysis scale) with its variance. Without the increment
    the effect is undefined (a zero cell gives log 0)."""
    if es.table.layout != "binary" or not es.corrected:
        return ()
    c = es.table.columns
    a, n1, cc, n2 = c["events_treat"], c["n_treat"], c["events_ctrl"], c["n_ctrl"]
    out = []
    for i in np.flatnonzero(np.asarray(es.corrected, bool)):
        given = [a[i], n1[i] - a[i], cc[i], n2[i] - cc[i]]
        out.append({"study": es.studies[i], "cells_given": [int(x) for x in given],
                    "cells_used": [float(x + es.cc) for x in given], "increment": es.cc,
                    "yi": float(es.yi[i]), "vi": float(es.vi[i]),
                    "without_increment": "undefined (zero cell)" if es.measure != "RD" else
                    float(a[i] / n1[i] - cc[i] / n2[i])})
    return tuple(out)


# ------------------------------------------------------------------ methods side by side

@dataclass(frozen=True)
class MethodRow:
    """One method's pooled result (analysis scale) for the side-by-side comparison; ``error`` says
    why a method gave no result."""

    method: str
    label: str
    k: int | None
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    tau2: float
    p: float
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        from ..results import _plain

        return {k: _plain(getattr(self, k)) for k in self.__dataclass_fields__}


LABELS = {"FE": "IV, common effect", "REML": "IV, random effects (REML)", "DL": "IV, random effects (DL)",
          "MH": "Mantel-Haenszel, common effect", "PETO": "Peto, common effect",
          "GLMM-FS": "GLMM, fixed study intercepts (UM.FS)", "GLMM-RS": "GLMM, random study intercepts (UM.RS)",
          "GLMM-EXACT": "GLMM, conditional exact (CM.EL)"}


def methods_for(es: EffectSizes) -> tuple[str, ...]:
    if es.table.layout == "binary":
        if es.measure == "OR":
            return ("FE", "REML", "MH", "PETO", "GLMM-FS", "GLMM-RS", "GLMM-EXACT")
        if es.measure in ("RR", "RD"):
            return ("FE", "REML", "MH")
    if es.table.layout == "rates" and es.measure == "IRR":
        return ("FE", "REML", "GLMM-FS", "GLMM-RS", "GLMM-EXACT")
    return ("FE", "REML", "DL")


def compare_methods(es: EffectSizes, level: float = 0.95) -> tuple[MethodRow, ...]:
    """Pool ``es`` with each method that applies to its layout and measure; a method that fails
    gives a row with NaN numbers and the reason."""
    from ..errors import InputError
    from ..fit.models import rma

    rows = []
    for m in methods_for(es):
        label = LABELS[m] + (f" (cc {es.cc:g})" if m in ("FE", "REML", "DL") and any(es.corrected) else "")
        try:
            r = rma(es, method=m, level=level, pi="z")
        except InputError as e:
            nan = float("nan")
            rows.append(MethodRow(m, label, None, nan, nan, nan, nan, nan, nan, note=e.message
                                  if hasattr(e, "message") else str(e)))
            continue
        note = None
        if m == "PETO":
            note = "Peto odds ratio"
        if r.extra.get("glmm", {}).get("separation"):
            note = "ML estimate infinite; profile-likelihood CI"
        rows.append(MethodRow(m, label, r.k, r.estimate, r.se, r.ci_low, r.ci_high,
                              r.tau2 if m not in COMMON_EFFECT_METHODS else 0.0, r.p, note))
    return tuple(rows)


