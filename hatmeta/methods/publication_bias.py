"""Small-study effects and publication bias: regression and rank tests, PET-PEESE, trim-and-fill,
and the Vevea-Hedges step-function selection model.

All effects are on the analysis scale (log for ratio measures). The tests are written for many
meta-analyses at once (rows with a group index, sums per group by ``np.bincount``), so ``--by``
runs cost one pass; a single meta-analysis is the case of one group.

Sources, each validated against R (tests/fixtures/pubbias/generate.R):
- Egger et al. 1997 (BMJ 315:629): yi/sei on 1/sei; metafor regtest(model="lm", predictor="sei").
- Peters et al. 2006 (JAMA 295:676): log OR on 1/N, weights events x non-events / N (both arms
  pooled), slope tested on k - 2 df; R's meta metabias(method.bias="Peters").
- Harbord, Egger & Sterne 2006 (Stat Med 25:3443): score Z = a - E(a) and its hypergeometric
  variance V; Z/sqrt(V) on sqrt(V), intercept tested; meta's method.bias="Harbord".
- Begg & Mazumdar 1994 (Biometrics 50:1088): Kendall's tau of standardised effects and variances,
  exact p without ties (metafor ranktest, R's cor.test).
- Stanley & Doucouliagos 2014 (Res Synth Methods 5:60): PET and PEESE.
- Duval & Tweedie 2000 (Biometrics 56:455; JASA 95:89): trim-and-fill, L0 and R0 (metafor trimfill).
- Vevea & Hedges 1995 (Psychometrika 60:419): step-function selection model (metafor selmodel).

Every method warns below 10 studies: tests for funnel-plot asymmetry (and the methods built on the
funnel) have too little power to tell chance from asymmetry with fewer (Sterne et al. 2011, BMJ
343:d4002; Cochrane Handbook 13.3.5.4).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..fit import core
from ..fit.effects import EffectSizes
from ..results import EggerTest, PetPeese, SelectionModel, SmallStudyTest, TrimFill
from ..vocabulary import COMMON_EFFECT_METHODS, TEST_NAMES
from .fitted import fitted

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from ..results import MetaResult

MIN_STUDIES = 10  # Sterne et al. 2011 (BMJ 343:d4002); Cochrane Handbook 13.3.5.4
TESTS = ("egger", "peters", "harbord", "begg")
PET_PEESE_ALPHA = 0.05  # Stanley & Doucouliagos 2014: PEESE when PET's intercept differs from 0 at 5%


def few_studies(k: int, what: str) -> str | None:
    if k < MIN_STUDIES:
        return (f"only {k} studies: {what} needs at least {MIN_STUDIES} to tell small-study effects from chance "
                f"(Sterne et al. 2011, BMJ 343:d4002; Cochrane Handbook 13.3.5.4)")
    return None


# ---------------------------------------------------------------- weighted regression per group

def wls_groups(y: np.ndarray, x: np.ndarray, w: np.ndarray, gid: np.ndarray, G: int) -> tuple[np.ndarray, ...]:
    """Weighted least squares y = b0 + b1 x per group, with the residual variance estimated (R's lm with
    weights: multiplicative dispersion). Returns b0, se0, b1, se1, df (arrays of length G)."""
    s = lambda a: np.bincount(gid, weights=a, minlength=G)  # noqa: E731
    # A row with weight 0 (a study without information, e.g. no events in either arm) takes no part,
    # not even in the residual degrees of freedom.
    used = w > 0
    y, x = np.where(used, y, 0.0), np.where(used, x, 0.0)
    sw = s(w)
    xbar = s(w * x) / sw
    ybar = s(w * y) / sw
    dx = x - xbar[gid]
    sxx = s(w * dx * dx)
    with np.errstate(divide="ignore", invalid="ignore"):
        b1 = s(w * dx * (y - ybar[gid])) / sxx
        b0 = ybar - b1 * xbar
        r = y - b0[gid] - b1[gid] * x
        df = s(used.astype(float)) - 2.0
        s2 = s(w * r * r) / df
        se1 = np.sqrt(s2 / sxx)
        se0 = np.sqrt(s2 * (1 / sw + xbar**2 / sxx))
    return b0, se0, b1, se1, df


def _t_p(t, df):
    from scipy.special import stdtr

    return 2 * stdtr(df, -np.abs(t))


def _binary_counts(es: EffectSizes, method):
    if es.table.layout != "binary":
        raise InputError(f"{method}'s test needs binary counts (events_treat, n_treat, events_ctrl, n_ctrl)",
                         file=es.table.path, column="--small-study")
    c = es.table.columns
    return c["events_treat"], c["n_treat"], c["events_ctrl"], c["n_ctrl"]


def _log_or(es: EffectSizes):
    """The log OR of each study (0.5 added to every cell of a study with a zero cell, as escalc)."""
    if es.measure == "OR":
        return es.yi
    a, n1, c, n2 = (np.asarray(x, float) for x in _binary_counts(es, "Peters"))
    b, d = n1 - a, n2 - c
    inc = np.where((a == 0) | (b == 0) | (c == 0) | (d == 0), es.cc, 0.0)
    with np.errstate(divide="ignore"):
        return np.log((a + inc) * (d + inc) / ((b + inc) * (c + inc)))


def regression_tests(es: EffectSizes, which: str, gid: np.ndarray | None = None, G: int = 1,
                     ) -> tuple[Any, ...]:
    """Egger, Peters or Harbord for every group of rows: arrays (statistic, df, p, coefficient, se, k).

    ``coefficient`` is the tested one: Egger's and Harbord's intercept (the slope of yi on sei in the
    equivalent weighted form), Peters' slope on 1/N.
    """
    gid = np.zeros(es.k, dtype=np.intp) if gid is None else gid
    if which == "egger":
        se = np.sqrt(es.vi)
        # yi/sei = b0 + b1/sei  <=>  yi = b1 + b0 sei with weights 1/vi: the bias term is the slope on sei.
        _, _, coef, cse, df = wls_groups(es.yi, se, 1 / es.vi, gid, G)
    elif which == "peters":
        a, n1, c, n2 = (np.asarray(x, float) for x in _binary_counts(es, "Peters"))
        n = n1 + n2
        events, non = a + c, n - a - c
        # Peters et al. 2006: weights 1/(1/events + 1/non-events) = events x non-events / N (raw counts).
        with np.errstate(divide="ignore", invalid="ignore"):
            _, _, coef, cse, df = wls_groups(_log_or(es), 1 / n, events * non / n, gid, G)
    elif which == "harbord":
        a, n1, c, n2 = (np.asarray(x, float) for x in _binary_counts(es, "Harbord"))
        n = n1 + n2
        m1 = a + c
        z = a - m1 * n1 / n
        v = n1 * n2 * m1 * (n - m1) / (n**2 * (n - 1))
        # Z/sqrt(V) = b0 + b1 sqrt(V)  <=>  Z/V = b1 + b0 / sqrt(V) with weights V (V = 0: no information).
        with np.errstate(divide="ignore", invalid="ignore"):
            _, _, coef, cse, df = wls_groups(z / v, 1 / np.sqrt(v), v, gid, G)
    else:
        raise ValueError(which)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = coef / cse
    return t, df, _t_p(t, df), coef, cse, np.bincount(gid, minlength=G)


NOTES = {"egger": "intercept of yi/se on 1/se (Egger et al. 1997)",
         "peters": "slope of log OR on 1/N, weights events x non-events / N (Peters et al. 2006)",
         "harbord": "intercept of Z/sqrt(V) on sqrt(V), efficient score and its variance (Harbord et al. 2006)",
         "begg": "Kendall's tau between standardised effects and variances (Begg & Mazumdar 1994)"}


def egger(res: MetaResult | EffectSizes) -> EggerTest:
    """The classical Egger test: yi/se on 1/se, whose intercept measures asymmetry (t on k - 2 df);
    warns below 10 studies (Cochrane Handbook 13.3.5.4: too little power).

    The same regression as ``small_study_test(res, "egger")`` (metafor's ``regtest(model="lm",
    predictor="sei")``) written the classical way: its intercept is the weighted form's slope on sei and
    its slope the weighted form's intercept.

    Parameters
    ----------
    res : MetaResult
        A fit from ``rma`` or ``pool_table`` (or its EffectSizes).

    Returns
    -------
    EggerTest
        Intercept (in standard-normal-deviate units), its SE, t, df, p, the slope (analysis scale) and
        a warning below 10 studies.

    References
    ----------
    Egger M, Davey Smith G, Schneider M, Minder C (1997). Bias in meta-analysis detected by a simple,
    graphical test. BMJ 315:629-634.
    """
    es = fitted(res).es
    k = es.k
    if k < 3:
        raise InputError(f"Egger's test needs at least 3 studies, found {k}", option="--small-study")
    b0, se0, b1, se1, df = (float(np.asarray(a)[0]) for a in
                            wls_groups(es.yi, np.sqrt(es.vi), 1 / es.vi, np.zeros(k, dtype=np.intp), 1))
    t = b1 / se1
    warning = (f"only {k} studies: Egger's test has little power below 10 (Cochrane Handbook 13.3.5.4)"
               if k < 10 else None)
    return EggerTest(intercept=b1, se=se1, t=t, df=int(df), p=float(_t_p(t, df)), slope=b0, warning=warning)


def small_study_test(res: MetaResult | EffectSizes, which: str = "egger") -> SmallStudyTest:
    """One test for small-study effects (metafor's ``regtest`` and ``ranktest``).

    Parameters
    ----------
    res : MetaResult
        A fit from ``rma`` or ``pool_table`` (or its EffectSizes).
    which : {"egger", "peters", "harbord", "begg"}
        Egger's weighted regression (yi on sei; Egger et al. 1997), Peters' (log OR on 1/N; Peters et al.
        2006), Harbord's score test (Harbord et al. 2006) or Begg's rank correlation (Begg & Mazumdar 1994).

    Returns
    -------
    SmallStudyTest
        The statistic (t, or Kendall's tau for Begg's), df, p and the tested coefficient (analysis scale).

    References
    ----------
    Egger M et al. (1997). BMJ 315:629-634. Peters JL et al. (2006). JAMA 295:676-680. Harbord RM,
    Egger M, Sterne JAC (2006). Stat Med 25:3443-3457. Begg CB, Mazumdar M (1994). Biometrics
    50:1088-1101.
    """
    es = fitted(res).es
    which = str(which).lower()
    if which not in TESTS:
        raise InputError(f"unknown small-study test {which!r}; choose one of {', '.join(TESTS)}",
                         column="--small-study")
    if es.k < 3:
        raise InputError(f"{TEST_NAMES[which]} needs at least 3 studies, found {es.k}", option="--small-study")
    notes: tuple[str, ...] = ()
    if which == "begg":
        tau, p = rank_test(es.yi, es.vi)
        if es.k > EXACT_MAX:
            notes = (f"Begg's test: p from the normal approximation ({es.k} studies; metafor's exact p "
                     f"is not available above {EXACT_MAX})",)
        return SmallStudyTest(method=which, statistic=tau, df=None, p=p, k=es.k, estimate=None, se=None,
                              description=NOTES[which], warning=few_studies(es.k, TEST_NAMES[which]), notes=notes)
    if which in ("peters", "harbord") and es.measure != "OR":
        notes = (f"{TEST_NAMES[which]} is defined on the log odds ratio: computed on the log OR of each study, "
                 f"not the analysis's {es.measure}",)
    k_used = es.k
    if which in ("peters", "harbord"):
        a, n1, c, n2 = (np.asarray(x, float) for x in _binary_counts(es, TEST_NAMES[which]))
        none = (a + c == 0) | (a + c == n1 + n2)
        k_used = int(es.k - none.sum())
        if k_used < 3:
            raise InputError(f"{TEST_NAMES[which]} needs at least 3 studies with events, found {k_used}",
                             file=es.table.path)
        if none.any():
            notes += (f"{TEST_NAMES[which]} leaves out studies with no events (or only events) in both arms: "
                      + ", ".join(s for s, z in zip(es.studies, none) if z),)
    t, df, p, coef, cse, _ = regression_tests(es, which)
    if not np.isfinite(t[0]):
        raise InputError(f"{TEST_NAMES[which]} cannot be computed: the predictor does not vary across studies",
                         file=es.table.path, column="--small-study")
    return SmallStudyTest(method=which, statistic=float(t[0]), df=int(df[0]), p=float(p[0]), k=k_used,
                          estimate=float(coef[0]), se=float(cse[0]), description=NOTES[which],
                          warning=few_studies(k_used, TEST_NAMES[which]), notes=notes)


# ---------------------------------------------------------------- Begg's rank correlation

def rank_test(yi: ArrayLike, vi: ArrayLike) -> tuple[float, float]:
    """Kendall's tau (tau-b) between (yi - theta_FE) / sqrt(vi - v_FE) and vi, and its two-sided p:
    exact when there are no ties, else the normal approximation with tie-corrected variance
    (metafor's ranktest, which calls R's cor.test(method="kendall", exact=TRUE))."""
    yi, vi = np.asarray(yi, float), np.asarray(vi, float)
    w = 1 / vi
    theta = np.sum(w * yi) / np.sum(w)
    ystar = (yi - theta) / np.sqrt(vi - 1 / np.sum(w))
    return kendall(ystar, vi)


EXACT_MAX = 170  # R's exact Kendall distribution divides by n!, which overflows above n = 170 (p = NaN)


def kendall(x: ArrayLike, y: ArrayLike, exact: bool = True) -> tuple[float, float]:
    """(tau-b, two-sided p) as R's cor.test(x, y, method="kendall", exact=TRUE, continuity=FALSE): the
    exact null distribution without ties (up to EXACT_MAX values, where R's stops working), else the
    normal approximation with the tie-corrected variance of S."""
    from scipy.special import ndtr
    from scipy.stats import kendalltau

    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    xt, yt = _tie_sizes(x), _tie_sizes(y)
    t0 = n * (n - 1) / 2
    t1, t2 = np.sum(xt * (xt - 1)) / 2, np.sum(yt * (yt - 1)) / 2
    if n <= 200:
        # Concordant minus discordant pairs, exactly (integers), for the exact distribution's lookup.
        iu = np.triu_indices(n, 1)
        s = float(np.sum(np.sign(x[:, None] - x[None, :])[iu] * np.sign(y[:, None] - y[None, :])[iu]))
        tau = s / math.sqrt((t0 - t1) * (t0 - t2))
    else:  # O(n log n); no k x k matrix for a very large meta-analysis
        tau = float(kendalltau(x, y).statistic)
        s = tau * math.sqrt((t0 - t1) * (t0 - t2))
    if exact and len(xt) == 0 and len(yt) == 0 and n <= EXACT_MAX:
        # Exact: the null distribution of the number of concordant pairs (inversions of a permutation).
        q = round((tau + 1) * n * (n - 1) / 4)
        cdf = _kendall_cdf(n)
        p = 1 - cdf[q - 1] if q > n * (n - 1) / 4 else cdf[q]
        return tau, float(min(2 * p, 1.0))
    v0 = n * (n - 1) * (2 * n + 5)
    vt, vu = np.sum(xt * (xt - 1) * (2 * xt + 5)), np.sum(yt * (yt - 1) * (2 * yt + 5))
    v1 = np.sum(xt * (xt - 1)) * np.sum(yt * (yt - 1))
    v2 = np.sum(xt * (xt - 1) * (xt - 2)) * np.sum(yt * (yt - 1) * (yt - 2))
    var_s = (v0 - vt - vu) / 18 + v1 / (2 * n * (n - 1)) + v2 / (9 * n * (n - 1) * (n - 2))
    z = s / math.sqrt(var_s)
    return tau, float(2 * min(ndtr(z), ndtr(-z)))


def _tie_sizes(x):
    _, counts = np.unique(x, return_counts=True)
    return counts[counts > 1].astype(float)


def _kendall_cdf(n):
    """P(number of inversions <= q) for a random permutation of n, q = 0..n(n-1)/2 (Mahonian numbers),
    as probabilities so that no count overflows."""
    dist = np.ones(1)
    for m in range(2, n + 1):
        # Adding the m-th element adds 0..m-1 inversions, each equally likely: a moving sum of width m.
        c = np.concatenate([[0.0], np.cumsum(dist)])
        size = len(dist) + m - 1
        hi = np.minimum(np.arange(size) + 1, len(dist))
        lo = np.maximum(np.arange(size) - m + 1, 0)
        dist = (c[hi] - c[lo]) / m
    return np.cumsum(dist)


# ---------------------------------------------------------------- PET-PEESE

def pet_peese(res: MetaResult | EffectSizes, level: float | None = None) -> PetPeese:
    """PET (yi on sei) and PEESE (yi on vi), weights 1/vi: their intercepts estimate the effect of a
    study with no sampling error (t intervals on k - 2 df; metafor regtest's limit estimate). The
    conditional PET-PEESE estimate is PEESE when PET's intercept differs from 0 at the 5% level
    (two-sided), else PET.

    Parameters
    ----------
    res : MetaResult
        A fit from ``rma`` or ``pool_table`` (or its EffectSizes).
    level : float, optional
        Level of the intervals (default: the fit's).

    Returns
    -------
    PetPeese
        Both fits, the one ``chosen``, and its estimate and interval (analysis scale).

    References
    ----------
    Stanley TD, Doucouliagos H (2014). Meta-regression approximations to reduce publication selection
    bias. Res Synth Methods 5:60-78.
    """
    from scipy.special import stdtrit

    f = fitted(res, level=level)
    es, level = f.es, f.level

    if es.k < 3:
        raise InputError(f"PET-PEESE needs at least 3 studies, found {es.k}", option="--pet-peese")
    gid = np.zeros(es.k, dtype=np.intp)
    out = {}
    for name, x in (("pet", np.sqrt(es.vi)), ("peese", es.vi)):
        b0, se0, _, _, df = wls_groups(es.yi, x, 1 / es.vi, gid, 1)
        crit = stdtrit(df[0], 0.5 + level / 2)
        t = b0[0] / se0[0]
        out[name] = {"estimate": float(b0[0]), "se": float(se0[0]), "ci_low": float(b0[0] - crit * se0[0]),
                     "ci_high": float(b0[0] + crit * se0[0]), "t": float(t), "df": int(df[0]),
                     "p": float(_t_p(t, df[0]))}
    chosen = "peese" if out["pet"]["p"] < PET_PEESE_ALPHA else "pet"
    c = out[chosen]
    return PetPeese(pet=out["pet"], peese=out["peese"], chosen=chosen, estimate=c["estimate"],
                    ci_low=c["ci_low"], ci_high=c["ci_high"], k=es.k, warning=few_studies(es.k, "PET-PEESE"))


# ---------------------------------------------------------------- trim-and-fill

def _tau2_method(method):
    return "FE" if method in COMMON_EFFECT_METHODS else method


def _fit_mean(y, v, method):
    if len(y) == 1:  # one study left after trimming: its own effect, whatever tau^2 (HE's is 0/0 there)
        return float(y[0])
    g = core.Groups.single(y, v)
    tau2 = core.estimate_tau2(g, method)
    w = 1 / (v + tau2[0])
    return float(np.sum(w * y) / np.sum(w))


def _slope_on_se(y, v, method):
    """Sign-deciding slope of the meta-regression of yi on sei with the model's tau^2 estimator
    (metafor's trimfill: rma.uni with mods = sqrt(vi) and the model's method)."""
    from ..fit.metareg import tau2_metareg

    if np.ptp(v) == 0:
        # The regressor is constant: metafor drops it and then stops on its missing slope.
        raise InputError("no side to fill can be chosen: the studies' variances do not vary, so the slope of "
                         "the effects on their standard errors is not defined", column="--trim-fill")
    X = np.column_stack([np.ones(len(y)), np.sqrt(v)])
    tau2 = tau2_metareg(X, y, v, method)
    w = 1 / (v + tau2)
    xtw = X.T * w
    return float(np.linalg.solve(xtw @ X, xtw @ y)[1])


def trim_fill(res: MetaResult | EffectSizes, method: str | None = None, estimator: str = "L0", side: str | None = None,
              level: float | None = None, maxiter: int = 100) -> TrimFill:
    """Duval & Tweedie's trim-and-fill as metafor's ``trimfill()``.

    The side with missing studies is the one opposite the sign of the slope of yi on sei (unless
    given); k0 by the L0 or R0 estimator, iterated until it stops changing; the filled studies mirror
    the k0 most extreme ones about the trimmed estimate; the model is refitted (same tau² estimator,
    Wald interval) on all studies.

    Parameters
    ----------
    res : MetaResult
        A fit from ``rma`` or ``pool_table`` (or its EffectSizes).
    method : str, optional
        tau² estimator of the refits (default: the fit's).
    estimator : {"L0", "R0"}
        Estimator of the number of missing studies k0.
    side : {None, "left", "right"}
        Side on which studies are missing (default: decided from the data, as metafor).
    level : float, optional
        Level of the interval (default: the fit's).
    maxiter : int
        Iterations of the trim-and-fill loop before giving up.

    Returns
    -------
    TrimFill
        k0, the side, the refitted estimate, SE, interval and tau² (analysis scale) and the filled
        studies' effects and variances.

    References
    ----------
    Duval S, Tweedie R (2000). Trim and fill: a simple funnel-plot-based method of testing and adjusting
    for publication bias in meta-analysis. Biometrics 56:455-463.
    """
    from scipy.special import ndtr, ndtri

    f = fitted(res, method=method, level=level)
    es, method, level = f.es, f.method, f.level

    estimator = str(estimator).upper()
    if estimator not in ("L0", "R0"):
        raise InputError(f"unknown trim-and-fill estimator {estimator!r}; choose L0 or R0",
                         column="--trim-fill-estimator")
    k = es.k
    if k < 3:
        raise InputError(f"trim-and-fill needs at least 3 studies, found {k}", option="--trim-fill")
    m = _tau2_method(method)
    notes: tuple[str, ...] = ()
    if m != method:
        notes = (f"trim-and-fill refits inverse-variance common-effect models (method {method} has no such refit)",)
    if side is None:
        side = "right" if _slope_on_se(es.yi, es.vi, m) < 0 else "left"
    sign = -1.0 if side == "right" else 1.0
    y0 = sign * es.yi
    order = np.argsort(y0, kind="stable")
    y, v = y0[order], es.vi[order]
    k0, prev, it = 0, -1, 0
    beta = 0.0
    while k0 != prev:
        prev = k0
        it += 1
        if it > maxiter:
            raise InputError("trim-and-fill did not converge", file=es.table.path, column="--trim-fill")
        beta = _fit_mean(y[: k - k0], v[: k - k0], m)
        c = y - beta
        # Signed ranks of |yi - beta| (ties broken by order, R's ties.method = "first").
        ranks = np.empty(k)
        ranks[np.argsort(np.abs(c), kind="stable")] = np.arange(1, k + 1)
        signed = np.sign(c) * ranks
        if estimator == "R0":
            neg = -signed[signed < 0]
            k0_raw = (k - (neg.max() if neg.size else 0)) - 1
        else:
            sr = signed[signed > 0].sum()
            k0_raw = (4 * sr - k * (k + 1)) / (2 * k - 1)
        k0 = max(0, int(_round_half_even(k0_raw)))
    filled_y = sign * (2 * beta - y[k - k0:]) if k0 else np.empty(0)
    filled_v = v[k - k0:] if k0 else np.empty(0)
    yy, vv = np.concatenate([es.yi, filled_y]), np.concatenate([es.vi, filled_v])
    g = core.Groups.single(yy, vv)
    refit = core.fit(g, method=m, ci="wald", level=level, tau2_ci=False)
    z = ndtri(0.5 + level / 2)
    est, se = float(refit.estimate[0]), float(refit.se[0])
    p_k0 = None
    if estimator == "R0":
        mm = np.arange(-1, k0)
        from scipy.special import comb

        p_k0 = float(1 - np.sum(comb(mm + 1, mm + 1) * 0.5 ** (mm + 2)))
    return TrimFill(k0=k0, side=side, estimator=estimator, estimate=est, se=se, ci_low=est - z * se,
                    ci_high=est + z * se, p=float(2 * ndtr(-abs(est / se))), tau2=float(refit.tau2[0]),
                    filled_yi=tuple(float(x) for x in filled_y), filled_vi=tuple(float(x) for x in filled_v),
                    k=k, method=m, p_k0=p_k0, warning=few_studies(k, "trim-and-fill"), notes=notes)


def _round_half_even(x):
    # R's round() rounds halves to even (IEC 60559), as Python's round().
    return round(float(x))


# ---------------------------------------------------------------- selection model

def _side_of(benefit):
    return "less" if str(benefit).lower() == "lower" else "greater"


def selection_model(res: MetaResult | EffectSizes, steps: Sequence[float] = (0.025,), benefit: str = "lower",
                    method: str | None = None,
                    level: float | None = None) -> SelectionModel:
    """Vevea & Hedges' step-function selection model, fitted by maximum likelihood as metafor's
    ``selmodel(type="stepfun")``.

    One-sided p-values in the benefit direction (``benefit="lower"``: small p for effects below 0,
    metafor's alternative="less"); relative likelihood of publication 1 for p <= steps[0] and delta_j
    for the later intervals (bounded to [0, 100] as metafor). Random effects (ML tau²) unless the
    method is a common-effect one. SEs from the Hessian on the natural scale (mu, tau², delta); the
    LRT compares with the ML model without selection (df = the number of deltas).

    Parameters
    ----------
    res : MetaResult
        A fit from ``rma`` or ``pool_table`` (or its EffectSizes).
    steps : sequence of float
        One-sided p-value cut-points, strictly between 0 and 1 (default 0.025).
    benefit : {"lower", "higher"}
        Direction of the effect that favours the experimental arm.
    method, level : optional
        tau² estimator (a common-effect one fits without tau²) and level (default: the fit's).

    Returns
    -------
    SelectionModel
        Adjusted estimate, SE, interval and tau² (analysis scale), the deltas and their SEs, the
        studies per p-value interval and the likelihood-ratio test.

    References
    ----------
    Vevea JL, Hedges LV (1995). A general linear model for estimating effect size in the presence of
    publication bias. Psychometrika 60:419-435.
    """
    from scipy.optimize import minimize
    from scipy.special import chdtrc, ndtr, ndtri

    f = fitted(res, method=method, level=level)
    es, method, level = f.es, f.method, f.level

    cut = np.asarray(sorted(float(s) for s in steps), float)
    if cut.size == 0 or (cut <= 0).any() or (cut >= 1).any():
        raise InputError("--steps takes p-value cut-points strictly between 0 and 1, e.g. 0.025",
                         column="--steps")
    cuts = np.concatenate([cut, [1.0]])
    nd = len(cut)  # number of free deltas
    y, v = es.yi, es.vi
    k = es.k
    random = method not in COMMON_EFFECT_METHODS
    if k < 1 + int(random) + nd + 1:
        raise InputError(f"the selection model needs more than {1 + int(random) + nd} studies, found {k}",
                         option="--selection-model")
    alternative = _side_of(benefit)
    sei = np.sqrt(v)
    zi = y / sei
    pvals = ndtr(zi) if alternative == "less" else ndtr(-zi)
    grp = np.searchsorted(cuts, pvals, side="left")  # interval j holds cuts[j-1] < p <= cuts[j]
    # The y value at which a study's one-sided p equals each cut-point.
    qz = ndtri(cuts[:-1]) if alternative == "less" else -ndtri(cuts[:-1])
    bounds = sei[:, None] * qz[None, :]
    DMAX = 100.0

    def negll(mu, tau2, delta):
        d = np.concatenate([[1.0], delta])
        s = np.sqrt(v + tau2)
        zb = (bounds - mu) / s[:, None]
        # P(p <= cut_j) for each cut: below the bound ("less") or above it ("greater").
        cdf = ndtr(zb) if alternative == "less" else ndtr(-zb)
        probs = np.diff(np.concatenate([np.zeros((k, 1)), cdf, np.ones((k, 1))], axis=1), axis=1)
        a = probs @ d
        ll = np.log(d[grp]) - 0.5 * np.log(2 * np.pi * (v + tau2)) - 0.5 * (y - mu) ** 2 / (v + tau2) - np.log(a)
        return -float(np.sum(ll))

    def unpack(par):
        mu = par[0]
        tau2 = math.exp(par[1]) if random else 0.0
        if tau2 < 10 * np.finfo(float).eps:
            tau2 = 0.0
        delta = DMAX / (1 + np.exp(-np.asarray(par[1 + int(random):])))  # metafor's logistic map to (0, 100)
        return mu, tau2, delta

    obj = lambda par: negll(*unpack(par))  # noqa: E731
    # Start from the ML random-effects fit (metafor: beta.init and tau2.init from the model, deltas 1).
    g = core.Groups.single(y, v)
    tau2_ml = float(core.estimate_tau2(g, "ML")[0]) if random else 0.0
    w = 1 / (v + tau2_ml)
    mu_ml = float(np.sum(w * y) / np.sum(w))
    ll0 = -negll(mu_ml, tau2_ml, np.ones(nd))
    start = [mu_ml] + ([math.log(max(tau2_ml, 0.01))] if random else []) + [math.log(1 / 99)] * nd
    # BFGS (as metafor's default optimiser), restarted once from its answer; Nelder-Mead only when
    # BFGS reports failure (its line search can stall on the flat stretches near delta's bounds).
    def optimise(start):
        best: Any = None  # the scipy OptimizeResult with the lowest objective so far
        for method_ in ("BFGS", "BFGS", "Nelder-Mead"):
            if method_ == "Nelder-Mead" and best.success:
                break
            r = minimize(obj, start, method=method_,
                         options={"gtol": 1e-10, "maxiter": 20000} if method_ == "BFGS" else
                         {"xatol": 1e-12, "fatol": 1e-14, "maxiter": 40000, "maxfev": 40000})
            if best is None or r.fun < best.fun - 1e-12:
                best = r
            start = list(best.x)
        return best

    best = optimise(start)
    mu, tau2, delta = unpack(best.x)
    if random:
        # On log(tau^2) the optimiser only approaches tau^2 = 0, and once there the slope it sees,
        # tau^2 times the score, vanishes: where it stops depends on the last bits of ndtr/exp/log
        # (NumPy's SIMD kernels, the SciPy version), and it can stall there even when the likelihood
        # rises off the boundary. The score at tau^2 = 0 decides (the boundary's Kuhn-Tucker
        # condition): rising, start again inside (from the first start's tau^2) and keep the better fit.
        h = 1e-6 * float(np.min(v))
        score0 = (negll(mu, 0.0, delta) - negll(mu, h, delta)) / h  # d loglik / d tau^2 at 0
        if score0 > 0 and tau2 * score0 < 1e-8:
            again = optimise([best.x[0], start[1], *best.x[2:]])
            if again.fun < best.fun:
                best = again
                mu, tau2, delta = unpack(best.x)
    ll = -best.fun
    # Falling (or no better inside): when tau^2 = 0 is at least as likely, the maximum is on the boundary.
    if random and tau2 > 0 and -negll(mu, 0.0, delta) >= ll:
        tau2, ll = 0.0, -negll(mu, 0.0, delta)
    # Hessian on the natural scale by central differences with Richardson extrapolation.
    theta = np.array([mu] + ([tau2] if random else []) + list(delta))
    free = np.ones(len(theta), dtype=bool)
    notes = []
    if random and tau2 == 0:
        free[1] = False  # tau^2 on its boundary: no curvature to use
        notes.append("tau^2 estimated at 0: SEs computed with tau^2 fixed there")
    at_bound = np.abs(delta - DMAX) < 1e-3 * DMAX
    if at_bound.any():
        notes.append(f"delta reached its bound of {DMAX:g}: the selection model is not identified by these "
                     "data (too few studies in an interval)")

    def f_nat(t):
        m = t[0]
        t2 = max(t[1], 0.0) if random else 0.0
        return negll(m, t2, t[1 + int(random):])

    H = _hessian(f_nat, theta, free)
    se = float("nan")
    delta_se = (float("nan"),) * nd
    try:
        cov = np.linalg.inv(H)
        se = float(math.sqrt(cov[0, 0]))
        diag = np.full(len(theta), np.nan)
        diag[free] = np.diag(cov)
        delta_se = tuple(float(math.sqrt(x)) if x >= 0 else float("nan") for x in diag[1 + int(random):])
    except np.linalg.LinAlgError:
        notes.append("the Hessian could not be inverted: no standard error")
    z = ndtri(0.5 + level / 2)
    lrt = max(0.0, 2 * (ll - ll0))
    counts = np.bincount(grp, minlength=len(cuts))
    empty = [j for j in range(len(cuts)) if counts[j] == 0]
    if empty:
        notes.append("no study in p-value interval " + ", ".join(_interval(cuts, j) for j in empty)
                     + ": its delta is not identified")
    return SelectionModel(estimate=float(mu), se=se, ci_low=float(mu - z * se), ci_high=float(mu + z * se),
                          p=float(2 * ndtr(-abs(mu / se))) if se == se else float("nan"), tau2=float(tau2),
                          delta=tuple(float(d) for d in delta), delta_se=delta_se, steps=tuple(float(s) for s in cuts),
                          studies_per_interval=tuple(int(c) for c in counts), alternative=alternative,
                          lrt=float(lrt), lrt_df=nd, lrt_p=float(chdtrc(nd, lrt)), k=k,
                          warning=few_studies(k, "the selection model"), notes=tuple(notes))


def _interval(cuts, j) -> str:
    lo = 0.0 if j == 0 else cuts[j - 1]
    return f"{lo:g} < p <= {cuts[j]:g}"


def _hessian(f, x, free):
    """Hessian of f at x over the ``free`` coordinates: central differences, Richardson-extrapolated
    over two step sizes (error O(h^4))."""
    idx = np.flatnonzero(free)
    n = len(idx)

    def at(h):
        H = np.empty((n, n))
        steps = h * np.maximum(np.abs(x), 1e-2)
        f0 = f(x)
        for a in range(n):
            for b in range(a, n):
                i, j = idx[a], idx[b]
                ei = np.zeros_like(x)
                ej = np.zeros_like(x)
                ei[i], ej[j] = steps[i], steps[j]
                if i == j:
                    val = (f(x + ei) - 2 * f0 + f(x - ei)) / steps[i] ** 2
                else:
                    val = ((f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej))
                           / (4 * steps[i] * steps[j]))
                H[a, b] = H[b, a] = val
        return H

    h1, h2 = at(2e-4), at(1e-4)
    return (4 * h2 - h1) / 3


# ---------------------------------------------------------------- many meta-analyses at once (--by)

def tests_by_group(es: EffectSizes, gid: ArrayLike, G: int, tests: Sequence[str],
                   groups: Sequence[Any] | None = None) -> list[dict[str, object]]:
    """Small-study tests for every group of rows of ``es`` (``gid``: group index per row): a list of G
    dicts, test name -> JSON-ready dict. The regression tests are one vectorised pass over all groups;
    Begg's test is computed group by group. Groups with fewer than 3 studies get null numbers and a
    warning saying so."""
    gid = np.asarray(gid, dtype=np.intp)
    k = np.bincount(gid, minlength=G)
    out: list[dict[str, object]] = [dict() for _ in range(G)]
    for which in tests:
        which = str(which).lower()
        if which not in TESTS:
            raise InputError(f"unknown small-study test {which!r}; choose one of {', '.join(TESTS)}",
                             column="--small-study")
        if which == "begg":
            cols = [rank_test(es.yi[gid == j], es.vi[gid == j]) if k[j] >= 3 else (float("nan"), float("nan"))
                    for j in range(G)]
            df: list[int | None]
            stat, p, df = [c[0] for c in cols], [c[1] for c in cols], [None] * G
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                t, d, pp, _, _, _ = regression_tests(es, which, gid, G)
            stat, p, df = t.tolist(), pp.tolist(), [int(x) if x > 0 else None for x in d]
        for j in range(G):
            small = k[j] < 3
            row = {"method": which, "statistic": None if small or not math.isfinite(stat[j]) else stat[j]}
            if which != "begg":
                row["df"] = None if small else df[j]
            row.update(p=None if small or not math.isfinite(p[j]) else p[j], k=int(k[j]),
                       warning=(f"only {k[j]} studies: the test needs at least 3" if small
                                else few_studies(int(k[j]), TEST_NAMES[which])))
            out[j][which] = row
    return out


def pet_peese_by_group(es: EffectSizes, gid: ArrayLike, G: int, level: float = 0.95) -> list[dict[str, object]]:
    """PET-PEESE for every group of rows in one vectorised pass: a list of G JSON-ready dicts (null
    numbers and a warning for groups with fewer than 3 studies)."""
    from scipy.special import stdtrit

    gid = np.asarray(gid, dtype=np.intp)
    k = np.bincount(gid, minlength=G)
    fits = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for name, x in (("pet", np.sqrt(es.vi)), ("peese", es.vi)):
            b0, se0, _, _, df = wls_groups(es.yi, x, 1 / es.vi, gid, G)
            crit = stdtrit(np.maximum(df, 1), 0.5 + level / 2)
            t = b0 / se0
            fits[name] = dict(estimate=b0, se=se0, ci_low=b0 - crit * se0, ci_high=b0 + crit * se0, t=t, df=df,
                              p=_t_p(t, df))
    out: list[dict[str, object]] = []
    for j in range(G):
        if k[j] < 3:
            out.append({"pet": None, "peese": None, "chosen": None, "estimate": None, "ci_low": None,
                        "ci_high": None, "k": int(k[j]), "warning": f"only {k[j]} studies: PET-PEESE needs at least 3"})
            continue
        d = {name: {key: (int(arr[j]) if key == "df" else float(arr[j])) for key, arr in f.items()}
             for name, f in fits.items()}
        chosen = "peese" if d["pet"]["p"] < PET_PEESE_ALPHA else "pet"
        out.append({"pet": d["pet"], "peese": d["peese"], "chosen": chosen, "estimate": d[chosen]["estimate"],
                    "ci_low": d[chosen]["ci_low"], "ci_high": d[chosen]["ci_high"], "k": int(k[j]),
                    "warning": few_studies(int(k[j]), "PET-PEESE")})
    return out
