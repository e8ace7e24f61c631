"""Mixed-effects meta-regression (metafor's ``rma(yi, vi, mods = ~ ...)``), REML by default.

Only k x p matrices are formed (p = number of coefficients), never k x k, so large k stays cheap.
"""

from __future__ import annotations

import numpy as np

from . import core
from .effects import EffectSizes
from ..errors import InputError
from ..results import Coefficient, MetaRegression


def design_matrix(es: EffectSizes, moderators) -> tuple[np.ndarray, list[str]]:
    """Intercept plus one column per numeric moderator, or dummies (first sorted level as reference)
    for a moderator whose values are not all numbers (as R's factor coding)."""
    cols, names = [np.ones(es.k)], ["intrcpt"]
    for mod in moderators:
        values = es.table.column(mod)
        try:
            cols.append(np.array([float(x) for x in values]))
            names.append(mod)
        except ValueError:
            levels = sorted(set(values))
            for lev in levels[1:]:
                cols.append(np.array([1.0 if x == lev else 0.0 for x in values]))
                names.append(f"{mod}{lev}")
    X = np.column_stack(cols)
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise InputError("moderators are collinear (or constant): the model cannot be fitted",
                         file=es.table.path, column=",".join(moderators))
    if es.k <= X.shape[1]:
        raise InputError(f"meta-regression with {X.shape[1]} coefficients needs more than {X.shape[1]} "
                         f"studies, found {es.k}", file=es.table.path)
    return X, names


def _wls(X, y, w):
    """Weighted least squares: coefficients, inverse of X'WX, residuals."""
    xtw = X.T * w
    A_inv = np.linalg.inv(xtw @ X)
    beta = A_inv @ (xtw @ y)
    return beta, A_inv, y - X @ beta


def _reml_score(X, y, v, tau2):
    """REML score and expected information for tau^2 (Viechtbauer 2005; Raudenbush 2009), using
    tr(P) = sum w - tr(A^-1 X'W^2X) and tr(PP) without forming the k x k matrix P."""
    w = 1 / (v + tau2)
    beta, A_inv, r = _wls(X, y, w)
    B = (X.T * w**2) @ X
    C = (X.T * w**3) @ X
    AB = A_inv @ B
    tr_p = w.sum() - np.trace(AB)
    tr_pp = (w**2).sum() - 2 * np.trace(A_inv @ C) + np.trace(AB @ AB)
    return np.sum(w**2 * r**2) - tr_p, -tr_pp


def tau2_reml(X, y, v):
    f0, _ = _reml_score(X, y, v, 0.0)
    if f0 <= 0:
        return 0.0
    hi = max(np.var(y), np.mean(v)) + 1e-12
    while _reml_score(X, y, v, hi)[0] > 0:
        hi *= 4
    fun = lambda t: tuple(np.atleast_1d(a) for a in _reml_score(X, y, v, float(t[0])))  # noqa: E731
    root, _ = core.solve_decreasing(fun, 1, np.zeros(1), np.array([hi]), np.array([hi / 2]))
    return float(root[0])


def meta_regression(es: EffectSizes, moderators, ci="wald", level=0.95) -> MetaRegression:
    """REML meta-regression: Wald z tests and a chi-square omnibus QM, or with ``ci="hksj"`` the
    Knapp-Hartung adjustment (covariance times the weighted residual variance, t on k - p df, QM as
    an F on (m, k - p) df; metafor's test="knha"). QE is the residual heterogeneity (FE weights);
    pseudo-R^2 = (tau2_RE - tau2_ME) / tau2_RE truncated at 0, in percent (Raudenbush 2009)."""
    from scipy.special import chdtrc, fdtrc, ndtr, ndtri, stdtr, stdtrit

    X, names = design_matrix(es, moderators)
    y, v = es.yi, es.vi
    k, p_ = X.shape
    tau2 = tau2_reml(X, y, v)
    w = 1 / (v + tau2)
    beta, cov, resid = _wls(X, y, w)
    b1 = beta[1:]
    m = len(b1)
    if ci == "hksj":
        s2w = float(np.sum(w * resid**2)) / (k - p_)
        cov = s2w * cov
        df = k - p_
        se = np.sqrt(np.diag(cov))
        stat = beta / se
        p = 2 * stdtr(df, -np.abs(stat))
        crit = stdtrit(df, 0.5 + level / 2)
        qm = float(b1 @ np.linalg.solve(cov[1:, 1:], b1)) / m
        qm_df, qm_p, test = [m, df], float(fdtrc(m, df, qm)), "t"
    else:
        df = None
        se = np.sqrt(np.diag(cov))
        stat = beta / se
        p = 2 * ndtr(-np.abs(stat))
        crit = ndtri(0.5 + level / 2)
        qm = float(b1 @ np.linalg.solve(cov[1:, 1:], b1))
        qm_df, qm_p, test = m, float(chdtrc(m, qm)), "z"
    coefs = tuple(Coefficient(name=n, estimate=float(b), se=float(s), stat=float(t), p=float(pp),
                              ci_low=float(b - crit * s), ci_high=float(b + crit * s), test=test)
                  for n, b, s, t, pp in zip(names, beta, se, stat, p))
    _, _, r0 = _wls(X, y, 1 / v)
    qe = float(np.sum(r0**2 / v))
    qe_df = k - p_
    tau2_re = float(core.estimate_tau2(core.Groups.single(y, v), "REML")[0])
    r2 = 0.0 if tau2_re == 0 else max(0.0, 100 * (tau2_re - tau2) / tau2_re)
    return MetaRegression(coefficients=coefs, tau2=tau2, qm=qm, qm_df=qm_df, qm_p=qm_p,
                          qe=qe, qe_df=qe_df, qe_p=float(chdtrc(qe_df, qe)), r2=r2, test=test, df=df)
