"""Mixed-effects meta-regression (metafor's ``rma(yi, vi, mods = ~ ...)``) with every tau^2 estimator.

``method``: FE (tau^2 = 0), DL, HE, SJ, PM, EB, ML or REML (default), each with moderators as
metafor 3.8's rma.uni defines it (formulas in tests/fixtures/metafor/NOTES.md). Only k x p matrices
are formed (p = number of coefficients), never k x k, so large k stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InputError
from ..results import Coefficient, MetaRegression
from . import core
from .effects import EffectSizes

METAREG_METHODS = ("FE",) + core.TAU2_METHODS


def design_matrix(es: EffectSizes, moderators: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Intercept plus one column per numeric moderator, or dummies (first sorted level as reference)
    for a moderator whose values are not all numbers (as R's factor coding); "a:b" is the product of
    two numeric columns (an interaction)."""
    cols, names = [np.ones(es.k)], ["intrcpt"]
    for mod in moderators:
        if ":" in mod and mod.strip().lower() not in es.table.all_columns():
            # "a:b" is the product of numeric columns a and b (R's interaction term for covariates).
            parts = [p.strip() for p in mod.split(":")]
            try:
                cols.append(np.prod([[float(x) for x in es.table.column(p)] for p in parts], axis=0))
            except ValueError:
                raise InputError("an interaction a:b needs numeric columns", file=es.table.path,
                                 column=mod) from None
            names.append(mod)
            continue
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


def _complete_moderators(es: EffectSizes, moderators):
    """Studies with a missing moderator value (empty, NA) are left out of the meta-regression and
    named, as metafor leaves them out (with a warning) of a model with moderators."""
    from ..io.trial_table import MISSING

    missing = np.zeros(es.k, dtype=bool)
    columns = [p.strip() for mod in moderators for p in
               (mod.split(":") if ":" in mod and mod.strip().lower() not in es.table.all_columns() else [mod])]
    for mod in columns:
        missing |= np.array([str(x).strip().lower() in MISSING for x in es.table.column(mod)], dtype=bool)
    if not missing.any():
        return es, ()
    gone = [s for s, m in zip(es.studies, missing) if m]
    note = (f"meta-regression without {len(gone)} stud{'y' if len(gone) == 1 else 'ies'} with a missing "
            f"moderator value: {', '.join(gone)}",)
    return es.subset(np.flatnonzero(~missing)), note


def _wls(X, y, w):
    """Weighted least squares: coefficients, inverse of X'WX, residuals."""
    xtw = X.T * w
    A_inv = np.linalg.inv(xtw @ X)
    beta = A_inv @ (xtw @ y)
    return beta, A_inv, y - X @ beta


def _tr_p(X, w, A_inv):
    """tr(P) with P = W - W X (X'WX)^-1 X'W, without forming P: sum w - tr(A^-1 X'W^2X)."""
    return w.sum() - np.trace(A_inv @ ((X.T * w**2) @ X))


def _rss(X, y, v, tau2):
    """Generalised residual Q, Y'P(tau2)Y = sum w r^2 with w = 1 / (v + tau2)."""
    w = 1 / (v + tau2)
    _, _, r = _wls(X, y, w)
    return float(np.sum(w * r**2))


def _score(X, y, v, tau2, method):
    """(Restricted) likelihood score in tau^2, times 2: Y'PPY - tr(P) (REML) or - sum w (ML)
    (Viechtbauer 2005; Raudenbush 2009). Y'PPY = sum (w r)^2 because P y = W r."""
    w = 1 / (v + tau2)
    _, A_inv, r = _wls(X, y, w)
    ypppy = float(np.sum((w * r) ** 2))
    return ypppy - (_tr_p(X, w, A_inv) if method == "REML" else w.sum())


def _loglik(X, y, v, tau2, method):
    """(Restricted) log-likelihood up to a constant: ML -1/2 (sum log(v + tau2) + Y'PY);
    REML adds -1/2 log det(X'WX)."""
    w = 1 / (v + tau2)
    _, A_inv, r = _wls(X, y, w)
    ll = -0.5 * (np.sum(np.log(v + tau2)) + np.sum(w * r**2))
    if method == "REML":
        ll += 0.5 * np.linalg.slogdet(A_inv)[1]
    return float(ll)


def _upper(fun, X, y, v):
    """A tau^2 beyond which ``fun`` (a decreasing estimating function) is negative."""
    hi = max(float(np.var(y)), float(np.mean(v))) + 1e-12
    for _ in range(200):
        if fun(hi) < 0:
            return hi
        hi *= 4
    raise InputError("tau^2 could not be bracketed (the estimating equation stays positive)")


def _root(fun, lo, hi):
    from scipy.optimize import brentq

    return float(brentq(fun, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=1000))


def tau2_metareg(X: np.ndarray, y: np.ndarray, v: np.ndarray, method: str = "REML") -> float:
    """tau^2 of a meta-regression with design ``X`` (k x p), as metafor 3.8's rma.uni, truncated at 0.

    FE: 0. DL: (QE - (k - p)) / tr(P) with FE weights. HE: (RSS_OLS - tr(P_OLS V)) / (k - p).
    SJ: tau0 = mean((y - ybar)^2) (moderators ignored, as metafor), then tau0 Y'P(tau0)Y / (k - p).
    PM and EB: the root of Y'P(tau2)Y = k - p (EB's iteration has the same fixed point: NOTES.md).
    ML and REML: the highest (restricted) likelihood over tau^2 >= 0: the score's roots are bracketed
    on a grid and polished, and the boundary 0 wins only if its likelihood is highest (metafor's
    Fisher scoring can stop at a lower local maximum; see the nonconvergence fixture).
    """
    method = method.upper()
    k, p = X.shape
    y, v = np.asarray(y, float), np.asarray(v, float)
    if method == "FE":
        return 0.0
    if method == "DL":
        w = 1 / v
        _, A_inv, r = _wls(X, y, w)
        return max(0.0, (float(np.sum(w * r**2)) - (k - p)) / _tr_p(X, w, A_inv))
    if method == "HE":
        _, xtx_inv, r = _wls(X, y, np.ones(k))
        tr_pv = v.sum() - np.trace(xtx_inv @ ((X.T * v) @ X))
        return max(0.0, (float(np.sum(r**2)) - tr_pv) / (k - p))
    if method == "SJ":
        tau0 = float(np.mean((y - y.mean()) ** 2))
        if tau0 == 0:
            return 0.0
        return max(0.0, tau0 * _rss(X, y, v, tau0) / (k - p))
    if method in ("PM", "EB"):
        fun = lambda t: _rss(X, y, v, t) - (k - p)  # noqa: E731
        if fun(0.0) <= 0:
            return 0.0
        return _root(fun, 0.0, _upper(fun, X, y, v))
    if method not in ("ML", "REML"):
        raise InputError(f"unknown method {method!r} for meta-regression", column="--method")
    fun = lambda t: _score(X, y, v, t, method)  # noqa: E731
    hi = _upper(fun, X, y, v)
    grid = np.concatenate([[0.0], np.geomspace(1e-8, 1.0, 80)]) * hi
    f = np.array([fun(t) for t in grid])
    candidates = [0.0] if f[0] <= 0 else []
    for j in np.flatnonzero((f[:-1] > 0) & (f[1:] <= 0)):
        candidates.append(grid[j + 1] if f[j + 1] == 0 else _root(fun, grid[j], grid[j + 1]))
    return max(candidates, key=lambda t: _loglik(X, y, v, t, method))


def meta_regression(es: EffectSizes, moderators: Sequence[str], ci: str = "wald", level: float = 0.95,
                    method: str = "REML") -> MetaRegression:
    """Meta-regression with tau^2 from ``method`` (FE, DL, HE, SJ, PM, EB, ML, REML): Wald z tests and
    a chi-square omnibus QM, or with ``ci="hksj"`` the Knapp-Hartung adjustment (covariance times the
    weighted residual variance, t on k - p df, QM as an F on (m, k - p) df; metafor's test="knha").
    QE is the residual heterogeneity (FE weights); pseudo-R^2 = (tau2_RE - tau2_ME) / tau2_RE truncated
    at 0, in percent, with tau2_RE from the same estimator without moderators (Raudenbush 2009; metafor);
    for FE the adjusted R^2 of the weighted least-squares fit (metafor 3.8)."""
    from scipy.special import chdtrc, fdtrc, ndtr, ndtri, stdtr, stdtrit

    method = str(method).upper()
    if method not in METAREG_METHODS:
        raise InputError(f"meta-regression fits inverse-variance models ({', '.join(METAREG_METHODS)}); "
                         f"method {method} cannot take moderators", column="--method")
    es, notes = _complete_moderators(es, moderators)
    X, names = design_matrix(es, moderators)
    y, v = es.yi, es.vi
    k, p_ = X.shape
    tau2 = tau2_metareg(X, y, v, method)
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
        qm_df: int | list[int]
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
    if method == "FE":
        # metafor 3.8 for FE models: the adjusted R^2 of the weighted least-squares fit (weights 1/v),
        # 1 - (QE / (k - p)) / (Q / (k - 1)), truncated at 0, in percent.
        q0 = float(core.q_stat(core.Groups.single(y, v))[0])
        r2 = 0.0 if q0 == 0 else max(0.0, 100 * (1 - (qe / qe_df) / (q0 / (k - 1))))
    else:
        tau2_re = float(core.estimate_tau2(core.Groups.single(y, v), method)[0])
        r2 = 0.0 if tau2_re == 0 else max(0.0, 100 * (tau2_re - tau2) / tau2_re)
    return MetaRegression(coefficients=coefs, tau2=tau2, qm=qm, qm_df=qm_df, qm_p=qm_p,
                          qe=qe, qe_df=qe_df, qe_p=float(chdtrc(qe_df, qe)), r2=r2, test=test, df=df,
                          method=method, level=level, notes=notes)
