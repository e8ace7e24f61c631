"""Tail probabilities and quantiles of the normal, t and chi-square distributions, vectorised.

SciPy's import takes half a second or more (``scipy.special`` pulls in its array-API layer), longer
than a whole 13-study fit, so what a default fit needs is computed here without it:

- normal: ``math.erfc`` and ``statistics.NormalDist`` (Wichura's AS241, full double precision);
- chi-square with a whole number of degrees of freedom up to ``SERIES_DF``: the finite series of
  Abramowitz & Stegun 26.4.4-26.4.5, summed term by term in log space (no overflow), and its quantile
  by Newton's method on the smaller tail;
- t with a whole number of df up to ``SERIES_DF``: A&S 26.7.3-26.7.4 (closed forms in
  theta = atan(t / sqrt(df))), the far tail as the remainder of the series, and quantiles by
  Newton's method.

Anything else (fractional or large df) uses SciPy, imported only then. tests/engine/test_dist.py holds
these against SciPy.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

SERIES_DF = 400  # above this the series get long; large df mean a large fit, where SciPy's import is noise
# t tails: the remainder series converges like c^2 = df / (df + t^2), slowly for many df near t ~ 1
T_SERIES_DF = 30
_SQRT2 = math.sqrt(2.0)
_erfc = np.frompyfunc(math.erfc, 1, 1)
_lgamma = np.frompyfunc(math.lgamma, 1, 1)


_preload = None


def preload_scipy() -> None:
    """Start importing ``scipy.special`` in a background thread (once). A fit of thousands of studies
    needs it for its chi-square quantiles (more than SERIES_DF df), and the import (0.2-0.4 s) then
    overlaps the likelihood scan, whose NumPy loops release the GIL. Importing changes no number."""
    global _preload
    if _preload is None:
        import threading

        def load() -> None:
            try:
                import scipy.special  # noqa: F401
            except Exception:  # noqa: BLE001 - the caller's own import raises it where it is needed
                pass

        _preload = threading.Thread(target=load, name="hatmeta-scipy-import", daemon=True)
        _preload.start()


def _f(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=float)


def _whole(df):
    df = _f(df)
    return bool(np.all((df == np.floor(df)) & (df >= 1) & (df <= SERIES_DF)))


def _per_df(fn, df, p):
    """``fn(df, p)`` for a scalar ``p``, evaluated once per distinct df: quantiles are iterative, and a
    --by run has thousands of groups but few distinct study counts."""
    df = _f(df)
    if df.ndim == 0 or df.size < 32:
        return fn(df, p)
    u, inv = np.unique(df, return_inverse=True)
    return fn(u, p)[inv.reshape(df.shape)]


# ---------------------------------------------------------------- normal

def norm_sf(x: ArrayLike) -> Any:
    """P(Z > x), elementwise (a scalar gives a NumPy float)."""
    x = _f(x)
    if not x.ndim:  # frompyfunc on a 0-d array returns a Python float, which has no astype
        return np.float64(0.5 * math.erfc(float(x) / _SQRT2))
    # an n-d x here: frompyfunc gives an object array (mypy sees float | Any)
    return (0.5 * _erfc(x / _SQRT2)).astype(float)  # type: ignore[union-attr]


def norm_cdf(x: ArrayLike) -> Any:
    """P(Z <= x), elementwise (a 0-d input gives a Python float)."""
    x = np.asarray(x, float)
    if not x.ndim:
        return 0.5 * math.erfc(-float(x) / _SQRT2)
    # an n-d x here: frompyfunc gives an object array (mypy sees float | Any)
    return 0.5 * _erfc(-x / _SQRT2).astype(float)  # type: ignore[union-attr]


def norm_ppf(p: float) -> float:
    """x with P(Z <= x) = p, for a scalar p in (0, 1) (Wichura's AS241 through statistics.NormalDist)."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(float(p))


def norm_isf(p: ArrayLike) -> Any:
    """x with P(Z > x) = p (a NumPy float for a scalar ``p``, an array for an array)."""
    from statistics import NormalDist

    p = _f(p)
    inv = NormalDist().inv_cdf
    return np.vectorize(lambda q: -inv(q), otypes=[float])(p) if p.ndim else np.float64(-inv(float(p)))


# ---------------------------------------------------------------- chi-square

def _chi2_sf_series(df, x):
    """Upper tail of chi-square (whole df) by A&S 26.4.5 (even df) and 26.4.4 (odd df), vectorised:
    one pass over the groups per term, each term formed in log space (no overflow for large x)."""
    df, x = np.broadcast_arrays(_f(df), _f(x))
    shape = df.shape
    df, x = df.ravel().astype(np.int64), x.ravel()
    out = np.full(x.shape, np.nan)
    out[x <= 0] = 1.0
    out[x == np.inf] = 0.0
    live = (x > 0) & (x < np.inf)
    if live.any():
        d, xx = df[live], x[live]
        h = 0.5 * xx
        lh, lx = np.log(h), np.log(xx)
        odd = d % 2 == 1
        # even df: Q = exp(-x/2) sum_{i < df/2} (x/2)^i / i!
        # odd df:  Q = erfc(sqrt(x/2)) + sqrt(2/pi) exp(-x/2) sum_{i=1}^{(df-1)/2} x^(i-1/2) / (1 3 ... (2i-1))
        total = np.zeros(len(d))
        if odd.any():
            total[odd] = _erfc(np.sqrt(h[odd])).astype(float)
        c = 0.5 * math.log(2 / math.pi) - h
        for i in range(int(d.max()) // 2 + 1):
            even_term = (~odd) & (i < d // 2)
            if even_term.any():
                total[even_term] += np.exp(-h[even_term] + i * lh[even_term] - math.lgamma(i + 1))
            if i >= 1:
                odd_term = odd & (i <= (d - 1) // 2)
                if odd_term.any():
                    log_odd = math.lgamma(2 * i + 1) - i * math.log(2) - math.lgamma(i + 1)  # log(1 3 ... (2i-1))
                    total[odd_term] += np.exp(c[odd_term] + (i - 0.5) * lx[odd_term] - log_odd)
        out[live] = total
    return out.reshape(shape)


def _chi2_sf_one(df, x):
    return float(_chi2_sf_series(df, x))


def _chi2_logpdf(df, x):
    k = 0.5 * df
    return (k - 1) * math.log(x) - 0.5 * x - k * math.log(2) - math.lgamma(k)


def chi2_sf(df: ArrayLike, x: ArrayLike) -> Any:
    """P(X > x) for X ~ chi-square(df)."""
    if _whole(df):
        return _chi2_sf_series(df, x)
    from scipy.special import chdtrc

    return chdtrc(df, x)


def _chi2_isf_one(df, p):
    """x with P(X > x) = p: Newton's method on the smaller tail, from the Wilson-Hilferty start."""
    if not 0 < p < 1:
        return math.inf if p == 0 else (0.0 if p == 1 else float("nan"))
    from statistics import NormalDist

    z = -NormalDist().inv_cdf(p)
    a = 2.0 / (9.0 * df)
    x = max(df * (1 - a + z * math.sqrt(a)) ** 3, 1e-8)
    upper = p < 0.5  # solve sf(x) = p, or cdf(x) = 1 - p: the tail that is small keeps its digits
    for _ in range(100):
        sf = _chi2_sf_one(df, x)
        f = (sf - p) if upper else ((1 - sf) - (1 - p))
        dens = math.exp(_chi2_logpdf(df, x))
        step = f / dens if upper else -f / dens
        new = x + step
        if new <= 0:
            new = 0.5 * x
        if abs(new - x) <= 1e-15 * x:
            return new
        x = new
    return x


def chi2_isf(df: ArrayLike, p: ArrayLike) -> Any:
    """x with P(X > x) = p for X ~ chi-square(df)."""
    if _whole(df):
        return _per_df(lambda d, q: _map(lambda a: _chi2_isf_one(int(a), float(q)), d), df, p)
    from scipy.special import chdtri

    return _per_df(chdtri, df, p)


def _map(fn, d):
    d = _f(d)
    if d.ndim == 0:
        return np.float64(fn(float(d)))
    return np.array([fn(a) for a in d.ravel()]).reshape(d.shape)


# ---------------------------------------------------------------- t

def t_sf(df: ArrayLike, x: ArrayLike) -> Any:
    """P(T > x) for T ~ t(df)."""
    if _whole(df) and np.all(_f(df) <= T_SERIES_DF):
        return _t_sf_series(df, x)
    from scipy.special import stdtr

    return stdtr(df, -_f(x))


def _t_sf_series(df, x):
    """P(T > x), whole df, vectorised, without cancellation in either tail.

    With theta = atan(|x| / sqrt(df)), c = cos(theta), s = sin(theta), A&S 26.7.3-26.7.4 write
    P(|T| < |x|) as finite sums in c^2. Their full series sum to 1 (even df: s sum_j a_j c^2j = 1;
    odd df: theta + s c sum_j b_j c^2j = pi/2), so the tail P(|T| > |x|) is the rest of the series,
    a sum of positive terms: summed directly where c^2 <= 3/4 (|x| large, where 1 - A would cancel),
    otherwise 1 - A from the finite sum, unless that leaves less than 1/4 (then the remainder series).
    a_j = (2j-1)!!/(2j)!!, b_j = (2j)!!/(2j+1)!!."""
    df, x = np.broadcast_arrays(_f(df), _f(x))
    shape = df.shape
    d, xx = df.ravel().astype(np.int64), x.ravel()
    t = np.abs(xx)
    out = np.full(t.shape, np.nan)
    ok = np.isfinite(t)
    out[np.isinf(t)] = 0.0
    two_tail = np.full(t.shape, np.nan)  # P(|T| > |x|)
    if ok.any():
        dd, tt = d[ok].astype(float), t[ok]
        r = dd + tt * tt
        c2 = dd / r
        s = tt / np.sqrt(r)
        c = np.sqrt(c2)
        odd = d[ok] % 2 == 1
        m = np.where(odd, (d[ok] - 1) // 2, d[ok] // 2)  # first index of the tail
        tail = c2 <= 0.75
        res = np.empty(len(dd))
        # Direct: 1 - A with the finite sum over j < m.
        direct = ~tail
        if direct.any():
            # (the finite sum is computed for every element; only the direct ones are kept)
            total = np.zeros(len(dd))
            term = np.ones(len(dd))
            for j in range(int(m[direct].max()) if direct.any() else 0):
                live = direct & (j < m)
                total[live] += term[live]
                ratio = np.where(odd, (2 * j + 2) / (2 * j + 3), (2 * j + 1) / (2 * j + 2))
                term *= ratio * c2
            theta = np.arctan2(tt, np.sqrt(dd))
            a = np.where(odd, 2 / math.pi * (theta + s * c * total), s * total)
            res[direct] = (1 - a)[direct]
            tail |= direct & (res < 0.25)  # 1 - A would have lost digits: sum the remainder instead
        if tail.any():
            mi = m[tail]
            oi = odd[tail]
            ci2 = c2[tail]
            # First tail term a_m c^2m or b_m c^2m, in logs.
            log_first = np.where(
                oi, mi * math.log(4) + 2 * _lgamma(mi + 1.0).astype(float) - _lgamma(2 * mi + 2.0).astype(float),
                _lgamma(mi + 0.5).astype(float) - _lgamma(mi + 1.0).astype(float) - 0.5 * math.log(math.pi))
            with np.errstate(divide="ignore"):
                log_first = log_first + mi * np.log(ci2)
            term = np.exp(log_first)
            total = np.zeros(len(mi))
            j = mi.astype(float)
            for _ in range(2000):
                total += term
                ratio = np.where(oi, (2 * j + 2) / (2 * j + 3), (2 * j + 1) / (2 * j + 2))
                term = term * ratio * ci2
                j += 1
                if not np.any(term > 1e-17 * total):
                    break
            pref = np.where(oi, 2 / math.pi * s[tail] * c[tail], s[tail])
            res[tail] = pref * total
        two_tail[ok] = res
        out[ok] = np.where(xx[ok] >= 0, 0.5 * res, 1 - 0.5 * res)
    return out.reshape(shape)


def _t_central(df, t):
    """P(|T| < t), t >= 0, whole df: A&S 26.7.3 (odd) and 26.7.4 (even), and its derivative in t."""
    theta = math.atan(t / math.sqrt(df))
    s, c = math.sin(theta), math.cos(theta)
    c2 = c * c
    if df % 2 == 1:
        term, total = 1.0, 1.0
        for j in range(1, (df - 3) // 2 + 1):  # 1 + 2/3 c^2 + (2 4)/(3 5) c^4 + ...
            term *= (2 * j) / (2 * j + 1) * c2
            total += term
        a = 2 / math.pi * (theta + (s * c * total if df > 1 else 0.0))
    else:
        term, total = 1.0, 1.0
        for j in range(1, (df - 2) // 2 + 1):  # 1 + 1/2 c^2 + (1 3)/(2 4) c^4 + ...
            term *= (2 * j - 1) / (2 * j) * c2
            total += term
        a = s * total
    logpdf = (math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
              - (df + 1) / 2 * math.log1p(t * t / df))
    return a, 2 * math.exp(logpdf)


def _t_isf_one(df, p):
    """t with P(T > t) = p (p < 1/2 here; the other half by symmetry): Newton on P(|T| < t) = 1 - 2p."""
    if not 0 < p < 1:
        return math.inf if p == 0 else (-math.inf if p == 1 else float("nan"))
    if p > 0.5:
        return -_t_isf_one(df, 1 - p)
    if p == 0.5:
        return 0.0
    from statistics import NormalDist

    target = 1 - 2 * p
    t = -NormalDist().inv_cdf(p)
    for _ in range(200):
        a, dens = _t_central(df, t)
        new = t - (a - target) / dens
        if new <= 0:
            new = 0.5 * t
        if abs(new - t) <= 1e-15 * t:
            return new
        t = new
    return t


def t_isf(df: ArrayLike, p: ArrayLike) -> Any:
    """t with P(T > t) = p for T ~ t(df)."""
    if _whole(df):
        return _per_df(lambda d, q: _map(lambda a: _t_isf_one(int(a), float(q)), d), df, p)
    from scipy.special import stdtrit

    return _per_df(lambda d, q: stdtrit(d, 1 - q), df, p)
