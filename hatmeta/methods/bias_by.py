"""Trim-and-fill and the step-function selection model for many meta-analyses at once (``--by``).

Trim-and-fill is vectorised across groups: the side (sign of the slope of yi on sei in a
meta-regression with the model's tau^2 estimator), every trimming iteration (the tau^2 and mean
of the studies kept, the signed ranks, L0 or R0) and the final refit on the filled data run as
one NumPy pass over all groups still iterating. It follows ``publication_bias.trim_fill`` step
for step (metafor's trimfill(); Duval & Tweedie 2000), and is tested to give its numbers on each
group's rows. The selection model (a numerical maximum-likelihood fit per group) reuses
``publication_bias.selection_model`` group by group.

A group too small for a method, or where it fails, gets its block with null numbers and the reason
in ``warning`` and ``notes``; the other groups go on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..fit import core
from . import publication_bias as pb

if TYPE_CHECKING:
    from ..fit.effects import EffectSizes

TRIM_FILL_KEYS = ("k0", "side", "estimator", "estimate", "se", "ci_low", "ci_high", "p", "tau2", "filled_yi",
                  "filled_vi", "k", "method", "p_k0", "warning", "notes")
SELECTION_KEYS = ("estimate", "se", "ci_low", "ci_high", "p", "tau2", "delta", "delta_se", "steps",
                  "studies_per_interval", "alternative", "lrt", "lrt_df", "lrt_p", "k", "warning", "notes")
MAXITER = 100  # as publication_bias.trim_fill


def _tau2_method(method):
    method = str(method).upper()
    if method.startswith("GLMM"):
        raise InputError(f"trim-and-fill refits inverse-variance models; method {method} has none: "
                         "choose FE, DL, REML, ... with --trim-fill", column="--method")
    return pb._tau2_method(method)


def _failed(keys, reason, **known):
    d = dict.fromkeys(keys)
    d.update(known)
    d["warning"] = reason
    d["notes"] = [reason]
    return d


# ---------------------------------------------------------------- the side: yi on sei, per group

class _SeiRegression:
    """Weighted regression of y on (1, x) per group with weights 1 / (v + tau^2), in closed form
    (2 x 2 normal equations), for the tau^2 of metafor's rma.uni(yi, vi, mods = sqrt(vi))."""

    def __init__(self, y, v, gid, G) -> None:
        self.y, self.v, self.gid, self.G = y, v, gid, G
        self.x = np.sqrt(v)
        self.k = np.bincount(gid, minlength=G).astype(float)

    def s(self, a):
        return np.bincount(self.gid, weights=a, minlength=self.G)

    def fit(self, tau2):
        """(w per row, S0, S1, S2, det, b0, b1, residual per row) at tau2 (per group)."""
        x, y = self.x, self.y
        w = 1 / (self.v + tau2[self.gid])
        S0, S1, S2, Sy, Sxy = self.s(w), self.s(w * x), self.s(w * x * x), self.s(w * y), self.s(w * x * y)
        det = S0 * S2 - S1 * S1
        with np.errstate(divide="ignore", invalid="ignore"):
            b1 = (S0 * Sxy - S1 * Sy) / det
            b0 = (S2 * Sy - S1 * Sxy) / det
        r = y - b0[self.gid] - b1[self.gid] * x
        return w, S0, S1, S2, det, b0, b1, r

    def tr_p(self, w, S0, S1, S2, det):
        """tr(P) = sum w - tr((X'WX)^-1 X'W^2X)."""
        x = self.x
        w2 = w * w
        T0, T1, T2 = self.s(w2), self.s(w2 * x), self.s(w2 * x * x)
        return S0 - (S2 * T0 - 2 * S1 * T1 + S0 * T2) / det

    def rss(self, tau2):
        w, *_, r = self.fit(tau2)
        return self.s(w * r * r)

    def score(self, tau2, method):
        w, S0, S1, S2, det, _, _, r = self.fit(tau2)
        wr = w * r
        return self.s(wr * wr) - (self.tr_p(w, S0, S1, S2, det) if method == "REML" else S0)

    def loglik(self, tau2, method):
        w, S0, S1, S2, det, _, _, r = self.fit(tau2)
        ll = -0.5 * (self.s(np.log(self.v + tau2[self.gid])) + self.s(w * r * r))
        if method == "REML":
            ll = ll - 0.5 * np.log(det)  # + 1/2 log det (X'WX)^-1
        return ll

    def upper(self, fun):
        """Per group a tau^2 where the decreasing ``fun`` is negative (metareg._upper); NaN if none."""
        g = self.gid
        mean_y = self.s(self.y) / self.k
        var_y = self.s((self.y - mean_y[g]) ** 2) / self.k
        hi = np.maximum(var_y, self.s(self.v) / self.k) + 1e-12
        todo = np.ones(self.G, dtype=bool)
        for _ in range(200):
            todo &= ~(fun(hi) < 0)
            if not todo.any():
                return hi
            hi = np.where(todo, hi * 4, hi)
        return np.where(todo, np.nan, hi)

    def root(self, fun, lo, hi):
        """The root of the decreasing ``fun`` in [lo, hi] per group (f(lo) > 0 >= f(hi)), by bisection to
        the last bits (brentq in metareg._root stops at the same precision)."""
        lo, hi = lo.copy(), hi.copy()
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if not np.any((mid > lo) & (mid < hi)):
                break
            pos = fun(mid) > 0
            lo, hi = np.where(pos, mid, lo), np.where(pos, hi, mid)
        return 0.5 * (lo + hi)

    def tau2(self, method):
        """tau^2 per group as metareg.tau2_metareg; NaN where the vectorised path cannot decide (more
        than one local maximum of the likelihood, or no bracket): those groups go through the scalar
        function."""
        G, k, p = self.G, self.k, 2.0
        zero = np.zeros(G)
        if method == "FE":
            return zero
        if method == "DL":
            w, S0, S1, S2, det, _, _, r = self.fit(zero)
            return np.maximum(0.0, (self.s(w * r * r) - (k - p)) / self.tr_p(w, S0, S1, S2, det))
        if method == "HE":
            x, v = self.x, self.v
            # Ordinary least squares of y on (1, x = sqrt(v)).
            S0, S1, S2 = self.k, self.s(x), self.s(x * x)
            det = S0 * S2 - S1 * S1
            Sy, Sxy = self.s(self.y), self.s(x * self.y)
            b1 = (S0 * Sxy - S1 * Sy) / det
            b0 = (S2 * Sy - S1 * Sxy) / det
            r = self.y - b0[self.gid] - b1[self.gid] * x
            V0, V1, V2 = self.s(v), self.s(v * x), self.s(v * x * x)
            tr_pv = V0 - (S2 * V0 - 2 * S1 * V1 + S0 * V2) / det
            return np.maximum(0.0, (self.s(r * r) - tr_pv) / (k - p))
        if method == "SJ":
            mean_y = self.s(self.y) / k
            tau0 = self.s((self.y - mean_y[self.gid]) ** 2) / k
            with np.errstate(divide="ignore", invalid="ignore"):
                out = np.maximum(0.0, tau0 * self.rss(tau0) / (k - p))
            return np.where(tau0 == 0, 0.0, out)
        if method in ("PM", "EB"):
            fun = lambda t: self.rss(t) - (k - p)  # noqa: E731
            f0 = fun(zero)
            hi = self.upper(fun)
            out = np.where(f0 <= 0, 0.0, np.nan)
            go = (f0 > 0) & np.isfinite(hi)
            if go.any():
                out[go] = self._on(go, lambda sub: sub.root(lambda t: sub.rss(t) - (sub.k - p),
                                                             np.zeros(sub.G), hi[go]))
            return out
        if method not in ("ML", "REML"):
            raise ValueError(method)
        fun = lambda t: self.score(t, method)  # noqa: E731
        hi = self.upper(fun)
        grid = np.concatenate([[0.0], np.geomspace(1e-8, 1.0, 80)])
        f = np.stack([fun(c * hi) for c in grid])  # (81, G); NaN rows where hi is NaN
        change = (f[:-1] > 0) & (f[1:] <= 0)
        n_change = change.sum(0)
        at_zero = f[0] <= 0
        out = np.full(G, np.nan)
        out[at_zero & (n_change == 0)] = 0.0
        one = ~at_zero & (n_change == 1) & np.isfinite(hi)
        if one.any():
            j = np.argmax(change[:, one], axis=0)
            lo_t, hi_t = grid[j] * hi[one], grid[j + 1] * hi[one]
            exact = f[j + 1, np.flatnonzero(one)] == 0
            got = self._on(one, lambda sub: sub.root(lambda t: sub.score(t, method), lo_t, hi_t))
            out[one] = np.where(exact, hi_t, got)
        return out  # NaN: several candidates (compare likelihoods) or no bracket: the scalar path decides

    def _on(self, mask, run):
        """``run`` on the regression restricted to the groups in ``mask`` (re-indexed 0..n-1)."""
        idx = np.flatnonzero(mask)
        pos = np.full(self.G, -1)
        pos[idx] = np.arange(len(idx))
        rows = mask[self.gid]
        return run(_SeiRegression(self.y[rows], self.v[rows], pos[self.gid[rows]], len(idx)))


def _sides(y, v, gid, G, method):
    """'left' or 'right' per group: the side opposite the sign of the slope of yi on sei (trim_fill's
    rule); groups where the vectorised tau^2 is undecided, or the slope's sign could turn within
    rounding of tau^2, are settled by publication_bias._slope_on_se itself. Raises nothing: a group
    whose slope cannot be computed gets None and its error message."""
    reg = _SeiRegression(y, v, gid, G)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        tau2 = reg.tau2(method)
        slope = reg.fit(np.nan_to_num(tau2))[6]
        # Sign stable under a relative change of 1e-9 in tau^2 (plus a tiny absolute one at 0)?
        near = [reg.fit(np.nan_to_num(tau2) * f + a)[6] for f, a in ((1 - 1e-9, 0.0), (1 + 1e-9, 1e-15))]
        _, S0, _, S2, det, *_ = reg.fit(np.zeros(G))
    sure = (np.isfinite(tau2) & np.isfinite(slope) & (slope != 0) & (np.sign(near[0]) == np.sign(slope))
            & (np.sign(near[1]) == np.sign(slope)) & (np.abs(det) > 1e-10 * S0 * S2))
    sides: list[str | None] = [None] * G
    errors: dict[int, str] = {}
    for j in range(G):
        if sure[j]:
            sides[j] = "right" if slope[j] < 0 else "left"
            continue
        rows = gid == j
        try:
            with np.errstate(all="ignore"):
                s = pb._slope_on_se(y[rows], v[rows], method)
            if not math.isfinite(s):
                raise InputError("the slope of the effects on their standard errors is not finite")
            sides[j] = "right" if s < 0 else "left"
        except np.linalg.LinAlgError:
            errors[j] = ("no side to fill can be chosen: the studies' variances do not vary, so the slope of "
                         "the effects on their standard errors is not defined")
        except (InputError, ValueError, ArithmeticError) as exc:
            errors[j] = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
    return sides, errors


# ---------------------------------------------------------------- trim-and-fill

def trim_fill_by_group(es: EffectSizes, gid: np.ndarray, G: int, method: str = "REML", estimator: str = "L0",
                       side: str | None = None, level: float = 0.95) -> list[dict[str, Any]]:
    """Trim-and-fill for every group of rows of ``es`` (``gid``: group index per row): a list of G
    JSON-ready dicts with the keys of ``TrimFill.to_dict()`` (analysis scale), equal to
    ``publication_bias.trim_fill`` on each group's rows. ``side``: None (decided per group) or
    "left"/"right" for all groups."""
    from scipy.special import comb, ndtr, ndtri

    estimator = str(estimator).upper()
    if estimator not in ("L0", "R0"):
        raise InputError(f"unknown trim-and-fill estimator {estimator!r}; choose L0 or R0",
                         column="--trim-fill-estimator")
    if side is not None and side not in ("left", "right"):
        raise InputError(f"trim-and-fill side must be left or right, got {side!r}", column="--trim-fill")
    m = _tau2_method(method)
    notes = [f"trim-and-fill refits inverse-variance common-effect models (method {method} has no such refit)"] \
        if m != method else []
    gid = np.asarray(gid, dtype=np.intp)
    y_all, v_all = np.asarray(es.yi, float), np.asarray(es.vi, float)
    kk = np.bincount(gid, minlength=G)
    out: list[Any] = [None] * G  # every group gets its dict below
    for j in np.flatnonzero(kk < 3):
        out[j] = _failed(TRIM_FILL_KEYS, f"trim-and-fill needs at least 3 studies, found {kk[j]}",
                         estimator=estimator, k=int(kk[j]), method=m)
    ok = np.flatnonzero(kk >= 3)
    if not ok.size:
        return out
    # Work on the groups with >= 3 studies, re-indexed 0..n-1.
    pos = np.full(G, -1)
    pos[ok] = np.arange(len(ok))
    rows = np.flatnonzero(pos[gid] >= 0)
    g = pos[gid[rows]]
    n = len(ok)
    y, v = y_all[rows], v_all[rows]
    if side is None:
        sides, errors = _sides(y, v, g, n, m)
    else:
        sides, errors = [side] * n, {}
    for j, msg in errors.items():
        out[ok[j]] = _failed(TRIM_FILL_KEYS, f"trim-and-fill failed: {msg}", estimator=estimator,
                             k=int(kk[ok[j]]), method=m)
    sign = np.array([-1.0 if s == "right" else 1.0 for s in sides])
    live = np.array([s is not None for s in sides])
    # Work on y0 = sign * y (the missing side always on the left, as trim_fill), rows sorted within
    # group by y0 (stable: ties keep the input order, as argsort(kind="stable")).
    y0 = sign[g] * y
    order = np.lexsort((y0, g))
    g, v, y0 = g[order], v[order], y0[order]
    k = np.bincount(g, minlength=n)
    start = np.concatenate([[0], np.cumsum(k)[:-1]])
    rank_in = np.arange(len(g)) - start[g]  # position of each row in its group's sorted order
    k0 = np.zeros(n, dtype=np.int64)
    beta = np.zeros(n)
    active = live.copy()
    failed_conv = np.zeros(n, dtype=bool)
    for _ in range(MAXITER):
        if not active.any():
            break
        prev = k0.copy()
        idx = np.flatnonzero(active)
        beta[idx] = _kept_means(y0, v, g, rank_in, k, k0, active, m)
        sel = active[g]
        ga, c = g[sel], y0[sel] - beta[g[sel]]
        # Signed ranks of |y - beta| within group, ties by the sorted order (R's ties.method = "first").
        o = np.lexsort((np.abs(c), ga))
        ranks = np.empty(len(c))
        starts_a = np.concatenate([[0], np.cumsum(np.bincount(ga, minlength=n))[:-1]])
        ranks[o] = np.arange(len(c)) - starts_a[ga[o]] + 1
        signed = np.sign(c) * ranks
        kf = k.astype(float)
        if estimator == "R0":
            neg = np.zeros(n)
            np.maximum.at(neg, ga, np.where(signed < 0, -signed, 0.0))
            k0_raw = (kf - neg) - 1
        else:
            sr = np.bincount(ga, weights=np.where(signed > 0, signed, 0.0), minlength=n)
            k0_raw = (4 * sr - kf * (kf + 1)) / (2 * kf - 1)
        new = np.maximum(0, np.rint(k0_raw)).astype(np.int64)  # rint: halves to even, as R's round()
        k0 = np.where(active, new, k0)
        active &= k0 != prev
    else:
        failed_conv = active.copy()
    for j in np.flatnonzero(failed_conv):
        out[ok[j]] = _failed(TRIM_FILL_KEYS, "trim-and-fill did not converge", estimator=estimator,
                             k=int(kk[ok[j]]), method=m, side=sides[j])
    done = live & ~failed_conv
    # Filled studies: the k0 most extreme of each group mirrored about its trimmed estimate.
    fill = done[g] & (rank_in >= (k - k0)[g])
    fg = g[fill]
    fy = sign[fg] * (2 * beta[fg] - y0[fill])
    fv = v[fill]
    # Refit on each group's studies (input order) followed by its filled ones.
    keep_rows = done[pos[gid[rows]]]
    gy = np.concatenate([pos[gid[rows]][keep_rows], fg])
    yy = np.concatenate([y_all[rows][keep_rows], fy])
    vv = np.concatenate([v_all[rows][keep_rows], fv])
    o = np.argsort(gy, kind="stable")
    dj = np.flatnonzero(done)
    if not dj.size:
        return out
    remap = np.full(n, -1)
    remap[dj] = np.arange(len(dj))
    with np.errstate(divide="ignore", invalid="ignore"):
        f = core.fit(core.Groups(yy[o], vv[o], remap[gy[o]], len(dj)), method=m, ci="wald", level=level,
                     tau2_ci=False)
    z = float(ndtri(0.5 + level / 2))
    fill_start = np.concatenate([[0], np.cumsum(np.bincount(fg, minlength=n))[:-1]])
    for i, j in enumerate(dj):
        est, se = float(f.estimate[i]), float(f.se[i])
        kj, k0j = int(k[j]), int(k0[j])
        p_k0 = None
        if estimator == "R0":
            mm = np.arange(-1, k0j)
            p_k0 = float(1 - np.sum(comb(mm + 1, mm + 1) * 0.5 ** (mm + 2)))
        s0 = fill_start[j]
        warning = pb.few_studies(kj, "trim-and-fill")
        out[ok[j]] = {"k0": k0j, "side": sides[j], "estimator": estimator, "estimate": est, "se": se,
                      "ci_low": est - z * se, "ci_high": est + z * se, "p": float(2 * ndtr(-abs(est / se))),
                      "tau2": float(f.tau2[i]), "filled_yi": fy[s0:s0 + k0j].tolist(),
                      "filled_vi": fv[s0:s0 + k0j].tolist(), "k": kj, "method": m, "p_k0": p_k0,
                      "warning": warning, "notes": list(notes)}
    return out


def _kept_means(y, v, g, rank_in, k, k0, active, method):
    """The mean of each active group's k - k0 least extreme studies (its sorted rows' first k - k0),
    weights 1 / (v + tau^2) with the group's tau^2 by ``method`` (publication_bias._fit_mean)."""
    sel = active[g] & (rank_in < (k - k0)[g])
    idx = np.flatnonzero(active)
    remap = np.full(len(k), -1)
    remap[idx] = np.arange(len(idx))
    gg, yy, vv = remap[g[sel]], y[sel], v[sel]
    grp = core.Groups(yy, vv, gg, len(idx))
    # Trimming can keep a single study: its mean is its own effect whatever tau^2 (which some
    # estimators leave undefined there, e.g. HE's 0/0), as publication_bias._fit_mean and rma.uni give.
    with np.errstate(divide="ignore", invalid="ignore"):
        tau2 = core.estimate_tau2(grp, method)
        tau2 = np.where(np.bincount(gg, minlength=len(idx)) == 1, 0.0, tau2)
        w = 1 / (vv + tau2[gg])
        return np.bincount(gg, weights=w * yy, minlength=len(idx)) / np.bincount(gg, weights=w, minlength=len(idx))


# ---------------------------------------------------------------- selection model (per group)

def selection_model_by_group(es: EffectSizes, gid: np.ndarray, G: int, steps: Sequence[float] = (0.025,),
                             benefit: str = "lower", method: str = "REML", level: float = 0.95,
                             ) -> list[dict[str, object]]:
    """The step-function selection model fitted to every group of rows separately (one ML fit each,
    ``publication_bias.selection_model``): a list of G JSON-ready dicts with the keys of
    ``SelectionModel.to_dict()``; a group that cannot be fitted gets nulls and the reason."""
    steps = tuple(sorted(float(s) for s in steps))
    if not steps or any(not 0 < s < 1 for s in steps):
        raise InputError("--steps takes p-value cut-points strictly between 0 and 1, e.g. 0.025", column="--steps")
    gid = np.asarray(gid, dtype=np.intp)
    order = np.argsort(gid, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(gid, minlength=G))])
    known = dict(steps=list(steps) + [1.0], alternative=pb._side_of(benefit), lrt_df=len(steps))
    out = []
    for j in range(G):
        idx = order[bounds[j]:bounds[j + 1]]
        try:
            with np.errstate(all="ignore"):
                r = pb.selection_model(es.subset(idx), steps=steps, benefit=benefit, method=method, level=level)
            out.append(r.to_dict())
        except InputError as exc:
            out.append(_failed(SELECTION_KEYS, f"selection model not fitted: {exc.message}", k=len(idx), **known))
        except (np.linalg.LinAlgError, ValueError, ArithmeticError) as exc:
            out.append(_failed(SELECTION_KEYS, f"selection model could not be fitted: {type(exc).__name__}: {exc}",
                               k=len(idx), **known))
    return out
