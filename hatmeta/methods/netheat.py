"""The net heat plot's quantities (Krahn, Binder & König 2013, BMC Med Res Methodol 13:35;
netmeta 3.3's ``netheat``, ``nma_krahn``, ``decomp.design``, ``tau.within``): which design's direct
evidence feeds which network estimate, and where the inconsistency of the network comes from.

The model is the one the paper writes, on designs instead of studies: every design's studies are
pooled first (a two-arm comparison's two-arm studies by inverse variance; a multi-arm design's
studies multivariately, with the covariance of their contrasts against the design's first treatment,
cov(b:i, b:j) = (v_bi + v_bj - v_ij) / 2), then the network estimates are the weighted least squares
fit of those direct estimates, theta = H y with the hat matrix H = X (X' V^-1 X)^-1 X' V^-1. A
design's *row* is one of its contrasts (a k-arm design has k - 1 rows, against its first treatment,
labelled "contrast_design" as netheat labels them).

- ``contribution[r, c]`` = H[r, c]: the weight of the direct estimate of row c in the network
  estimate of row r's comparison (the area of netheat's grey squares).
- ``heat[r, c]`` = Q_r - Q_r(c detached), netheat's colour: Q_r is row r's share of the
  inconsistency Q, (y - theta)_r (V^-1 (y - theta))_r (the Q.inc.design of ``decomp.design``), and
  Q_r(c detached) the same share after the design of row c is given its own parameters (its
  consistency assumption relaxed; ``decomp.design``'s residuals.inc.detach). Positive (netheat's red):
  the column's design adds to the inconsistency of the row's estimate, detaching it lowers it;
  negative (blue): the column's design supports the row's estimate. On the diagonal: the design's
  own inconsistency contribution Q_r.
- Random effects (netheat's ``random = TRUE``): tau^2 is that of the full design-by-treatment
  interaction model (netmeta's ``tau.within``, Jackson, White & Riley 2012; Higgins et al. 2012),
  not the consistency model's, added to every comparison's variance; or a given tau^2
  (``tau.preset``).
- Designs left out, as netheat leaves them out (each named with the reason): a design whose
  detaching leaves the rest of the network unable to estimate it (removing its studies splits the
  network, or only one of its treatments appears elsewhere: its column cannot be computed); with
  ``showall=False`` also designs whose inconsistency contribution is below sqrt(machine epsilon).
- No plot, with netheat's reasons: two or fewer designs; no loop (no between-design degrees of
  freedom); fewer than two designs left to show.
- Order: netheat's clustering, complete linkage (R's ``hclust``) of the dissimilarity
  sum_k |h_ik - h_jk| + sum_k |h_ki - h_kj| (manhattan distances of rows plus of columns of -heat),
  with the nearest-neighbour-list agglomeration of Murtagh (1985) that R uses, so that ties resolve
  as in R: the pair of clusters with the least dissimilarity, the first in input order on a tie; the
  order is the dendrogram's leaves left to right (singletons before clusters, earlier clusters first).
  Rows enter in netmeta's order: two-arm designs, then multi-arm designs, each sorted by label.

Everything is on the analysis scale (log for OR and RR); Q is unitless.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..io.network_table import r_order

if TYPE_CHECKING:
    import pandas as pd

    from ..fit.network import NetworkFit
    from .network import NMAResult

_SQRT_EPS = math.sqrt(np.finfo(float).eps)


# ------------------------------------------------------------------------------------- design-level model

@dataclass(frozen=True)
class _Designs:
    """The design-level model: one row per design contrast, in netmeta's order."""

    label: tuple[str, ...]  # netheat's axis label: the contrast, or "contrast_design" for a multi-arm design
    design: tuple[str, ...]  # the design's name ("A:B" or "A:B:C")
    comparison: tuple[str, ...]  # the contrast "a:b" (a the earlier treatment: the reference first)
    narms: tuple[int, ...]
    studies: tuple[int, ...]  # number of studies of the design
    y: np.ndarray  # direct estimates (effect of a against b)
    V: np.ndarray  # their covariance (block diagonal by design)
    X: np.ndarray  # design matrix against the reference (n - 1 columns)


def _design_model(fit: NetworkFit, tau2: float) -> _Designs:
    """Pool each design's studies (module docstring), as netmeta's ``nma_krahn`` does."""
    net = fit.network
    ref = net.treatments.index(fit.reference)
    order = [ref] + [t for t in range(net.n) if t != ref]  # netmeta's nma_krahn: reference first
    rank = {t: i for i, t in enumerate(order)}
    col = {t: c for c, t in enumerate(order[1:])}
    name = net.treatments
    var = net.se**2 + tau2

    def contrast(s_edges: list[int], a: int, b: int) -> tuple[float, float]:
        """Effect of a against b and its variance from one study's edges."""
        for e in s_edges:
            if net.t1[e] == a and net.t2[e] == b:
                return float(net.te[e]), float(var[e])
            if net.t1[e] == b and net.t2[e] == a:
                return -float(net.te[e]), float(var[e])
        raise AssertionError("every pair of a study's arms is one of its edges")

    two: dict[tuple[int, ...], list[tuple[float, float]]] = {}
    multi: dict[tuple[int, ...], list[tuple[np.ndarray, np.ndarray]]] = {}
    for s, arms in enumerate(net.arms):
        arms_r = tuple(sorted(arms, key=rank.__getitem__))
        e = np.flatnonzero(net.sid == s).tolist()
        if len(arms_r) == 2:
            two.setdefault(arms_r, []).append(contrast(e, *arms_r))
            continue
        b, others = arms_r[0], arms_r[1:]
        y_s = np.array([contrast(e, b, o)[0] for o in others])
        S = np.empty((len(others), len(others)))
        for i, oi in enumerate(others):
            for j, oj in enumerate(others):
                vi, vj = contrast(e, b, oi)[1], contrast(e, b, oj)[1]
                S[i, j] = vi if i == j else (vi + vj - contrast(e, oi, oj)[1]) / 2
        multi.setdefault(arms_r, []).append((y_s, S))

    def lab(arms: tuple[int, ...]) -> str:
        return ":".join(name[t] for t in arms)

    label: list[str] = []
    design: list[str] = []
    comparison: list[str] = []
    narms: list[int] = []
    nstud: list[int] = []
    ys: list[float] = []
    blocks: list[np.ndarray] = []
    rows: list[tuple[int, int]] = []
    for arms in sorted(two, key=lambda a: r_order(lab(a))):
        w = np.array([1.0 / v for _, v in two[arms]])
        y = np.array([t for t, _ in two[arms]])
        label.append(lab(arms))
        design.append(lab(arms))
        comparison.append(lab(arms))
        narms.append(2)
        nstud.append(len(two[arms]))
        ys.append(float(np.sum(w * y) / np.sum(w)))
        blocks.append(np.array([[1.0 / np.sum(w)]]))
        rows.append((arms[0], arms[1]))
    for arms in sorted(multi, key=lambda a: r_order(lab(a))):
        P = sum(np.linalg.inv(S) for _, S in multi[arms])
        Vd = np.linalg.inv(P)
        yd = Vd @ sum(np.linalg.solve(S, y) for y, S in multi[arms])
        b = arms[0]
        for i, o in enumerate(arms[1:]):
            c = lab((b, o))
            label.append(f"{c}_{lab(arms)}")
            design.append(lab(arms))
            comparison.append(c)
            narms.append(len(arms))
            nstud.append(len(multi[arms]))
            ys.append(float(yd[i]))
            rows.append((b, o))
        blocks.append(Vd)
    m = len(rows)
    from scipy.linalg import block_diag

    V = np.asarray(block_diag(*blocks), dtype=float).reshape(m, m)
    X = np.zeros((m, net.n - 1))
    for r, (a, b) in enumerate(rows):
        if a != ref:
            X[r, col[a]] += 1.0
        if b != ref:
            X[r, col[b]] -= 1.0
    return _Designs(tuple(label), tuple(design), tuple(comparison), tuple(narms), tuple(nstud), np.array(ys), V, X)


def _q_rows(r: np.ndarray, Vi: np.ndarray) -> np.ndarray:
    """Each row's share of the quadratic form r' V^-1 r (netmeta: ``t(r) %*% solve(V) * r``)."""
    return np.asarray((r @ Vi) * r)


def _heat_parts(d: _Designs) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, bool]]:
    """H, each row's inconsistency share Q_r, the matrix Q_r(column's design detached) (NaN columns
    where the detached design cannot be estimated) and which designs those are."""
    Vi = np.linalg.inv(d.V)
    X, y = d.X, d.y
    A = X.T @ Vi @ X
    H = X @ np.linalg.solve(A, X.T @ Vi)
    q = _q_rows(y - H @ y, Vi)
    m = len(y)
    detached = np.full((m, m), np.nan)
    unestimable = {}
    for des in dict.fromkeys(d.design):
        own = np.array([x == des for x in d.design])
        Xb = np.hstack([np.where(own[:, None], 0.0, X), np.eye(m)[:, own]])
        if np.linalg.matrix_rank(Xb) < Xb.shape[1]:
            unestimable[des] = True  # netmeta: solve() fails, the column is NA
            continue
        beta = np.linalg.solve(Xb.T @ Vi @ Xb, Xb.T @ Vi @ y)
        r = y - Xb @ beta
        r[own] = 0.0  # the detached design fits itself exactly (netmeta sets these residuals to 0)
        detached[:, own] = _q_rows(r, Vi)[:, None]
    return H, q, detached, unestimable


# ------------------------------------------------------------------------------------- clustering

def _hclust_complete(D: np.ndarray) -> tuple[list[tuple[int, int]], list[int]]:
    """Complete-linkage agglomeration of the dissimilarities D (symmetric), as R's ``hclust``
    (Murtagh's nearest-neighbour-list algorithm; ties go to the first pair in input order).

    Returns (merge, order) in R's conventions: ``merge`` rows (a, b), negative a singleton -i
    (1-based), positive the cluster made at that (1-based) step; ``order`` the leaves (0-based)."""
    n = D.shape[0]
    D = D.astype(float).copy()
    active = [True] * n
    size = [1] * n

    def nearest_right(i: int) -> tuple[int, float]:  # the nearest active j > i: least D, the first on a tie
        best, at = math.inf, -1
        for j in range(i + 1, n):
            if active[j] and D[i, j] < best:
                best, at = D[i, j], j
        return at, best

    nn, dnn = [0] * n, [math.inf] * n
    for i in range(n - 1):
        nn[i], dnn[i] = nearest_right(i)
    pairs = []
    for _ in range(n - 1):
        best, im = math.inf, -1
        for i in range(n - 1):
            if active[i] and dnn[i] < best:
                best, im = dnn[i], i
        i2, j2 = sorted((im, nn[im]))
        pairs.append((i2, j2))
        active[j2] = False
        # Complete linkage: the new cluster (kept at i2) is as far from k as its farther part.
        dmin, jj = math.inf, -1
        for k in range(n):
            if active[k] and k != i2:
                D[i2, k] = D[k, i2] = max(D[i2, k], D[j2, k])
                if i2 < k and D[i2, k] < dmin:
                    dmin, jj = D[i2, k], k
                elif k < i2 and D[i2, k] < dnn[k]:
                    dnn[k], nn[k] = D[i2, k], i2
        size[i2] += size[j2]
        nn[i2], dnn[i2] = jj, dmin
        for i in range(n - 1):
            if active[i] and nn[i] in (i2, j2):
                nn[i], dnn[i] = nearest_right(i)
    # R's merge: singletons as -(index + 1), clusters by the step (1-based) that made them; a cluster
    # is named by its smallest member, which is the i2 it was kept at.
    made: dict[int, int] = {}
    merge: list[tuple[int, int]] = []
    for step, (i2, j2) in enumerate(pairs, start=1):
        a, b = made.get(i2, -(i2 + 1)), made.get(j2, -(j2 + 1))
        if a > 0 and b < 0:
            a, b = b, a  # a singleton first
        elif a > 0 and b > 0:
            a, b = min(a, b), max(a, b)
        merge.append((a, b))
        made[i2] = step

    def leaves(x: int) -> list[int]:
        if x < 0:
            return [-x - 1]
        a, b = merge[x - 1]
        return leaves(a) + leaves(b)

    return merge, leaves(len(merge)) if merge else list(range(n))


def _manhattan(M: np.ndarray) -> np.ndarray:
    """Manhattan distances between the rows of M, summed left to right as R's ``dist`` sums."""
    diff = np.abs(M[:, None, :] - M[None, :, :])
    return np.cumsum(diff, axis=2)[:, :, -1] if M.shape[1] else np.zeros((M.shape[0],) * 2)


# ------------------------------------------------------------------------------------- the result

@dataclass(frozen=True)
class NetHeat:
    """The net heat plot of a network meta-analysis (module docstring for the definitions).

    ``rows``: every design contrast (dicts: ``label``, ``design``, ``comparison``, ``narms``,
    ``studies``, ``q_inc`` its share of the inconsistency Q, ``shown`` and, if not shown, ``reason``);
    ``labels``: the rows shown, in netheat's clustering order; ``heat[r][c]``: Q_r - Q_r(c detached)
    (positive, red: the column's design adds inconsistency to row r; negative, blue: it supports
    it); ``contribution[r][c]``: the hat-matrix weight of column c's direct estimate in row r's
    network estimate; ``available`` False (with ``reason``) where netheat draws no plot."""

    model: str
    tau2: float
    tau2_source: str
    reference: str
    measure: str
    showall: bool
    available: bool
    reason: str | None
    rows: tuple[dict[str, Any], ...]
    labels: tuple[str, ...]
    heat: np.ndarray = field(repr=False)
    contribution: np.ndarray = field(repr=False)
    q_between: float = math.nan
    q_between_df: int = 0
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: matrices as {row label: {column label: value}} in the shown order."""
        from ..precision import plain

        def mat(M: np.ndarray) -> dict[str, dict[str, float]]:
            return {a: {b: float(M[i, j]) for j, b in enumerate(self.labels)} for i, a in enumerate(self.labels)}

        out: dict[str, Any] = plain({"model": self.model, "tau2": self.tau2, "tau2_source": self.tau2_source,
                      "reference": self.reference, "measure": self.measure, "showall": self.showall,
                      "available": self.available, "reason": self.reason,
                      "Q_between": self.q_between, "Q_between_df": self.q_between_df,
                      "rows": [dict(r) for r in self.rows], "order": list(self.labels),
                      "heat": mat(self.heat), "contribution": mat(self.contribution), "notes": list(self.notes)})
        return out

    def to_frame(self) -> pd.DataFrame:
        """Long form (pandas): one row per (row, column) cell shown, in the plot's order."""
        import pandas as pd

        return pd.DataFrame([{"row": a, "column": b, "heat": float(self.heat[i, j]),
                              "contribution": float(self.contribution[i, j])}
                             for i, a in enumerate(self.labels) for j, b in enumerate(self.labels)],
                            columns=["row", "column", "heat", "contribution"])

    def summary(self) -> str:
        from .netheat_text import format_netheat

        return format_netheat(self)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(self.summary())}</pre>"


def netheat(res: NMAResult | NetworkFit, random: bool | None = None, tau2: float | None = None,
            showall: bool = True) -> NetHeat:
    """The net heat plot's matrices of a network meta-analysis (netmeta 3.3's ``netheat``).

    Parameters
    ----------
    res : NMAResult or NetworkFit
        The fitted network (``hatmeta.nma(...)``).
    random : bool, optional
        Random-effects version (tau^2 of the full design-by-treatment interaction model, netheat's
        ``random = TRUE``); default: the model ``res`` reports (common effect for a NetworkFit).
    tau2 : float, optional
        A given tau^2 instead (netheat's ``tau.preset``, which is tau; here its square, analysis scale).
    showall : bool
        False leaves out, as netheat does, designs whose inconsistency contribution is below
        sqrt(machine epsilon).

    Returns
    -------
    NetHeat
        ``available`` False with the reason where netheat draws no plot.
    """
    from .network import NMAResult, decomp_design

    fit = res.fit if isinstance(res, NMAResult) else res
    if fit is None or not hasattr(fit, "network"):
        raise InputError("the net heat plot needs a network meta-analysis (hatmeta.nma) result")
    if random is None:
        random = getattr(res, "model", "common") == "random"
    if tau2 is not None and not (math.isfinite(tau2) and tau2 >= 0):
        raise InputError(f"tau^2 must be a non-negative number, got {tau2}", option="tau2")
    net = fit.network
    dd = decomp_design(fit)
    df_inc = int(dd["Q_between_df"])
    notes: list[str] = []
    if tau2 is not None:
        t2, source, model = float(tau2), "given", "random"
    elif random:
        dbt = dd["design_by_treatment"]
        t2 = float(dbt["tau2_within"]) if dbt else 0.0
        source, model = "full design-by-treatment interaction model, netmeta's tau.within", "random"
    else:
        t2, source, model = 0.0, "none (common effect)", "common"
    measure = net.comparisons.measure
    empty = np.zeros((0, 0))

    def unavailable(reason: str, rows: Any = ()) -> NetHeat:
        return NetHeat(model, t2, source, fit.reference, measure, showall, False, reason, tuple(rows), (),
                       empty, empty, dd["Q_between"], df_inc, tuple(notes))

    n_designs = len(set(net.designs()))
    if n_designs <= 2:
        return unavailable(f"a net heat plot needs more than two designs; the network has {n_designs}")
    if df_inc == 0:
        multi = any(len(a) > 2 for a in net.arms)
        return unavailable("the network has no loop" + (" along more than one design" if multi else "")
                           + ": no between-design inconsistency (0 degrees of freedom) to locate")
    d = _design_model(fit, t2)
    H, q, detached, unestimable = _heat_parts(d)
    heat_full = q[:, None] - detached  # netheat's diff: inc - Q.inc.design.typ
    m = len(d.y)
    reasons: dict[str, str] = {}
    for des in unestimable:
        reasons[des] = ("without the design's own studies the network cannot estimate its comparisons (detaching "
                        "it splits the network), so it adds nothing to the inconsistency assessment")
    if not showall:
        for des in dict.fromkeys(d.design):
            if des not in reasons and sum(abs(q[i]) for i in range(m) if d.design[i] == des) < _SQRT_EPS:
                reasons[des] = f"its inconsistency contribution is below {_SQRT_EPS:.1e} (showall = False)"
    rows = [{"label": d.label[i], "design": d.design[i], "comparison": d.comparison[i], "narms": d.narms[i],
             "studies": d.studies[i], "q_inc": float(q[i]), "shown": d.design[i] not in reasons,
             **({"reason": reasons[d.design[i]]} if d.design[i] in reasons else {})} for i in range(m)]
    keep = [i for i in range(m) if d.design[i] not in reasons]
    if len(keep) < 2:
        shown = (f"only the design {d.design[keep[0]]} can be detached" if keep else "no design can be detached")
        return unavailable("fewer than two designs can be shown (netheat's 'insufficient number of designs'): "
                           f"{shown}; without their own studies the network cannot estimate the other designs' "
                           "comparisons", rows)
    T = -heat_full[np.ix_(keep, keep)]  # netheat clusters t1 = -diff
    D = _manhattan(T) + _manhattan(T.T)
    _, order = _hclust_complete(D)
    idx = [keep[i] for i in order]
    heat = heat_full[np.ix_(idx, idx)]
    contribution = H[np.ix_(idx, idx)]
    return NetHeat(model, t2, source, fit.reference, measure, showall, True, None, tuple(rows),
                   tuple(d.label[i] for i in idx), heat, contribution, dd["Q_between"], df_inc, tuple(notes))


__all__ = ["NetHeat", "netheat"]
