"""Tail probabilities and quantiles of the normal, t and chi-square distributions, vectorised.

Used by the fits; kept apart so the command line imports SciPy only where it is needed.
"""

from __future__ import annotations

import numpy as np


def _per_df(fn, df, p):
    """``fn(df, p)`` for a scalar ``p``, evaluated once per distinct df: quantiles are iterative
    and slow, and a --by run has thousands of groups but few distinct study counts."""
    df = np.asarray(df, float)
    if df.ndim == 0 or df.size < 32:
        return fn(df, p)
    u, inv = np.unique(df, return_inverse=True)
    return fn(u, p)[inv.reshape(df.shape)]


def norm_sf(x):
    """P(Z > x)."""
    from scipy.special import ndtr

    return ndtr(-np.asarray(x, float))


def norm_isf(p):
    """x with P(Z > x) = p."""
    from scipy.special import ndtri

    return -ndtri(np.asarray(p, float))


def t_sf(df, x):
    from scipy.special import stdtr

    return stdtr(df, -np.asarray(x, float))


def t_isf(df, p):
    from scipy.special import stdtrit

    return _per_df(lambda d, q: stdtrit(d, 1 - q), df, p)


def chi2_sf(df, x):
    from scipy.special import chdtrc

    return chdtrc(df, x)


def chi2_isf(df, p):
    from scipy.special import chdtri

    return _per_df(chdtri, df, p)
