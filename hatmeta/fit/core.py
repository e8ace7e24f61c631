"""Vectorised random-effects fits: many meta-analyses at once, each a group of rows.

Every function takes flat arrays ``y`` (effects, analysis scale), ``v`` (sampling variances) and
``gid`` (group index 0..G-1 of each row) and returns one value per group. A single meta-analysis
is the case G = 1, so single fits, leave-one-out, cumulative, subgroup and ``--by`` runs share one
implementation. Sums per group use ``np.bincount``, so cost grows linearly in the number of rows
and no k x k matrix is ever formed.

Iterative tau^2 estimators (REML, ML, PM, EB) are solved by a bracketed Newton / Fisher-scoring
iteration that falls back to bisection whenever a step leaves the bracket, with the tau^2 = 0
boundary checked first, so every dataset gets an answer (metafor's plain Fisher scoring can fail).
Written by hand because no library solves thousands of such equations at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TAU2_METHODS = ("DL", "REML", "ML", "PM", "HE", "SJ", "EB")
TOL = 1e-12  # relative tolerance on tau^2 (metafor's default threshold is 1e-5; we go further)
MAXITER = 500


def gsum(x, gid, G):
    """Sum of ``x`` within each group."""
    return np.bincount(gid, weights=x, minlength=G)


@dataclass(frozen=True)
class Groups:
    """Rows with their group index; ``k`` is the number of rows per group."""

    y: np.ndarray
    v: np.ndarray
    gid: np.ndarray
    G: int

    @classmethod
    def single(cls, y, v):
        y = np.asarray(y, float)
        return cls(y, np.asarray(v, float), np.zeros(len(y), dtype=np.intp), 1)

    @property
    def k(self):
        return np.bincount(self.gid, minlength=self.G).astype(float)

    def sum(self, x):
        return gsum(x, self.gid, self.G)

    def wmean(self, w):
        """Weighted mean of y per group, and the sum of weights."""
        sw = self.sum(w)
        return self.sum(w * self.y) / sw, sw


def q_stat(g: Groups, tau2=None):
    """Generalised Q: sum of w (y - mu_w)^2 with w = 1 / (v + tau2); tau2 = 0 gives Cochran's Q."""
    t = 0.0 if tau2 is None else np.asarray(tau2)[g.gid]
    w = 1.0 / (g.v + t)
    mu, _ = g.wmean(w)
    return g.sum(w * (g.y - mu[g.gid]) ** 2)


# ---------------------------------------------------------------- closed-form estimators

def tau2_dl(g: Groups):
    """DerSimonian & Laird (1986): (Q - (k-1)) / (sum w - sum w^2 / sum w), truncated at 0."""
    w = 1.0 / g.v
    sw, sw2 = g.sum(w), g.sum(w * w)
    q = q_stat(g)
    return np.maximum(0.0, (q - (g.k - 1)) / (sw - sw2 / sw))


def tau2_he(g: Groups):
    """Hedges (1983) / Hedges & Olkin (1985): unweighted, RSS/(k-1) - mean(v), truncated at 0."""
    k = g.k
    ybar = g.sum(g.y) / k
    rss = g.sum((g.y - ybar[g.gid]) ** 2)
    return np.maximum(0.0, rss / (k - 1) - g.sum(g.v) / k)


def tau2_sj(g: Groups):
    """Sidik & Jonkman (2005): one re-weighting step from tau0^2 = sum (y - ybar)^2 / k.

    metafor 3.8 (rma.uni, method "SJ") starts from the same tau0^2 (the biased variance of y).
    """
    k = g.k
    ybar = g.sum(g.y) / k
    tau0 = g.sum((g.y - ybar[g.gid]) ** 2) / k
    return tau0 * q_stat(g, tau0) / (k - 1)


# ---------------------------------------------------------------- iterative estimators

def _score(g: Groups, method, tau2):
    """Estimating equation f(tau2) (positive below the root) and its slope, per group."""
    w = 1.0 / (g.v + tau2[g.gid])
    mu, sw = g.wmean(w)
    r = g.y - mu[g.gid]
    w2 = w * w
    sw2 = g.sum(w2)
    if method in ("REML", "ML"):
        # Score of the (restricted) log-likelihood in tau^2, times 2 (Viechtbauer 2005, eqs. 7 and 9):
        # ML: sum w^2 r^2 - sum w; REML: sum w^2 r^2 - tr(P) with tr(P) = sum w - sum w^2 / sum w.
        # Exact slope (Newton rather than Fisher scoring, so convergence is quadratic): with dP/dtau2 = -PP,
        # d(y'PPy) = -2 y'P^3y, y'P^3y = sum w (w r)^2 - (sum w^2 r)^2 / sum w, and
        # d tr(P) = -tr(PP) (REML) or d sum w = -sum w^2 (ML).
        ypppy = g.sum(w2 * w * r * r) - g.sum(w2 * r) ** 2 / sw
        if method == "ML":
            return g.sum(w2 * r * r) - sw, -2 * ypppy + sw2
        sw3 = g.sum(w2 * w)
        trpp = sw2 - 2 * sw3 / sw + (sw2 / sw) ** 2
        return g.sum(w2 * r * r) - (sw - sw2 / sw), -2 * ypppy + trpp
    # PM (Paule & Mandel 1982) and EB (Morris 1983): generalised Q equals its expectation k - 1.
    # Viechtbauer et al. 2015 (Res Synth Methods 6:357) show EB and PM solve the same equation
    # (for models without moderators); exact slope of Q is -sum w^2 r^2.
    f = g.sum(w * r * r) - (g.k - 1)
    return f, -g.sum(w2 * r * r)


def solve_decreasing(fun, G, lo, hi, x0=None, tol=TOL, maxiter=MAXITER, scale=None):
    """Root of a function decreasing through zero on [lo, hi] per group.

    ``fun(x) -> (f, slope)``; requires f(lo) > 0 > f(hi). Newton steps, bisection when a step
    leaves the current bracket; converged when a step is below ``tol * (|x| + scale)``, where
    ``scale`` (per group; e.g. the mean sampling variance) sets what counts as a negligible tau^2.
    Returns the roots and a boolean array of converged groups.
    """
    lo, hi = lo.copy(), hi.copy()
    x = 0.5 * (lo + hi) if x0 is None else np.clip(x0, lo, hi)
    floor = 1e-8 if scale is None else np.maximum(scale, 1e-300)
    done = np.zeros(G, dtype=bool)
    f_prev = np.full(G, np.inf)
    slow = np.zeros(G, dtype=int)
    for _ in range(maxiter):
        f, slope = fun(x)
        pos = f > 0
        lo = np.where(pos & ~done, x, lo)
        hi = np.where(~pos & ~done, x, hi)
        # |f| not halving for three steps in a row means Newton is stalling (a non-convex
        # stretch of the equation, where it can cycle): bisect.
        slow = np.where(np.abs(f) > 0.5 * f_prev, slow + 1, 0)
        f_prev = np.abs(f)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(slope < 0, -f / slope, np.nan)
        newton = x + step
        # A negligible Newton step (or an exact zero) is the answer, even where rounding puts it on
        # the bracket's edge; otherwise a step that leaves the bracket, or a stall, is replaced by bisection.
        tiny = (f == 0) | (np.isfinite(step) & (np.abs(step) <= tol * (np.abs(x) + floor)))
        bad = ~np.isfinite(newton) | (newton <= lo) | (newton >= hi) | (slow >= 3)
        new = np.where(bad, 0.5 * (lo + hi), newton)
        new = np.where(tiny, np.where(f == 0, x, newton), new)
        slow = np.where(slow >= 3, 0, slow)
        conv = tiny | ((hi - lo) <= tol * (hi + floor))
        x = np.where(done, x, new)
        done |= conv
        if done.all():
            break
    return x, done


def loglik(g: Groups, method, tau2):
    """(Restricted) log-likelihood in tau^2 per group, up to a constant (Viechtbauer 2005, eqs. 5-6)."""
    w = 1.0 / (g.v + tau2[g.gid])
    mu, sw = g.wmean(w)
    ll = -0.5 * (g.sum(np.log(g.v + tau2[g.gid])) + g.sum(w * (g.y - mu[g.gid]) ** 2))
    return ll - 0.5 * np.log(sw) if method == "REML" else ll


GRID = np.concatenate([[0.0], np.geomspace(1e-7, 1.0, 48)])  # relative to each group's upper bound


def _upper_bound(g: Groups, method, active, start):
    """A tau^2 per group beyond which the estimating equation stays negative."""
    scale = g.sum(g.v) / g.k + g.sum((g.y - (g.sum(g.y) / g.k)[g.gid]) ** 2) / g.k
    hi = np.maximum(2.0 * start, scale) + 1e-12
    for _ in range(200):
        fh, _ = _score(g, method, hi)
        grow = active & (fh > 0)
        if not grow.any():
            break
        hi = np.where(grow, hi * 4.0, hi)
    return hi


def tau2_iterative(g: Groups, method):
    """REML, ML, PM or EB tau^2 per group.

    PM and EB solve Q(tau^2) = k - 1, whose left side is decreasing: one root, or tau^2 = 0.
    REML and ML maximise a likelihood that can have more than one local maximum, and a local
    maximum at tau^2 = 0 can hide a higher interior one (metafor then returns 0 without warning).
    So the likelihood is first scanned on a log grid up to where the score stays negative, and the
    root is polished inside the bracket around the best grid point; the boundary wins only if its
    likelihood is the highest.
    """
    G = g.G
    zero = np.zeros(G)
    f0, _ = _score(g, method, zero)
    start = np.maximum(tau2_he(g), tau2_dl(g))
    if method in ("PM", "EB"):
        active = f0 > 0  # Q(0) <= k - 1: tau^2 = 0
        if not active.any():
            return zero
        hi = _upper_bound(g, method, active, start)
        x0 = np.where(active, np.clip(start, 1e-12, hi), 0.0)
        root, _ = solve_decreasing(lambda t: _score(g, method, t), G, zero, hi, x0, scale=g.sum(g.v) / g.k)
        return np.where(active, root, 0.0)
    hi = _upper_bound(g, method, np.ones(G, dtype=bool), start)
    pts = GRID[:, None] * hi[None, :]  # (grid point, group)
    best = np.argmax(np.array([loglik(g, method, t) for t in pts]), axis=0)
    cols = np.arange(G)
    # Bracket the maximum: the score is positive left of it and negative right of it.
    left, right = np.maximum(best - 1, 0), np.minimum(best + 1, len(GRID) - 1)
    f_best = _score(g, method, pts[best, cols])[0]
    lo_i = np.where(f_best > 0, best, left)
    hi_i = np.where(f_best > 0, right, best)
    lo, hi_b = pts[lo_i, cols], pts[hi_i, cols]
    f_lo, f_hi = _score(g, method, lo)[0], _score(g, method, hi_b)[0]
    interior = (f_lo > 0) & (f_hi <= 0) & ~((best == 0) & (f0 <= 0))
    if not interior.any():
        return zero
    root, _ = solve_decreasing(lambda t: _score(g, method, t), G, np.where(interior, lo, 0.0),
                               np.where(interior, hi_b, 0.0), np.where(interior, 0.5 * (lo + hi_b), 0.0),
                               scale=g.sum(g.v) / g.k)
    tau2 = np.where(interior, root, 0.0)
    # The boundary keeps its place when its likelihood is at least as high as the polished root's.
    boundary_better = (f0 <= 0) & (loglik(g, method, zero) >= loglik(g, method, tau2))
    return np.where(boundary_better, 0.0, tau2)


def estimate_tau2(g: Groups, method: str):
    method = method.upper()
    if method in ("FE", "MH", "PETO"):
        return np.zeros(g.G)
    if method == "DL":
        return tau2_dl(g)
    if method == "HE":
        return tau2_he(g)
    if method == "SJ":
        return tau2_sj(g)
    if method in ("REML", "ML", "PM", "EB"):
        return tau2_iterative(g, method)
    raise ValueError(method)


def qprofile_ci(g: Groups, level=0.95, df=None):
    """Q-profile CI for tau^2 (Viechtbauer 2007): the tau^2 at which the generalised Q equals its
    chi^2 (k - 1 df) quantiles; bounds truncated at 0 (metafor's confint with tau2.min = 0)."""
    from scipy.special import chdtri

    k = g.k
    df = k - 1 if df is None else df
    alpha = 1 - level
    q_hi_target = chdtri(df, alpha / 2)  # upper quantile -> lower bound of tau^2
    q_lo_target = chdtri(df, 1 - alpha / 2)  # lower quantile -> upper bound of tau^2
    q0 = q_stat(g)
    return _q_root(g, q0, q_hi_target), _q_root(g, q0, q_lo_target)


def _q_root(g: Groups, q0, target):
    G = g.G
    active = q0 > target
    out = np.zeros(G)
    if not active.any():
        return out

    def fun(t):
        w = 1.0 / (g.v + t[g.gid])
        mu, _ = g.wmean(w)
        r = g.y - mu[g.gid]
        return g.sum(w * r * r) - target, -g.sum(w * w * r * r)

    hi = np.maximum(g.sum((g.y - (g.sum(g.y) / g.k)[g.gid]) ** 2) / g.k, g.sum(g.v) / g.k) + 1e-12
    for _ in range(200):
        fh, _ = fun(hi)
        grow = active & (fh > 0)
        if not grow.any():
            break
        hi = np.where(grow, hi * 4.0, hi)
    # Q(tau^2) is decreasing and convex, so Newton from tau^2 = 0 climbs to the root without overshoot.
    root, _ = solve_decreasing(fun, G, np.zeros(G), hi, np.zeros(G), scale=g.sum(g.v) / g.k)
    return np.where(active, root, 0.0)


# ---------------------------------------------------------------- the fit

@dataclass(frozen=True)
class CoreFit:
    """Per-group results of a fit (arrays of length G; analysis scale)."""

    k: np.ndarray
    estimate: np.ndarray
    se: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    stat: np.ndarray
    p: np.ndarray
    df: np.ndarray | None
    tau2: np.ndarray
    tau2_ci_low: np.ndarray
    tau2_ci_high: np.ndarray
    q: np.ndarray
    q_df: np.ndarray
    q_p: np.ndarray
    i2: np.ndarray
    h2: np.ndarray
    pi_low: np.ndarray
    pi_high: np.ndarray
    weights: np.ndarray  # per row, percent of its group's total


def fit(g: Groups, method="REML", ci="wald", pi="t", level=0.95, tau2=None, q=None, tau2_ci=True) -> CoreFit:
    """Inverse-variance fit with weights 1 / (v + tau^2) per group.

    ``tau2`` fixes tau^2 (array per group) instead of estimating it; ``q`` overrides the Q used for
    heterogeneity statistics (the RevMan preset computes it around the Mantel-Haenszel estimate).
    """
    from scipy.special import chdtrc, ndtr, ndtri, stdtr, stdtrit

    k = g.k
    if tau2 is None:
        tau2 = estimate_tau2(g, method)
    tau2 = np.asarray(tau2, float)
    w = 1.0 / (g.v + tau2[g.gid])
    mu, sw = g.wmean(w)
    se = np.sqrt(1.0 / sw)
    alpha = 1 - level
    with np.errstate(divide="ignore", invalid="ignore"):
        if ci == "hksj":
            # Hartung & Knapp (2001) / Sidik & Jonkman (2002): weighted residual variance, t on k - 1 df;
            # no truncation of the scaling factor at 1 (metafor's test="knha").
            df = k - 1
            r = g.y - mu[g.gid]
            se = np.sqrt(g.sum(w * r * r) / (df * sw))
            crit = stdtrit(df, 1 - alpha / 2)
            stat = mu / se
            p = 2 * stdtr(df, -np.abs(stat))
        else:
            df = None
            crit = ndtri(1 - alpha / 2)
            stat = mu / se
            p = 2 * ndtr(-np.abs(stat))
        if q is None:
            q = q_stat(g)
        q_df = k - 1
        q_p = np.where(q_df > 0, chdtrc(np.maximum(q_df, 1), q), np.nan)
        # I^2 = (Q - df) / Q truncated at 0 (Higgins & Thompson 2002; Cochrane Handbook 10.10.2), percent;
        # H^2 = Q / df, the matching definition (metafor derives both from tau^2 instead).
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):  # a tiny Q gives -inf, then 0
            i2 = np.where(q > 0, 100 * np.maximum(0.0, (q - q_df) / q), 0.0)
        h2 = np.where(q_df > 0, q / q_df, np.nan)
        # Prediction interval: t on k - 2 df (Higgins, Thompson & Spiegelhalter 2009) or the normal
        # quantile (metafor's predict default); both use the mean's SE from the chosen CI method.
        if pi == "t":
            pcrit = np.where(k >= 3, stdtrit(np.maximum(k - 2, 1), 1 - alpha / 2), np.nan)
        else:
            pcrit = ndtri(1 - alpha / 2)
        half_pi = pcrit * np.sqrt(se**2 + tau2)
    if tau2_ci and g.G:
        t_lo, t_hi = qprofile_ci(g, level)
    else:
        t_lo = t_hi = np.full(g.G, np.nan)
    return CoreFit(k=k, estimate=mu, se=se, ci_low=mu - crit * se, ci_high=mu + crit * se, stat=stat,
                   p=p, df=df, tau2=tau2, tau2_ci_low=t_lo, tau2_ci_high=t_hi, q=q, q_df=q_df, q_p=q_p,
                   i2=i2, h2=h2, pi_low=mu - half_pi, pi_high=mu + half_pi,
                   weights=100 * w / sw[g.gid])
