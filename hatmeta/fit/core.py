"""Vectorised random-effects fits: many meta-analyses at once, each a group of rows.

Every function takes a ``Groups`` (flat arrays ``y`` (effects, analysis scale), ``v`` (sampling
variances) and ``gid`` (group index 0..G-1 of each row)) and returns one value per group. A single
meta-analysis is the case G = 1, so single fits, leave-one-out, cumulative, subgroup and ``--by``
runs share one implementation.

Layout: the rows are laid out once as dense blocks, one column per group (shape studies x groups),
groups of one size class per block, padded with zero-weight rows where sizes differ. A sum per
group is then a column sum and a per-group value reaches its rows by broadcasting, with no
``np.bincount`` or gather per operation (10x cheaper at 10^5 groups); a single group is one column,
so its sums are plain sums. Cost stays linear in the number of rows, and no k x k matrix is formed.

Iterative tau^2 estimators (REML, ML, PM, EB) are solved by a bracketed Newton iteration that falls
back to bisection whenever a step leaves the bracket, with the tau^2 = 0 boundary checked first, so
every dataset gets an answer (metafor's plain Fisher scoring can fail). Only the groups not yet
converged are iterated: the working set shrinks as groups converge. Written by hand because no
library solves thousands of such equations at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..vocabulary import COMMON_EFFECT_METHODS

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

TAU2_METHODS = ("DL", "REML", "ML", "PM", "HE", "SJ", "EB")
TOL = 1e-12  # relative tolerance on tau^2 (metafor's default threshold is 1e-5; we go further)
MAXITER = 500


def gsum(x: ArrayLike, gid: np.ndarray, G: int) -> np.ndarray:
    """Sum of ``x`` within each group (flat rows)."""
    return np.bincount(gid, weights=x, minlength=G)


class _Block:
    """Groups of one size class as dense (studies x groups) arrays.

    ``Y`` and ``V`` are padded with 0 and 1; ``M`` (None when no group is padded) is 1 on real rows
    and 0 on padding, so every weight 1 / (v + tau^2) is multiplied by it and padding adds nothing.
    ``cols`` are the groups' indices in the whole ``Groups``; ``rows`` the row index of every cell
    (None: the rows are ``Y`` flattened in order, the single-group case).
    """

    __slots__ = ("G", "M", "V", "Y", "cols", "k", "rows", "sumv")

    def __init__(self, Y, V, M, k, cols, rows, sumv=None) -> None:
        self.Y, self.V, self.M, self.k, self.cols, self.rows = Y, V, M, k, cols, rows
        self.G = Y.shape[1]
        self.sumv = (V if M is None else V * M).sum(0) if sumv is None else sumv

    def take(self, idx):
        """The block restricted to the groups at positions ``idx`` (for the working set of a solver)."""
        return _Block(self.Y[:, idx], self.V[:, idx], None if self.M is None else self.M[:, idx], self.k[idx],
                      None, None, self.sumv[idx])

    def w(self, tau2):
        w = 1.0 / (self.V + tau2)
        return w if self.M is None else w * self.M

    def wmean(self, w):
        """Weighted mean of y per group, and the sum of weights."""
        sw = w.sum(0)
        return (w * self.Y).sum(0) / sw, sw

    def masked(self, x):
        return x if self.M is None else x * self.M

    def scale(self):
        """Mean sampling variance: the size of a negligible tau^2."""
        return self.sumv / self.k


def _size_class(counts):
    """Block key per group: exact size up to 8 studies (no padding), then powers of two (padding < 2x)."""
    big = counts > 8
    key = counts.astype(np.int64)
    if big.any():
        key = np.where(big, 8 + np.ceil(np.log2(np.maximum(counts, 1))).astype(np.int64), key)
    return key


@dataclass(frozen=True, init=False)
class Groups:
    """Rows with their group index; ``k`` is the number of rows per group."""

    y: np.ndarray
    v: np.ndarray
    gid: np.ndarray
    G: int
    if TYPE_CHECKING:  # set in __init__, not a dataclass field
        _cache: dict[str, Any]

    def __init__(self, y: ArrayLike, v: ArrayLike, gid: ArrayLike, G: int) -> None:
        object.__setattr__(self, "y", np.asarray(y, float))
        object.__setattr__(self, "v", np.asarray(v, float))
        object.__setattr__(self, "gid", np.asarray(gid, dtype=np.intp))
        object.__setattr__(self, "G", int(G))
        object.__setattr__(self, "_cache", {})

    @classmethod
    def single(cls, y: ArrayLike, v: ArrayLike) -> Groups:
        y = np.asarray(y, float)
        return cls(y, np.asarray(v, float), np.zeros(len(y), dtype=np.intp), 1)

    @property
    def k(self) -> np.ndarray:
        if "k" not in self._cache:
            if self.G == 1:
                self._cache["k"] = np.array([float(len(self.y))])
            else:
                self._cache["k"] = np.bincount(self.gid, minlength=self.G).astype(float)
        return self._cache["k"]

    def sum(self, x: ArrayLike) -> np.ndarray:
        return gsum(x, self.gid, self.G)

    @property
    def blocks(self) -> list[_Block]:
        """The dense blocks (built once)."""
        if "blocks" not in self._cache:
            self._cache["blocks"] = self._build()
        return self._cache["blocks"]

    def _build(self):
        y, v, gid, G = self.y, self.v, self.gid, self.G
        n = len(y)
        if G == 1:
            return [_Block(y[:, None], v[:, None], None, np.array([float(n)]), np.zeros(1, dtype=np.intp), None)]
        counts = np.bincount(gid, minlength=G)
        in_order = n == 0 or bool(np.all(gid[1:] >= gid[:-1]))
        order = np.arange(n) if in_order else np.argsort(gid, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        key = _size_class(counts)
        keys = np.flatnonzero(np.bincount(key))  # the sorted distinct keys (np.unique imports numpy.ma: 16 ms)
        blocks = []
        for kk in keys:
            cols = np.flatnonzero(key == kk) if len(keys) > 1 else np.arange(G)
            c = counts[cols]
            kmax = int(c.max())
            if in_order and len(keys) == 1 and c.min() == kmax:
                # Every group the same size and the rows in group order: a reshape, no gather.
                rows = np.arange(n).reshape(G, kmax).T
                Y, V = np.ascontiguousarray(y.reshape(G, kmax).T), np.ascontiguousarray(v.reshape(G, kmax).T)
                blocks.append(_Block(Y, V, None, c.astype(float), cols, rows))
                continue
            pos = starts[cols][None, :] + np.arange(kmax)[:, None]
            if c.min() == kmax:
                rows = order[pos]
                blocks.append(_Block(y[rows], v[rows], None, c.astype(float), cols, rows))
                continue
            real = np.arange(kmax)[:, None] < c[None, :]
            rows = np.where(real, order[np.minimum(pos, n - 1)], -1)
            Y = np.where(real, y[np.maximum(rows, 0)], 0.0)
            V = np.where(real, v[np.maximum(rows, 0)], 1.0)
            blocks.append(_Block(Y, V, real.astype(float), c.astype(float), cols, rows))
        return blocks

    def per_group(self, fn: Callable[[_Block], np.ndarray]) -> np.ndarray:
        """Apply ``fn(block) -> array per group of the block`` to every block; one array over all groups."""
        blocks = self.blocks
        if len(blocks) == 1 and len(blocks[0].cols) == self.G:
            return fn(blocks[0])
        out = np.zeros(self.G)
        for b in blocks:
            out[b.cols] = fn(b)
        return out

    def wmean(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weighted mean of y per group, and the sum of weights (flat row weights)."""
        sw = self.sum(w)
        return self.sum(w * self.y) / sw, sw


def q_stat(g: Groups, tau2: ArrayLike | None = None) -> np.ndarray:
    """Generalised Q: sum of w (y - mu_w)^2 with w = 1 / (v + tau2); tau2 = 0 gives Cochran's Q."""
    if tau2 is None:
        return g.per_group(lambda b: _q(b, 0.0))
    tau2 = np.asarray(tau2, float)
    return g.per_group(lambda b: _q(b, tau2[b.cols]))


def _q(b: _Block, t):
    w = b.w(t)
    mu, _ = b.wmean(w)
    r = b.Y - mu
    return (w * r * r).sum(0)


# ---------------------------------------------------------------- closed-form estimators

def _dl(b: _Block):
    w = b.w(0.0)
    sw, sw2 = w.sum(0), (w * w).sum(0)
    return np.maximum(0.0, (_q(b, 0.0) - (b.k - 1)) / (sw - sw2 / sw))


def _he(b: _Block):
    k = b.k
    ybar = b.Y.sum(0) / k
    rss = b.masked((b.Y - ybar) ** 2).sum(0)
    return np.maximum(0.0, rss / (k - 1) - b.sumv / k)


def _sj(b: _Block):
    k = b.k
    ybar = b.Y.sum(0) / k
    tau0 = b.masked((b.Y - ybar) ** 2).sum(0) / k
    return tau0 * _q(b, tau0) / (k - 1)


def tau2_dl(g: Groups) -> np.ndarray:
    """DerSimonian & Laird (1986): (Q - (k-1)) / (sum w - sum w^2 / sum w), truncated at 0."""
    return g.per_group(_dl)


def tau2_he(g: Groups) -> np.ndarray:
    """Hedges (1983) / Hedges & Olkin (1985): unweighted, RSS/(k-1) - mean(v), truncated at 0."""
    return g.per_group(_he)


def tau2_sj(g: Groups) -> np.ndarray:
    """Sidik & Jonkman (2005): one re-weighting step from tau0^2 = sum (y - ybar)^2 / k.

    metafor 3.8 (rma.uni, method "SJ") starts from the same tau0^2 (the biased variance of y).
    """
    return g.per_group(_sj)


# ---------------------------------------------------------------- iterative estimators

def _score(b: _Block, method, tau2):
    """Estimating equation f(tau2) (positive below the root) and its slope, per group."""
    # Written into buffers already made, with the same operations in the same order as
    # w = b.w(tau2); mu, sw = b.wmean(w); r = b.Y - mu; (w2r * r).sum(0), ... (bit for bit).
    w = np.divide(1.0, b.V + tau2)
    if b.M is not None:
        w *= b.M
    sw = w.sum(0)
    tmp = np.multiply(w, b.Y)
    mu = tmp.sum(0) / sw
    r = np.subtract(b.Y, mu, out=tmp)
    w2 = w * w
    w2r = w2 * r
    tmp = np.multiply(w2r, r)
    w2rr = tmp.sum(0)
    if method in ("REML", "ML"):
        # Score of the (restricted) log-likelihood in tau^2, times 2 (Viechtbauer 2005, eqs. 7 and 9):
        # ML: sum w^2 r^2 - sum w; REML: sum w^2 r^2 - tr(P) with tr(P) = sum w - sum w^2 / sum w.
        # Exact slope (Newton rather than Fisher scoring, so convergence is quadratic): with dP/dtau2 = -PP,
        # d(y'PPy) = -2 y'P^3y, y'P^3y = sum w (w r)^2 - (sum w^2 r)^2 / sum w, and
        # d tr(P) = -tr(PP) (REML) or d sum w = -sum w^2 (ML).
        sw2 = w2.sum(0)
        np.multiply(w2r, w, out=tmp)
        tmp *= r
        ypppy = tmp.sum(0) - w2r.sum(0) ** 2 / sw
        if method == "ML":
            return w2rr - sw, -2 * ypppy + sw2
        sw3 = np.multiply(w2, w, out=tmp).sum(0)
        trpp = sw2 - 2 * sw3 / sw + (sw2 / sw) ** 2
        return w2rr - (sw - sw2 / sw), -2 * ypppy + trpp
    # PM (Paule & Mandel 1982) and EB (Morris 1983): generalised Q equals its expectation k - 1.
    # Viechtbauer et al. 2015 (Res Synth Methods 6:357) show EB and PM solve the same equation
    # (for models without moderators); exact slope of Q is -sum w^2 r^2.
    np.multiply(w, r, out=tmp)
    tmp *= r
    return tmp.sum(0) - (b.k - 1), -w2rr


def solve_decreasing(fun: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], G: int, lo: ArrayLike,
                     hi: ArrayLike, x0: ArrayLike | None = None, tol: float = TOL, maxiter: int = MAXITER,
                     scale: ArrayLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Root of a function decreasing through zero on [lo, hi] per group.

    ``fun(x) -> (f, slope)`` on all G groups; requires f(lo) > 0 > f(hi). Newton steps, bisection when
    a step leaves the current bracket; converged when a step is below ``tol * (|x| + scale)``, where
    ``scale`` (per group; e.g. the mean sampling variance) sets what counts as a negligible tau^2.
    Returns the roots and a boolean array of converged groups.
    """
    lo = np.array(lo, float)
    buf = 0.5 * (lo + np.asarray(hi, float)) if x0 is None else np.clip(x0, lo, hi)

    def on_subset(idx, x):
        if idx is None:
            buf[:] = x
            return fun(buf.copy())
        buf[idx] = x
        f, slope = fun(buf.copy())
        return f[idx], slope[idx]

    return _solve(on_subset, G, lo, hi, x0, tol, maxiter, scale)


def _solve(fun, G, lo, hi, x0=None, tol=TOL, maxiter=MAXITER, scale=None):
    """``solve_decreasing`` on a working set: ``fun(idx, x)`` evaluates the groups at positions
    ``idx`` (None: all) at ``x``; converged groups leave the working set."""
    lo, hi = np.array(lo, float), np.array(hi, float)
    x = 0.5 * (lo + hi) if x0 is None else np.clip(x0, lo, hi)
    floor = np.full(G, 1e-8) if scale is None else np.maximum(np.broadcast_to(scale, (G,)), 1e-300)
    done = np.zeros(G, dtype=bool)
    act = None  # positions of the working set (None: every group)
    xa, loa, hia, fla = x, lo, hi, floor
    f_prev = np.full(G, np.inf)
    slow = np.zeros(G, dtype=int)
    for _ in range(maxiter):
        f, slope = fun(act, xa)
        pos = f > 0
        loa = np.where(pos, xa, loa)
        hia = np.where(pos, hia, xa)
        # |f| not halving for three steps in a row means Newton is stalling (a non-convex
        # stretch of the equation, where it can cycle): bisect.
        slow = np.where(np.abs(f) > 0.5 * f_prev, slow + 1, 0)
        f_prev = np.abs(f)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(slope < 0, -f / slope, np.nan)
        newton = xa + step
        # A negligible Newton step (or an exact zero) is the answer, even where rounding puts it on
        # the bracket's edge; otherwise a step that leaves the bracket, or a stall, is replaced by bisection.
        tiny = (f == 0) | (np.isfinite(step) & (np.abs(step) <= tol * (np.abs(xa) + fla)))
        bad = ~np.isfinite(newton) | (newton <= loa) | (newton >= hia) | (slow >= 3)
        new = np.where(bad, 0.5 * (loa + hia), newton)
        new = np.where(tiny, np.where(f == 0, xa, newton), new)
        slow = np.where(slow >= 3, 0, slow)
        conv = tiny | ((hia - loa) <= tol * (hia + fla))
        xa = new
        if conv.any():
            # Write back the working set, then keep only the groups still iterating.
            if act is None:
                x, lo, hi = xa.copy(), loa.copy(), hia.copy()
                done = conv.copy()
            else:
                x[act], lo[act], hi[act] = xa, loa, hia
                done[act] = conv
            if conv.all():
                return x, done
            keep = ~conv
            act = np.flatnonzero(keep) if act is None else act[keep]
            xa, loa, hia, fla = xa[keep], loa[keep], hia[keep], fla[keep]
            f_prev, slow = f_prev[keep], slow[keep]
    if act is None:
        x = xa
    else:
        x[act] = xa
    return x, done


def _loglik(b: _Block, method, tau2):
    """(Restricted) log-likelihood in tau^2 per group, up to a constant (Viechtbauer 2005, eqs. 5-6)."""
    # The same operations, in the same order, as the plain expressions (bit for bit), writing into
    # buffers already made: at 10^6 studies a fresh 8 MB array per step cost a third of the call.
    vt = b.V + tau2
    w = np.divide(1.0, vt)
    logs = np.log(vt, out=vt)
    if b.M is not None:
        w *= b.M
        logs *= b.M
    sw = w.sum(0)
    t = np.multiply(w, b.Y)
    mu = t.sum(0) / sw
    r = np.subtract(b.Y, mu, out=t)
    wrr = np.multiply(w, r, out=w)
    wrr *= r
    ll = -0.5 * (logs.sum(0) + wrr.sum(0))
    return ll - 0.5 * np.log(sw) if method == "REML" else ll


def loglik(g: Groups, method: str, tau2: ArrayLike) -> np.ndarray:
    """(Restricted) log-likelihood in tau^2 per group, up to a constant (Viechtbauer 2005, eqs. 5-6)."""
    tau2 = np.asarray(tau2, float)
    return g.per_group(lambda b: _loglik(b, method, tau2[b.cols]))


# Coarse-to-fine search of the likelihood, relative to each group's upper bound: 17 points, then 6
# between the best coarse point's neighbours (finer there than the 49-point grid it replaces, at half
# the cost). An even number of fine intervals would put a fine point on the coarse one, a tie that
# would leave the bracket empty.
COARSE = np.concatenate([[0.0], np.geomspace(1e-7, 1.0, 16)])
FINE = 6


def _upper_bound(b: _Block, method, active, start):
    """A tau^2 per group beyond which the estimating equation stays negative."""
    ybar = b.Y.sum(0) / b.k
    scale = b.scale() + b.masked((b.Y - ybar) ** 2).sum(0) / b.k
    hi = np.maximum(2.0 * start, scale) + 1e-12
    grow = np.flatnonzero(active)
    for _ in range(200):
        if not len(grow):
            break
        sub = b if len(grow) == b.G else b.take(grow)
        fh, _ = _score(sub, method, hi[grow])
        grow = grow[fh > 0]
        hi[grow] *= 4.0
    return hi


def _fine_points(centre, n):
    """FINE points (relative to the upper bound) strictly between the coarse neighbours of ``centre``:
    geometric, or linear from the boundary 0."""
    left_c, right_c = COARSE[np.maximum(centre - 1, 0)], COARSE[np.minimum(centre + 1, n - 1)]
    frac = np.arange(1, FINE + 1) / (FINE + 1)
    geo = left_c > 0
    ratio = np.where(geo, right_c / np.where(geo, left_c, 1.0), 1.0)
    return np.where(geo, left_c * ratio ** frac[:, None], right_c * frac[:, None])


def _argmax0(a):
    """np.argmax(a, axis=0) for a few rows of many columns, as a running maximum: NumPy's argmax along
    the first axis of a C-ordered array is 10-20x slower than these few vector passes."""
    best = np.zeros(a.shape[1], dtype=np.intp)
    top = a[0].copy()
    for i in range(1, a.shape[0]):
        better = a[i] > top
        best[better] = i
        np.maximum(top, a[i], out=top)
    return best


def _sub(b, idx):
    return b if idx is None else b.take(idx)


def _tau2_iterative(b: _Block, method):
    G = b.G
    zero = np.zeros(G)
    f0, _ = _score(b, method, 0.0)
    start = np.maximum(_he(b), _dl(b))
    scale = b.scale()
    if method in ("PM", "EB"):
        active = np.flatnonzero(f0 > 0)  # Q(0) <= k - 1: tau^2 = 0
        if not len(active):
            return zero
        sub = _sub(b, None if len(active) == G else active)
        hi = _upper_bound(sub, method, np.ones(sub.G, dtype=bool), start[active])
        x0 = np.clip(start[active], 1e-12, hi)
        root, _ = _solve(lambda idx, t: _score(_sub(sub, idx), method, t), sub.G, np.zeros(sub.G), hi, x0,
                         scale=scale[active])
        out = zero.copy()
        out[active] = root
        return out
    hi = _upper_bound(b, method, np.ones(G, dtype=bool), start)
    cols = np.arange(G)
    # Coarse scan of the likelihood, then a finer one around its best local maximum and, where the
    # coarse scan shows another local maximum (a narrow peak can fall between coarse points), around
    # that one too.
    ll = np.array([_loglik(b, method, c * hi) for c in COARSE])
    n = len(COARSE)
    pad = np.full((1, G), -np.inf)
    ext = np.concatenate([pad, ll, pad])
    local = (ll >= ext[:-2]) & (ll >= ext[2:])
    best = _argmax0(ll)
    ranked = np.where(local, ll, -np.inf)
    ranked[best, cols] = -np.inf
    second = _argmax0(ranked)
    has_second = np.isfinite(ranked[second, cols])
    pts: Any = [COARSE[:, None] * hi]  # candidates per pass, then one array
    lls = [ll]
    for centre, which in ((best, None), (second, np.flatnonzero(has_second))):
        if which is not None and not len(which):
            continue
        fine = _fine_points(centre if which is None else centre[which], n)
        h = hi if which is None else hi[which]
        sub = b if which is None else b.take(which)
        f_ll = np.array([_loglik(sub, method, p) for p in fine * h])
        if which is not None:
            full_p, full_ll = np.full((FINE, G), np.nan), np.full((FINE, G), -np.inf)
            full_p[:, which], full_ll[:, which] = fine * h, f_ll
            pts.append(full_p)
            lls.append(full_ll)
        else:
            pts.append(fine * h)
            lls.append(f_ll)
    pts, ll = np.concatenate(pts), np.concatenate(lls)
    # Bracket the best candidate by its nearest candidates below and above (no sort needed):
    # the score is positive left of the maximum and negative right of it.
    best = _argmax0(ll)
    p_best = pts[best, cols]
    with np.errstate(invalid="ignore"):
        below = np.where(pts < p_best, pts, -np.inf).max(axis=0)
        above = np.where(pts > p_best, pts, np.inf).min(axis=0)
    f_best = _score(b, method, p_best)[0]
    at_zero = p_best == 0
    lo = np.where(f_best > 0, p_best, below)
    hi_b = np.where(f_best > 0, above, p_best)
    lo = np.where(np.isfinite(lo), lo, 0.0)
    hi_b = np.where(np.isfinite(hi_b), hi_b, hi)
    f_lo, f_hi = _score(b, method, lo)[0], _score(b, method, hi_b)[0]
    interior = (f_lo > 0) & (f_hi <= 0) & ~(at_zero & (f0 <= 0))
    if not interior.any():
        return zero
    act = np.flatnonzero(interior)
    sub = _sub(b, None if len(act) == G else act)
    root, _ = _solve(lambda idx, t: _score(_sub(sub, idx), method, t), sub.G, lo[act], hi_b[act],
                     0.5 * (lo[act] + hi_b[act]), scale=scale[act])
    tau2 = zero.copy()
    tau2[act] = root
    # The boundary keeps its place when its likelihood is at least as high as the polished root's.
    check = np.flatnonzero((f0 <= 0) & interior)
    if len(check):
        sub = b.take(check)
        better = _loglik(sub, method, 0.0) >= _loglik(sub, method, tau2[check])
        tau2[check[better]] = 0.0
    return tau2


def tau2_iterative(g: Groups, method: str) -> np.ndarray:
    """REML, ML, PM or EB tau^2 per group.

    PM and EB solve Q(tau^2) = k - 1, whose left side is decreasing: one root, or tau^2 = 0.
    REML and ML maximise a likelihood that can have more than one local maximum, and a local
    maximum at tau^2 = 0 can hide a higher interior one (metafor then returns 0 without warning).
    So the likelihood is first scanned on a coarse log grid up to where the score stays negative,
    then on a finer grid around the best coarse point, and the root is polished inside the bracket
    around the best point; the boundary wins only if its likelihood is the highest.
    """
    return g.per_group(lambda b: _tau2_iterative(b, method))


def _estimate_tau2(b: _Block, method):
    if method in COMMON_EFFECT_METHODS:
        return np.zeros(b.G)
    if method == "DL":
        return _dl(b)
    if method == "HE":
        return _he(b)
    if method == "SJ":
        return _sj(b)
    if method in ("REML", "ML", "PM", "EB"):
        return _tau2_iterative(b, method)
    raise ValueError(method)


def estimate_tau2(g: Groups, method: str) -> np.ndarray:
    method = method.upper()
    if method not in ("FE", "MH", "PETO", *TAU2_METHODS):
        raise ValueError(method)
    return g.per_group(lambda b: _estimate_tau2(b, method))


def qprofile_ci(g: Groups, level: float = 0.95, df: ArrayLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Q-profile CI for tau^2 (Viechtbauer 2007): the tau^2 at which the generalised Q equals its
    chi^2 (k - 1 df) quantiles; bounds truncated at 0 (metafor's confint with tau2.min = 0)."""
    lo = g.per_group(lambda b: _qprofile(b, level, df)[0])
    hi = g.per_group(lambda b: _qprofile(b, level, df)[1])
    return lo, hi


def _chi2_targets(df, level):
    from ..dist import chi2_isf

    alpha = 1 - level
    # upper quantile -> lower bound of tau^2; lower quantile -> upper bound of tau^2
    return chi2_isf(df, alpha / 2), chi2_isf(df, 1 - alpha / 2)


def _qprofile(b: _Block, level, df=None, q0=None):
    df = b.k - 1 if df is None else df
    t_hi, t_lo = _chi2_targets(df, level)
    if q0 is None:
        q0 = _q(b, 0.0)
    return _q_root(b, q0, t_hi), _q_root(b, q0, t_lo)


def _q_root(b: _Block, q0, target):
    target = np.broadcast_to(target, (b.G,))
    out = np.zeros(b.G)
    active = np.flatnonzero(q0 > target)
    if not len(active):
        return out
    sub = _sub(b, None if len(active) == b.G else active)
    tgt = target[active]

    def fun(idx, t):
        # 1/target - 1/Q(tau^2): decreasing like Q, and nearly linear in tau^2 where Q falls like
        # 1/tau^2, so Newton needs a few steps instead of a dozen (the bracket guards overshoot).
        s = _sub(sub, idx)
        w = s.w(t)
        mu, _ = s.wmean(w)
        r = s.Y - mu
        wr2 = w * r * r
        qv = wr2.sum(0)
        return 1.0 / (tgt if idx is None else tgt[idx]) - 1.0 / qv, -(w * wr2).sum(0) / (qv * qv)

    ybar = sub.Y.sum(0) / sub.k
    hi = np.maximum(sub.masked((sub.Y - ybar) ** 2).sum(0) / sub.k, sub.scale()) + 1e-12
    grow = np.arange(sub.G)
    for _ in range(200):
        fh, _ = fun(grow if len(grow) < sub.G else None, hi[grow])
        grow = grow[fh > 0]
        if not len(grow):
            break
        hi[grow] *= 4.0
    # Newton from tau^2 = 0, inside the bracket [0, hi].
    root, _ = _solve(fun, sub.G, np.zeros(sub.G), hi, np.zeros(sub.G), scale=sub.scale())
    out[active] = root
    return out


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


def fit(g: Groups, method: str = "REML", ci: str = "wald", pi: str = "t", level: float = 0.95, tau2: Any = None,
        q: Any = None, tau2_ci: bool = True) -> CoreFit:
    """Inverse-variance fit with weights 1 / (v + tau^2) per group.

    ``tau2`` fixes tau^2 (array per group) instead of estimating it; ``q`` overrides the Q used for
    heterogeneity statistics (the RevMan preset computes it around the Mantel-Haenszel estimate).
    """
    from .. import dist as _dist

    G = g.G
    k = g.k
    method = method.upper()
    if method not in ("FE", "MH", "PETO", *TAU2_METHODS):
        raise ValueError(method)
    est_tau2 = np.zeros(G) if tau2 is None else None
    mu, sw, wr2, q0, t_lo, t_hi = (np.zeros(G) for _ in range(6))
    weights = np.empty(len(g.y))
    tau2_given = None if tau2 is None else np.asarray(tau2, float)
    want_ci = bool(tau2_ci and G)
    if want_ci and len(g.y) > _dist.SERIES_DF + 1 and float(k.max()) - 1 > _dist.SERIES_DF:
        _dist.preload_scipy()  # the Q-profile's chi-square quantiles at this many df come from SciPy
    for b in g.blocks:
        cols = b.cols
        t = _estimate_tau2(b, method) if tau2_given is None else tau2_given[cols]
        if est_tau2 is not None:
            est_tau2[cols] = t
        w = b.w(t)
        m, s = b.wmean(w)
        mu[cols], sw[cols] = m, s
        r = b.Y - m
        wr2[cols] = (w * r * r).sum(0)
        qb = wr2[cols] if (method in COMMON_EFFECT_METHODS or (tau2_given is not None and not tau2_given[cols].any())) \
            else _q(b, 0.0)
        q0[cols] = qb
        if want_ci:
            with np.errstate(divide="ignore", invalid="ignore"):
                t_lo[cols], t_hi[cols] = _qprofile(b, level, q0=qb)
        wt = 100 * w / s
        if b.rows is None:
            weights[:] = wt[:, 0]
        elif b.M is None:
            weights[b.rows] = wt
        else:
            real = b.M > 0
            weights[b.rows[real]] = wt[real]
    tau2 = est_tau2 if tau2_given is None else tau2_given
    se = np.sqrt(1.0 / sw)
    alpha = 1 - level
    with np.errstate(divide="ignore", invalid="ignore"):
        if ci == "hksj":
            # Hartung & Knapp (2001) / Sidik & Jonkman (2002): weighted residual variance, t on k - 1 df;
            # no truncation of the scaling factor at 1 (metafor's test="knha").
            df = k - 1
            se = np.sqrt(wr2 / (df * sw))
            crit = _dist.t_isf(df, alpha / 2)
            stat = mu / se
            p = 2 * _dist.t_sf(df, np.abs(stat))
        else:
            df = None
            crit = _dist.norm_isf(alpha / 2)
            stat = mu / se
            p = 2 * _dist.norm_sf(np.abs(stat))
        if q is None:
            q = q0
        q = np.asarray(q, float)
        q_df = k - 1
        q_p = np.where(q_df > 0, _dist.chi2_sf(np.maximum(q_df, 1), q), np.nan)
        # I^2 = (Q - df) / Q truncated at 0 (Higgins & Thompson 2002; Cochrane Handbook 10.10.2), percent;
        # H^2 = Q / df, the matching definition (metafor derives both from tau^2 instead).
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):  # a tiny Q gives -inf, then 0
            i2 = np.where(q > 0, 100 * np.maximum(0.0, (q - q_df) / q), 0.0)
        h2 = np.where(q_df > 0, q / q_df, np.nan)
        # Prediction interval: t on k - 2 df (Higgins, Thompson & Spiegelhalter 2009), the normal quantile,
        # or metafor's predict.rma ("metafor": z after a Wald test, t on k - p df after Knapp-Hartung, p = 1
        # here); all use the mean's SE from the chosen CI method.
        if pi == "t":
            pcrit = np.where(k >= 3, _dist.t_isf(np.maximum(k - 2, 1), alpha / 2), np.nan)
        elif pi == "metafor" and ci == "hksj":
            pcrit = np.where(k >= 2, _dist.t_isf(np.maximum(k - 1, 1), alpha / 2), np.nan)
        else:
            pcrit = _dist.norm_isf(alpha / 2)
        half_pi = pcrit * np.sqrt(se**2 + tau2)
    if not want_ci:
        t_lo = t_hi = np.full(G, np.nan)
    return CoreFit(k=k, estimate=mu, se=se, ci_low=mu - crit * se, ci_high=mu + crit * se, stat=stat,
                   p=p, df=df, tau2=tau2, tau2_ci_low=t_lo, tau2_ci_high=t_hi, q=q, q_df=q_df, q_p=q_p,
                   i2=i2, h2=h2, pi_low=mu - half_pi, pi_high=mu + half_pi, weights=weights)
