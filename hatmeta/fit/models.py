"""Model fits (metafor's ``rma``, ``rma.mh``, ``rma.peto``) returning immutable ``MetaResult``s.

All estimates are on the analysis scale (log for RR, OR, IRR, PETO).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..results import MetaResult, StudyRows
from ..vocabulary import COMMON_EFFECT_METHODS, GLMM_METHODS
from . import core
from .effects import EffectSizes, ci_of

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

METHODS = ("FE", "MH", "PETO", "DL", "REML", "ML", "PM", "HE", "SJ", "EB", "GLMM-FS", "GLMM-RS", "GLMM-EXACT")
CI_METHODS = ("wald", "hksj")
PI_METHODS = ("t", "z", "metafor")
PRESETS = ("revman5", "revman", "revman-web")  # revman: alias of revman5


def normalise_method(method: str) -> str:
    m = str(method).strip().upper()
    if m not in METHODS:
        raise InputError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}", column="--method")
    return m


def _check_options(es, method, ci, pi):
    if ci not in CI_METHODS:
        raise InputError(f"unknown CI method {ci!r}; choose wald or hksj", column="--ci")
    if pi not in PI_METHODS:
        raise InputError(f"unknown prediction interval {pi!r}; choose t or z", column="--pi")
    need = 2 if method in core.TAU2_METHODS or ci == "hksj" else 1
    if es.k < need:
        raise InputError(f"method {method}{' with HKSJ' if ci == 'hksj' else ''} needs at least {need} "
                         f"studies, found {es.k}", file=es.table.path)
    if method in ("MH", "PETO") and es.table.layout != "binary":
        raise InputError(f"method {method} needs binary counts (events_treat, n_treat, events_ctrl, n_ctrl)",
                         file=es.table.path, column="--method")
    if method == "MH" and es.measure not in ("RR", "OR", "RD"):
        raise InputError(f"Mantel-Haenszel pools RR, OR or RD, not {es.measure}", column="--measure")


def rma(es: EffectSizes, method: str = "REML", ci: str = "wald", pi: str = "t", level: float = 0.95,
        preset: str | None = None) -> MetaResult:
    """Fit a common-effect (FE, MH, PETO) or random-effects model to ``es`` (metafor's ``rma``,
    ``rma.mh`` and ``rma.peto``).

    ``method``: FE, MH, PETO, DL, REML (default), ML, PM, HE, SJ, EB. ``ci``: "wald" (normal) or
    "hksj" (Hartung-Knapp-Sidik-Jonkman, t on k - 1 df). ``pi``: "t" (k - 2 df) or "z".
    ``preset``: "revman5" (alias "revman"): RevMan 5 exactly (fit/revman5.py; ``method`` then picks
    RevMan's analysis); "revman-web": RevMan Web's current default (REML, HKSJ, Q-profile, prediction interval).
    """
    if not isinstance(es, EffectSizes):
        raise TypeError(f"rma expects the EffectSizes of escalc(table, measure), got {type(es).__name__}; "
                        "hatmeta.pool_table(table, measure) runs both")
    if preset is not None:  # RevMan's analyses (fit/revman5.py, fit/revman_web.py)
        from .revman5 import preset_fit

        return preset_fit(es, preset, method, ci, pi, level)
    method = normalise_method(method)
    ci, pi = str(ci).lower(), str(pi).lower()
    if method in GLMM_METHODS:
        if ci != "wald":
            raise InputError(f"method {method} gives a Wald CI (as metafor's rma.glmm); drop --ci {ci}", column="--ci")
        from .glmm import glmm_rma

        return glmm_rma(es, method, level=level)
    _check_options(es, method, ci, pi)
    if method == "MH":
        return mantel_haenszel(es, level=level)
    if method == "PETO":
        return peto(es, level=level)
    g = core.Groups.single(es.yi, es.vi)
    f = core.fit(g, method=method, ci=ci, pi=pi, level=level)
    return _result(es, f, method, ci, pi, level)


def _result(es, f: core.CoreFit, method, ci, pi, level, notes=(), weights=None, **overrides) -> MetaResult:
    """Wrap a single-group CoreFit (G = 1) as a MetaResult."""
    s = lambda a: float(np.asarray(a).reshape(-1)[0])  # noqa: E731
    random = method not in COMMON_EFFECT_METHODS
    values: dict[str, Any] = dict(
        estimate=s(f.estimate), se=s(f.se), ci_low=s(f.ci_low), ci_high=s(f.ci_high),
        pi_low=s(f.pi_low) if random else float("nan"), pi_high=s(f.pi_high) if random else float("nan"),
        tau2=s(f.tau2), tau2_ci_low=s(f.tau2_ci_low), tau2_ci_high=s(f.tau2_ci_high),
        q=s(f.q), q_df=int(s(f.q_df)), q_p=s(f.q_p), i2=s(f.i2), h2=s(f.h2), stat=s(f.stat), p=s(f.p),
        df=None if f.df is None else s(f.df),
    )
    values.update(overrides)
    weights = f.weights if weights is None else weights
    return MetaResult(
        measure=es.measure, method=method, ci_method=ci, pi_method=pi if random else "none", scale=es.scale,
        k=es.k, tau=float(np.sqrt(values["tau2"])), studies=study_results(es, weights, level), level=level,
        notes=tuple(es.notes) + tuple(notes) + _pi_note(es.k, pi, random), effects=es, **values)


def _pi_note(k, pi, random):
    if random and pi == "t" and k < 3:
        return ("prediction interval needs at least 3 studies with t on k - 2 df",)
    return ()


def study_results(es: EffectSizes, weights: ArrayLike, level: float = 0.95) -> StudyRows:
    """The studies of a fit (lazy StudyRows): effects, Wald CIs, weights in percent, inputs as given."""
    lo, hi = ci_of(es.yi, es.vi, level)
    return StudyRows(es.studies, es.yi, es.vi, np.asarray(weights, float), lo, hi,
                     inputs=es.table.columns, labels=es.table.extra.get("label"))


# ---------------------------------------------------------------- Mantel-Haenszel and Peto

def _cells(es: EffectSizes, corrected: bool = False):
    """2x2 cells of the rows kept; ``corrected`` adds the zero-cell increment as escalc did."""
    c = es.table.columns
    a, n1, cc, n2 = c["events_treat"], c["n_treat"], c["events_ctrl"], c["n_ctrl"]
    b, d = n1 - a, n2 - cc
    if corrected:
        inc = es.cc * np.asarray(es.corrected, dtype=float) if es.corrected else 0.0
        a, b, cc, d = a + inc, b + inc, cc + inc, d + inc
    return a, b, cc, d, a + b, cc + d


def _double_zero(es: EffectSizes):
    a, b, c, d, _, _ = _cells(es)
    return ((a == 0) & (c == 0)) | ((b == 0) & (d == 0))


def mh_estimate(es: EffectSizes, corrected: bool = False) -> tuple[float, float]:
    """Mantel-Haenszel pooled estimate and its SE (analysis scale), as metafor's rma.mh.

    The tables are used as given (MH needs no zero-cell correction; metafor's default), or with
    the zero-cell increment when ``corrected`` (RevMan 5 adds it for MH too: Cochrane Handbook 5.1
    section 9.4.4; Ades et al. 2025, Res Synth Methods). Variances: OR, Robins, Breslow &
    Greenland (1986); RR, Greenland & Robins (1985); RD, Sato, Greenland & Robins (1989).
    """
    a, b, c, d, n1, n2 = _cells(es, corrected)
    n = n1 + n2
    if es.measure == "OR":
        R, S = np.sum(a * d / n), np.sum(b * c / n)
        if R == 0 or S == 0:
            raise InputError("Mantel-Haenszel OR is undefined: no discordant cells", file=es.table.path)
        P, Q = (a + d) / n, (b + c) / n
        var = (np.sum(P * a * d / n) / (2 * R**2) + np.sum(P * b * c / n + Q * a * d / n) / (2 * R * S)
               + np.sum(Q * b * c / n) / (2 * S**2))
        return float(np.log(R / S)), float(np.sqrt(var))
    if es.measure == "RR":
        R, S = np.sum(a * n2 / n), np.sum(c * n1 / n)
        if R == 0 or S == 0:
            raise InputError("Mantel-Haenszel RR is undefined: no events in one arm of every study",
                             file=es.table.path)
        var = np.sum((n1 * n2 * (a + c) - a * c * n) / n**2) / (R * S)
        return float(np.log(R / S)), float(np.sqrt(var))
    if not corrected and (not np.any((a > 0) | (c > 0)) or not np.any((b > 0) | (d > 0))):
        # Every table without events (or with only events): the Sato variance is 0 and z is 0/0.
        # RevMan 5 adds 0.5 to the cells of such tables (--preset revman5).
        what = "no events" if not np.any((a > 0) | (c > 0)) else "only events"
        raise InputError(f"Mantel-Haenszel RD is undefined: {what} in any arm of any study (variance 0); "
                         "--preset revman5 pools it as RevMan 5 does (0.5 added to zero-cell tables)",
                         file=es.table.path, column="--method")
    wsum = np.sum(n1 * n2 / n)
    est = np.sum((a * n2 - c * n1) / n) / wsum
    var = (est * np.sum(c * (n1 / n) ** 2 - a * (n2 / n) ** 2 + (n1 / n) * (n2 / n) * (n2 - n1) / 2)
           + np.sum(a * (n2 - c) / n + c * (n1 - a) / n) / 2) / wsum**2
    return float(est), float(np.sqrt(var))


def _q_around(es: EffectSizes, est):
    """Cochran's Q around a common estimate with inverse-variance weights, over the studies with
    a defined escalc effect (double zeros left out, RD included: metafor's rma.mh), and its df."""
    keep = ~_double_zero(es)
    y, v = es.yi[keep], es.vi[keep]
    return float(np.sum((y - est) ** 2 / v)), int(keep.sum()) - 1


def mantel_haenszel(es: EffectSizes, level: float = 0.95) -> MetaResult:
    from scipy.special import chdtrc

    est, se = mh_estimate(es)
    q, q_df = _q_around(es, est)
    g = core.Groups.single(es.yi, es.vi)
    f = core.fit(g, method="FE", level=level, tau2_ci=False)
    # Study weights: the MH weights (metafor's weights(rma.mh)), in percent.
    a, b, c, d, n1, n2 = _cells(es)
    n = n1 + n2
    mhw = {"OR": b * c / n, "RR": c * n1 / n, "RD": n1 * n2 / n}[es.measure]
    return _result(es, f, "MH", "wald", "none", level, weights=100 * mhw / mhw.sum(), **_wald(est, se, level),
                   **_het(q, q_df, chdtrc))


def _wald(est, se, level):
    """Estimate, SE, normal CI, z and two-sided p of a common-effect estimate (no tau^2 CI)."""
    from scipy.special import ndtr, ndtri

    z = ndtri(0.5 + level / 2)
    stat = est / se
    return dict(estimate=est, se=se, ci_low=est - z * se, ci_high=est + z * se, stat=stat,
                p=float(2 * ndtr(-abs(stat))), tau2_ci_low=float("nan"), tau2_ci_high=float("nan"))


def _het(q, q_df, chdtrc):
    """Q, its df and p, and the Q-based I^2 (percent) and H^2."""
    return dict(q=q, q_df=q_df, q_p=float(chdtrc(q_df, q)) if q_df > 0 else float("nan"),
                i2=100 * max(0.0, (q - q_df) / q) if q > 0 else 0.0, h2=q / q_df if q_df > 0 else float("nan"))


def peto(es: EffectSizes, level: float = 0.95) -> MetaResult:
    """Peto's one-step OR (Yusuf et al. 1985): sum(O - E) / sum(V) on the raw tables, log scale.

    Study effects shown are escalc's "PETO" values (zero-cell increment added), as metafor's rma.peto.
    """
    from scipy.special import chdtrc

    def o_e_v(a, b, c, d):
        n1, n2 = a + b, c + d
        n, m1 = n1 + n2, a + c
        return a - n1 * m1 / n, n1 * n2 * m1 * (n - m1) / (n**2 * (n - 1))

    keep = ~_double_zero(es)
    if not keep.any():
        raise InputError("Peto OR is undefined: no study has events in one arm only", file=es.table.path)
    oe, v = o_e_v(*_cells(es)[:4])
    est = float(oe.sum() / v.sum())
    se = float(1 / np.sqrt(v.sum()))
    q = max(0.0, float(np.sum(oe[v > 0] ** 2 / v[v > 0]) - oe.sum() ** 2 / v.sum()))
    q_df = int(keep.sum()) - 1
    weights = 100 * v[keep] / v.sum()
    oe_c, v_c = o_e_v(*_cells(es, corrected=True)[:4])
    notes = tuple(x for x in es.notes if "added to every cell" not in x)
    if not keep.all():
        gone = [s for s, k in zip(es.studies, keep) if not k]
        notes += (f"Peto: studies with no events (or only events) in both arms carry no information: "
                  f"{', '.join(gone)}",)
    shown = es.subset(np.flatnonzero(keep))
    shown = EffectSizes("PETO", "log", oe_c[keep] / v_c[keep], 1 / v_c[keep], shown.table, es.dropped,
                        shown.corrected, es.cc, notes)
    g = core.Groups.single(shown.yi, shown.vi)
    f = core.fit(g, method="FE", level=level, tau2_ci=False)
    return _result(shown, f, "PETO", "wald", "none", level, weights=weights, **_wald(est, se, level),
                   **_het(q, q_df, chdtrc))
