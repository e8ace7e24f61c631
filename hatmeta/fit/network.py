"""Frequentist network meta-analysis: netmeta's graph-theoretical model (Rücker 2012).

The model is the contrast-based weighted least squares model with the exact within-study
covariance of multi-arm studies (Rücker 2012, Res Synth Methods 3:312; Rücker & Schwarzer 2014,
Stat Med 33:4353, "Reduce dimension or reduce weights?"): every comparison of a study is an edge
of the network; a multi-arm study's edge variances are replaced by the "adjusted" variances of
netmeta's ``multiarm()`` (the Laplacian of the study is the pseudoinverse of the doubly centred
resistance matrix, Gutman & Xiao 2004, Theorem 7), so that its edges carry exactly the information
of its k - 1 independent contrasts. Treatment effects are then, with the network's weighted
Laplacian ``L = B' W B`` and its pseudoinverse ``L+``: potentials ``x = L+ B' W y``, the effect of
treatment i against j ``x_i - x_j`` with variance ``L+_ii + L+_jj - 2 L+_ij``.

Conventions are netmeta 3.3's (``netmeta()``, ``nma_ruecker()``, ``prepare()``, ``multiarm()``) and
meta 8.2's ``pairwise()`` / ``metabin()`` / ``metacont()`` for arm-level data:

- binary data: an increment (0.5) is added to every cell of every arm of a study with a zero cell
  (an arm with no events or only events), as ``pairwise()`` does; a comparison whose two arms both
  have no events (OR, RR) or only events (OR) is undefined and left out (meta's ``allstudies =
  FALSE``), a two-arm study with it is named in ``dropped``; a multi-arm study left with only some of
  its comparisons is refused, as netmeta refuses it;
- RR as metabin with ``RR.Cochrane = FALSE`` (log((a + inc) / (n1 + inc)), Hartung & Knapp 2001,
  eq. 18); RD with the increment only in the variance (Cooper & Hedges 1994); SMD is Cohen's d
  with the pooled SD, because ``pairwise()`` calls
  ``metacont(method.smd = "Cohen")`` (not the Hedges' g of a pairwise ``metacont``), with the SD
  of every arm of a multi-arm study replaced by the SD pooled over its arms and variance
  1/n1 + 1/n2 + d^2 / (2 N), N the study's total sample size (Crippa & Orsini 2016); MD with
  unequal SDs;
- tau^2 by the DerSimonian-Laird-type estimator of netmeta (Jackson, White & Riley 2012; Rücker &
  Schwarzer 2014): (Q - df) / tr((I - H)(B B' o E / 2) W), truncated at 0; tau^2 is added to every
  comparison's variance before the multi-arm adjustment (the random effects of a multi-arm study's
  contrasts correlate 1/2, netmeta's ``rho = 0.5``);
- REML: the restricted likelihood of the same contrast-based model (netmeta fits it with metafor's
  ``rma.mv``, random = ~ factor(comparison) | studlab, rho = 0.5), maximised to convergence by a
  root of the score (netmeta's default ``nlminb`` stops about 1e-6 short on smokingcessation). The
  within-study covariance is the one the graph-theoretical model uses (from the comparisons'
  variances), so REML and the fit agree; netmeta builds it from arm-level variances instead (equal
  for OR, MD; for contrast-level input netmeta ignores the multi-arm covariance in REML);
- I^2 = (Q - df) / Q with Higgins & Thompson's (2002) interval (meta's ``isquared``).

Everything is on the analysis scale (log for OR and RR).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ..io.network_table import NetworkTable, components as _components, r_order

if TYPE_CHECKING:
    from collections.abc import Sequence

MEASURES = ("OR", "RR", "RD", "MD", "SMD", "GEN")
LOG_MEASURES = ("OR", "RR")
ARM_MEASURES = {"arm_binary": ("OR", "RR", "RD"), "arm_continuous": ("MD", "SMD")}
TAU2_METHODS = ("DL", "REML")
Z975 = 1.959963984540054
TOL_MULTIARM = 0.001  # netmeta's tol.multiarm: consistency of a multi-arm study's given contrasts


def normalise_measure(measure: str) -> str:
    m = str(measure).strip().upper()
    if m not in MEASURES:
        raise InputError(f"unknown measure {measure!r} for a network; choose one of {', '.join(MEASURES)}",
                         option="--measure")
    return m


# ------------------------------------------------------------------------------------- comparisons

@dataclass(frozen=True)
class Comparisons:
    """Every comparison (edge) of the network: study, the two treatments, the effect of ``treat1``
    against ``treat2`` (analysis scale) and its standard error; ``line`` is the first line of the
    study in the input file. ``dropped``: (study, reason) of studies left out; ``notes``: what was
    changed (increments)."""

    study: tuple
    treat1: tuple
    treat2: tuple
    te: np.ndarray
    se: np.ndarray
    measure: str
    line: dict = field(default_factory=dict)
    participants: dict = field(default_factory=dict)  # treatment -> participants (arm-level input)
    dropped: tuple = ()
    notes: tuple = ()
    path: str = "<table>"


def _groups(study):
    """Row indices per study, studies in order of first appearance."""
    out: dict = {}
    for i, s in enumerate(study):
        out.setdefault(s, []).append(i)
    return out


def pairwise(table: NetworkTable, measure: str, cc: float = 0.5) -> Comparisons:
    """All comparisons of every study, as meta's ``pairwise()`` makes them (conventions in the
    module docstring). Contrast-level tables are checked (every pair of a study's treatments
    given once, a multi-arm study's effects consistent within 0.001, netmeta's ``tol.multiarm``)
    and passed through."""
    measure = normalise_measure(measure)
    if table.layout == "contrast":
        return _contrasts(table, measure)
    allowed = ARM_MEASURES[table.layout]
    if measure not in allowed:
        raise InputError(f"measure {measure} does not fit a table of "
                         f"{'events' if table.layout == 'arm_binary' else 'means'}"
                         f" per arm; choose {' or '.join(allowed)}", option="--measure")
    if cc < 0:
        raise InputError(f"increment must not be negative, got {cc:g}", option="--cc")
    groups = _groups(table.text["study"])
    trt = table.text["treatment"]
    c = table.columns
    rows_s, rows_t1, rows_t2, te_l, se_l = [], [], [], [], []
    dropped, corrected, refused = [], [], []
    line = {}
    for s, idx in groups.items():
        line[s] = table.line_of(idx[0])
        if len(idx) < 2:
            raise InputError(f"study {s!r} has one arm; every study of a network needs two or more",
                             file=table.path, line=table.line_of(idx[0]), column="treatment")
        if table.layout == "arm_binary":
            e, n = c["events"][idx], c["n"][idx]
            inc = cc if bool(np.any((e == 0) | (e == n))) else 0.0
            if inc > 0:
                corrected.append(s)
        sd = c["sd"] if table.layout == "arm_continuous" else np.empty(0)
        if measure == "SMD" and len(idx) > 2:
            # pairwise(): a multi-arm study's SMDs share one SD, pooled over all its arms.
            nn, ss = c["n"][idx], c["sd"][idx]
            sd = c["sd"].copy()
            sd[idx] = math.sqrt(float(np.sum((nn - 1) * ss**2) / np.sum(nn - 1)))
        undefined = []
        out = []
        for a in range(len(idx)):
            for b in range(a + 1, len(idx)):
                i, j = idx[a], idx[b]
                if table.layout == "arm_binary":
                    te, se, why = _binary(measure, c["events"][i], c["n"][i], c["events"][j], c["n"][j], inc)
                else:
                    te, se, why = _continuous(measure, c["mean"][i], sd[i], c["n"][i], c["mean"][j], sd[j],
                                              c["n"][j], float(np.sum(c["n"][idx])))
                    if why:
                        raise InputError(f"study {s!r}: {why}", file=table.path, line=table.line_of(i), column="n")
                if why:
                    undefined.append((trt[i], trt[j], why))
                else:
                    out.append((trt[i], trt[j], te, se))
        if undefined and out:
            refused.append((s, undefined))
            continue
        if undefined:
            reason = "; ".join(f"{a} vs {b}: {why}" for a, b, why in undefined)
            dropped.append((s, reason))
            continue
        for t1, t2, te, se in out:
            rows_s.append(s)
            rows_t1.append(t1)
            rows_t2.append(t2)
            te_l.append(te)
            se_l.append(se)
    if refused:
        s, und = refused[0]
        what = "; ".join(f"{a} vs {b} ({why})" for a, b, why in und)
        others = f" (also {', '.join(repr(r[0]) for r in refused[1:])})" if len(refused) > 1 else ""
        raise InputError(f"multi-arm study {s!r}{others} loses comparisons whose {measure} is undefined: {what}; "
                         f"its remaining comparisons do not make a complete study (netmeta refuses it too): leave "
                         f"the study out or combine the arms without events", file=table.path, line=line[s],
                         column="events")
    kept = set(rows_s)
    corrected = [s for s in corrected if s in kept]
    part: dict = {}  # participants per treatment, over the studies analysed
    for i, (s, t) in enumerate(zip(table.text["study"], trt)):
        if s in kept:
            part[t] = part.get(t, 0.0) + float(c["n"][i])
    notes = []
    if corrected:
        notes.append(f"{cc:g} added to every cell of {len(corrected)} stud{'y' if len(corrected) == 1 else 'ies'}"
                     f" with an arm without events or with only events: " + ", ".join(corrected))
    if dropped:
        notes.append(f"{len(dropped)} stud{'y' if len(dropped) == 1 else 'ies'} left out (" +
                     "; ".join(f"{s}: {r}" for s, r in dropped) + ")")
    if not rows_s:
        raise InputError(f"{measure} is undefined for every study", file=table.path)
    return Comparisons(tuple(rows_s), tuple(rows_t1), tuple(rows_t2), np.array(te_l), np.array(se_l), measure,
                       line, part, tuple(dropped), tuple(notes), table.path)


def _binary(measure, e1, n1, e2, n2, inc):
    """One comparison of two arms (meta's metabin, inverse variance, the study's increment ``inc``)."""
    a, b, c, d = e1, n1 - e1, e2, n2 - e2
    if measure == "OR":
        if (e1 == 0 and e2 == 0) or (b == 0 and d == 0):
            return None, None, f"{'no events' if e1 == 0 else 'only events'} in both arms: OR undefined"
        te = math.log((a + inc) * (d + inc) / ((b + inc) * (c + inc)))
        se = math.sqrt(1 / (a + inc) + 1 / (b + inc) + 1 / (c + inc) + 1 / (d + inc))
    elif measure == "RR":
        if e1 == 0 and e2 == 0:
            return None, None, "no events in both arms: RR undefined"
        allevents = b == 0 and d == 0
        ia = 0.0 if allevents else inc
        te = math.log((a + inc) / (n1 + inc)) - math.log((c + inc) / (n2 + inc))
        se = math.sqrt(1 / (a + ia) - 1 / (n1 + inc) + 1 / (c + ia) - 1 / (n2 + inc))
    else:  # RD
        te = e1 / n1 - e2 / n2
        se = math.sqrt((a + inc) * (b + inc) / (n1 + 2 * inc) ** 3 + (c + inc) * (d + inc) / (n2 + 2 * inc) ** 3)
        if not se > 0:
            return None, None, "no events (or only events) in both arms without an increment: RD has no variance"
    return te, se, None


def _continuous(measure, m1, s1, n1, m2, s2, n2, n_study):
    if measure == "MD":
        return m1 - m2, math.sqrt(s1**2 / n1 + s2**2 / n2), None
    # meta 8.2's pairwise() calls metacont with method.smd = "Cohen": d with the pooled SD, no
    # small-sample correction; then replaces the variance by 1/n1 + 1/n2 + d^2 / (2 N) with N the
    # study's total sample size (Crippa & Orsini 2016, eq. 5; N = n1 + n2 for a two-arm study).
    N = n1 + n2
    if N <= 2:
        return None, None, f"a standardised mean difference needs more than 2 participants in two arms, found {N:g}"
    sp = math.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / (N - 2))
    d = (m1 - m2) / sp
    return d, math.sqrt(1 / n1 + 1 / n2 + d**2 / (2 * n_study)), None


def _contrasts(table, measure):
    study, t1, t2 = table.text["study"], table.text["treat1"], table.text["treat2"]
    yi, se = table.columns["yi"], table.columns["se"]
    line = {}
    for s, idx in _groups(study).items():
        line[s] = table.line_of(idx[0])
        trts = list(dict.fromkeys([t1[i] for i in idx] + [t2[i] for i in idx]))
        k = len(trts)
        if len(idx) != k * (k - 1) // 2:
            raise InputError(f"study {s!r} has {len(idx)} comparison(s) of {k} treatments; a study of k "
                             f"treatments gives all k(k-1)/2 pairs (two-arm: 1, three-arm: 3, four-arm: 6)",
                             file=table.path, line=table.line_of(idx[0]), column="treat1")
        if k > 2:
            # Potentials by least squares: the given effects of a multi-arm study must be consistent.
            pos = {t: a for a, t in enumerate(trts)}
            B = np.zeros((len(idx), k))
            for r, i in enumerate(idx):
                B[r, pos[t1[i]]], B[r, pos[t2[i]]] = 1.0, -1.0
            x = np.linalg.lstsq(B, yi[idx], rcond=None)[0]
            res = np.abs(yi[idx] - B @ x)
            if res.max() > TOL_MULTIARM:
                r = int(res.argmax())
                raise InputError(f"the effects of multi-arm study {s!r} are inconsistent (a vs c must equal a vs b "
                                 f"plus b vs c; off by {res.max():.3g} here, tolerance {TOL_MULTIARM:g})",
                                 file=table.path, line=table.line_of(idx[r]), column="yi")
    return Comparisons(tuple(study), tuple(t1), tuple(t2), yi.copy(), se.copy(), measure, line, {}, (), (),
                       table.path)


# ------------------------------------------------------------------------------------- the network

@dataclass(frozen=True)
class Network:
    """The comparisons as a graph: treatments sorted (netmeta's order), edges oriented from the
    treatment earlier in that order (``t1 < t2``, effect of t1 against t2), grouped by study."""

    treatments: tuple
    studies: tuple
    t1: np.ndarray
    t2: np.ndarray
    te: np.ndarray
    se: np.ndarray
    sid: np.ndarray  # study index of each edge
    arms: tuple  # per study: the treatment indices of its arms (sorted)
    comparisons: Comparisons

    @property
    def n(self) -> int:
        return len(self.treatments)

    @property
    def m(self) -> int:
        return len(self.te)

    @property
    def df(self) -> int:
        return int(sum(len(a) - 1 for a in self.arms)) - (self.n - 1)

    def designs(self) -> tuple:
        """Each study's design: its treatments joined by ':' (netmeta's ``designs()``)."""
        return tuple(":".join(self.treatments[t] for t in a) for a in self.arms)


def build_network(comp: Comparisons) -> Network:
    """Orient and index the comparisons; refuse a disconnected network, naming its parts."""
    treatments = tuple(sorted(set(comp.treat1) | set(comp.treat2), key=r_order))
    pos = {t: i for i, t in enumerate(treatments)}
    a = np.array([pos[t] for t in comp.treat1])
    b = np.array([pos[t] for t in comp.treat2])
    flip = a > b
    te = np.where(flip, -comp.te, comp.te)
    t1, t2 = np.where(flip, b, a), np.where(flip, a, b)
    studies = tuple(dict.fromkeys(comp.study))
    spos = {s: i for i, s in enumerate(studies)}
    sid = np.array([spos[s] for s in comp.study])
    arms = []
    for i in range(len(studies)):
        e = sid == i
        arms.append(tuple(sorted(set(t1[e].tolist()) | set(t2[e].tolist()))))
    parts = _components(len(treatments), t1, t2)
    if len(parts) > 1:
        shown = "; ".join("{" + ", ".join(treatments[t] for t in p) + "}" for p in parts)
        raise InputError(f"the network is disconnected: {len(parts)} separate sub-networks, {shown}; "
                         f"no comparison links them, so they cannot be analysed as one network",
                         file=comp.path)
    if len(treatments) < 2:
        raise InputError("a network needs at least two treatments", file=comp.path)
    return Network(treatments, studies, t1, t2, te, comp.se.copy(), sid, tuple(arms), comp)


# ------------------------------------------------------------------------------------- weights

def _study_edges(net: Network):
    """Per study: the edge indices and the local positions of their two treatments."""
    out = []
    for s, arms in enumerate(net.arms):
        e = np.flatnonzero(net.sid == s)
        loc = {t: i for i, t in enumerate(arms)}
        out.append((e, np.array([loc[t] for t in net.t1[e]]), np.array([loc[t] for t in net.t2[e]]), len(arms)))
    return out


def multiarm_weights(r: np.ndarray, i: np.ndarray, j: np.ndarray, k: int, zero_small: bool = True,
                     zeroed: list | None = None) -> np.ndarray:
    """Edge weights of one k-arm study from its comparisons' variances ``r`` (edges i-j, local arm
    positions): netmeta's ``multiarm()``. The resistance matrix R is doubly centred,
    Lt = -1/2 C R C with C = I - J/k, L = Lt^+ is the study's Laplacian and -L_ij the weight of
    edge i-j. Negative weights contributing less than 0.1% of the total are set to 0, as netmeta does."""
    if k == 2:
        return 1.0 / r
    R = np.zeros((k, k))
    R[i, j] = r
    R[j, i] = r
    C = np.eye(k) - 1.0 / k
    Lt = -0.5 * C @ R @ C
    J = np.full((k, k), 1.0 / k)
    L = np.linalg.inv(Lt - J) + J  # netmeta's invmat: the pseudoinverse of a Laplacian-like matrix
    W = -L
    if zero_small:
        low = np.tril_indices(k, -1)
        total = np.abs(W[low]).sum()
        small = (W < 0) & (np.abs(W) / total < 0.001)
        if zeroed is not None and small[i, j].any():
            zeroed.append(int(small[i, j].sum()))
        W[small] = 0.0
    return W[i, j]


def edge_weights(net: Network, tau2: float = 0.0, zero_small: bool = True,
                 edges: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, int]] | None = None,
                 zeroed: list | None = None) -> np.ndarray:
    """Every edge's weight with ``tau2`` added to the comparison variances (netmeta's ``prepare()``).
    ``zeroed``: if given, collects the names of multi-arm studies whose small negative weights were set to 0."""
    edges = _study_edges(net) if edges is None else edges
    r = net.se**2 + tau2
    w = np.empty(net.m)
    for s, (e, i, j, k) in enumerate(edges):
        hit: list = []
        w[e] = multiarm_weights(r[e], i, j, k, zero_small, hit)
        if hit and zeroed is not None:
            zeroed.append(net.studies[s])
    return w


def laplacian(net: Network, w: np.ndarray) -> np.ndarray:
    n = net.n
    L = np.zeros((n, n))
    np.add.at(L, (net.t1, net.t1), w)
    np.add.at(L, (net.t2, net.t2), w)
    np.add.at(L, (net.t1, net.t2), -w)
    np.add.at(L, (net.t2, net.t1), -w)
    return L


def pinv_laplacian(L: np.ndarray) -> np.ndarray:
    """Moore-Penrose pseudoinverse of a connected graph's Laplacian, (L - J/n)^-1 + J/n (netmeta's invmat)."""
    n = L.shape[0]
    J = np.full((n, n), 1.0 / n)
    return np.linalg.inv(L - J) + J


@dataclass(frozen=True)
class GraphFit:
    """One fit of the graph-theoretical model at given edge weights (analysis scale).

    ``te[i, j]``: effect of treatment i against j; ``se[i, j]`` its standard error; ``x``: the
    potentials; ``Lplus``: the pseudoinverse of the weighted Laplacian; ``Q``: the weighted
    residual sum of squares over the edges; ``w``: the edge weights."""

    te: np.ndarray
    se: np.ndarray
    x: np.ndarray
    Lplus: np.ndarray
    Q: float
    w: np.ndarray


def fit_graph(net: Network, w: np.ndarray) -> GraphFit:
    L = laplacian(net, w)
    Lp = pinv_laplacian(L)
    rhs = np.zeros(net.n)
    np.add.at(rhs, net.t1, w * net.te)
    np.add.at(rhs, net.t2, -w * net.te)
    x = Lp @ rhs
    d = np.diag(Lp)
    var = d[:, None] + d[None, :] - 2 * Lp
    np.fill_diagonal(var, 0.0)
    resid = net.te - (x[net.t1] - x[net.t2])
    Q = float(np.sum(w * resid**2))
    return GraphFit(te=x[:, None] - x[None, :], se=np.sqrt(np.maximum(var, 0.0)), x=x, Lplus=Lp, Q=Q, w=w)


def study_laplacians(net: Network, w: np.ndarray,
                     edges: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, int]] | None = None,
                     ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per study: (arm treatment indices, local k x k Laplacian, local right-hand side B' W y)."""
    edges = _study_edges(net) if edges is None else edges
    out = []
    for s, (e, i, j, k) in enumerate(edges):
        Ls = np.zeros((k, k))
        np.add.at(Ls, (i, i), w[e])
        np.add.at(Ls, (j, j), w[e])
        np.add.at(Ls, (i, j), -w[e])
        np.add.at(Ls, (j, i), -w[e])
        g = np.zeros(k)
        np.add.at(g, i, w[e] * net.te[e])
        np.add.at(g, j, -w[e] * net.te[e])
        out.append((np.asarray(net.arms[s]), Ls, g))
    return out


def tau2_dl(net: Network, fit: GraphFit,
            edges: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, int]] | None = None) -> float:
    """netmeta's DerSimonian-Laird-type tau^2: (Q - df) / tr((I - H)(B B' o E / 2) W), truncated at 0.

    The trace is computed per study as (tr(L_s) - tr(L+ L_s L_s)) / 2 with L_s the study's Laplacian
    (the same number: B_s' W_s B_s = L_s and (B B' o E) is block-diagonal by study)."""
    df = net.df
    if df <= 0:
        return math.nan
    den = 0.0
    for arms, Ls, _ in study_laplacians(net, fit.w, edges):
        Lp = fit.Lplus[np.ix_(arms, arms)]
        den += 0.5 * (np.trace(Ls) - np.trace(Lp @ Ls @ Ls))
    return max(0.0, (fit.Q - df) / den)


# ------------------------------------------------------------------------------------- REML

class _Contrasts:
    """The model in contrast form for likelihoods: per study its contrasts against its first arm,
    their covariance (the inverse of the study's reduced Laplacian) and design rows; the reference
    treatment's column is dropped (estimable parameters are the n - 1 effects against it).

    Studies are stacked by number of arms, so that every likelihood evaluation is a few batched
    (studies x m x m) operations on the block-diagonal covariance, never an N x N matrix."""

    def __init__(self, net: Network, w0: np.ndarray, reference: int):
        keep = [t for t in range(net.n) if t != reference]
        col = {t: c for c, t in enumerate(keep)}
        groups: dict = {}
        for arms, Ls, g in study_laplacians(net, w0):
            k = len(arms)
            red = Ls[1:, 1:]
            S = np.linalg.inv(red)
            y = S @ g[1:]  # the study's own GLS contrasts against its first arm
            X = np.zeros((k - 1, net.n - 1))
            for a in range(1, k):
                if arms[a] != reference:
                    X[a - 1, col[arms[a]]] += 1.0
                if arms[0] != reference:
                    X[a - 1, col[arms[0]]] -= 1.0
            groups.setdefault(k - 1, []).append((y, X, S))
        # per size m: y (s, m), X (s, m, p), S (s, m, m), D (m, m) = (I + J) / 2
        self.blocks = [(np.array([b[0] for b in bl]), np.array([b[1] for b in bl]), np.array([b[2] for b in bl]),
                        0.5 * (np.eye(m) + 1.0)) for m, bl in sorted(groups.items())]
        self.p = net.n - 1

    def _parts(self, tau2):
        """Sums over studies at tau2: log|V|, A = X'V^-1 X, b = X'V^-1 y, tr(V^-1 D), M = X'V^-1 D V^-1 X,
        and the per-block V^-1."""
        p = self.p
        logdet, tr1 = 0.0, 0.0
        A, b, M = np.zeros((p, p)), np.zeros(p), np.zeros((p, p))
        inv = []
        for y, X, S, D in self.blocks:
            V = S + tau2 * D
            Vi = np.linalg.inv(V)
            logdet += float(np.linalg.slogdet(V)[1].sum())
            ViX = Vi @ X
            A += np.einsum("sij,sik->jk", X, ViX)
            b += np.einsum("sij,si->j", ViX, y)
            tr1 += float(np.einsum("sij,ji->", Vi, D))
            M += np.einsum("sij,ik,skl->jl", ViX, D, ViX)
            inv.append(Vi)
        return logdet, A, b, tr1, M, inv

    def _resid(self, A, b, inv):
        beta = np.linalg.solve(A, b)
        out = []
        for (y, X, _, _), Vi in zip(self.blocks, inv):
            r = y - X @ beta
            out.append((r, np.einsum("sij,sj->si", Vi, r)))  # r and V^-1 r (= P y) per study
        return out

    def reml_loglik(self, tau2: float) -> float:
        """Restricted log-likelihood up to a constant (Harville 1977): -1/2 (log|V| + log|X'V^-1 X| + r'V^-1 r)."""
        logdet, A, b, _, _, inv = self._parts(tau2)
        quad = sum((float(np.sum(r * Pr)) for r, Pr in self._resid(A, b, inv)), 0.0)
        return -0.5 * (logdet + float(np.linalg.slogdet(A)[1]) + quad)

    def reml_score(self, tau2: float) -> float:
        """d loglik / d tau^2 = -1/2 (tr(P D) - y'P D P y), tr(P D) = tr(V^-1 D) - tr(A^-1 M)."""
        _, A, b, tr1, M, inv = self._parts(tau2)
        trPD = tr1 - float(np.trace(np.linalg.solve(A, M)))
        q = sum((float(np.einsum("si,ij,sj->", Pr, D, Pr))
                 for (Pr, (_, _, _, D)) in zip((Pr for _, Pr in self._resid(A, b, inv)), self.blocks)), 0.0)
        return -0.5 * (trPD - q)

    def mean_variance(self) -> float:
        return float(np.mean(np.concatenate([np.einsum("sii->si", S).ravel() for _, _, S, _ in self.blocks])))


def tau2_reml(net: Network, w0: np.ndarray, reference: int = 0) -> tuple[float, _Contrasts]:
    """REML tau^2, the root of the restricted score on [0, inf) (0 when the score is negative there)."""
    from scipy.optimize import brentq

    model = _Contrasts(net, w0, reference)
    if model.reml_score(0.0) <= 0:
        return 0.0, model
    hi = max(model.mean_variance(), 1e-8)
    while model.reml_score(hi) > 0:
        hi *= 4
        if hi > 1e12:
            raise InputError("REML tau^2 is unbounded: the likelihood keeps rising", option="--method")
    return float(brentq(model.reml_score, 0.0, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500)), model


# ------------------------------------------------------------------------------------- the fit

@dataclass(frozen=True)
class NetworkFit:
    """Common- and random-effects fits of one network (analysis scale).

    ``common`` and ``random``: GraphFit at the common-effect weights and at tau^2 added;
    ``tau2``: the heterogeneity variance (``method``: DL or REML; NaN with no degrees of freedom);
    ``Q``/``df``: the common-effect heterogeneity statistic; ``I2``: percent, with its 95% interval."""

    network: Network
    reference: str
    method: str
    common: GraphFit
    random: GraphFit
    tau2: float
    Q: float
    df: int
    I2: float
    I2_low: float
    I2_high: float
    level: float = 0.95
    reml_loglik: float | None = None
    notes: tuple = ()

    @property
    def treatments(self) -> tuple:
        return self.network.treatments

    def model(self, name: str) -> GraphFit:
        return self.common if name == "common" else self.random


def i2_interval(Q: float, df: int, level: float = 0.95) -> tuple[float, float, float]:
    """I^2 (percent) and its interval from H (Higgins & Thompson 2002; meta's ``isquared``/``calcH``)."""
    if df < 1:
        return math.nan, math.nan, math.nan
    from ..dist import norm_isf

    k = df + 1
    H = math.sqrt(Q / df)
    if Q > k:
        se = 0.5 * (math.log(Q) - math.log(df)) / (math.sqrt(2 * Q) - math.sqrt(2 * k - 3))
    elif k > 2:
        se = math.sqrt(1 / (2 * (k - 2)) * (1 - 1 / (3 * (k - 2) ** 2)))
    else:
        se = math.nan
    z = float(norm_isf((1 - level) / 2))
    lh = math.log(max(H, 1.0))

    def t(h):
        return 100 * (h**2 - 1) / h**2

    return t(math.exp(lh)), t(max(math.exp(lh - z * se), 1.0)), t(max(math.exp(lh + z * se), 1.0))


def fit_network(comp: Comparisons, reference: str | None = None, method: str = "DL",
                tau2: float | None = None) -> NetworkFit:
    """Fit the common- and random-effects graph-theoretical models (tau^2 by ``method``, or fixed
    at ``tau2``). ``reference``: the treatment the estimates are against (default the first in
    sorted order, as netmeta)."""
    method = str(method).strip().upper()
    if method not in TAU2_METHODS:
        raise InputError(f"unknown tau^2 method {method!r} for a network; choose DL or REML", option="--method")
    net = build_network(comp)
    if reference is None:
        reference = net.treatments[0]
    if reference not in net.treatments:
        raise InputError(f"treatment {reference!r} is not in the network; treatments are: "
                         + ", ".join(net.treatments), option="--reference")
    edges = _study_edges(net)
    zeroed: list = []
    w0 = edge_weights(net, 0.0, edges=edges, zeroed=zeroed)
    common = fit_graph(net, w0)
    df = net.df
    loglik = None
    notes = []
    if tau2 is not None:
        t2 = float(tau2)
        method = "fixed"
    elif method == "DL" or df <= 0:
        t2 = tau2_dl(net, common, edges)
    else:
        t2, model = tau2_reml(net, w0, net.treatments.index(reference))
        loglik = model.reml_loglik(t2)
    if df <= 0:
        notes.append("no degrees of freedom for heterogeneity (every comparison is estimated once): tau^2, I^2 "
                     "and Q's test are not available; the random-effects model equals the common-effect model")
    random = fit_graph(net, edge_weights(net, 0.0 if math.isnan(t2) else t2, edges=edges, zeroed=zeroed))
    if zeroed:
        names = ", ".join(dict.fromkeys(zeroed))
        notes.append(f"small negative weights (under 0.1% of the study's total) of multi-arm studies set to 0, as "
                     "netmeta's multiarm() does (their comparisons' variances are not those of one set of arms): "
                     f"{names}")
    I2, lo, hi = i2_interval(common.Q, df)
    return NetworkFit(net, reference, method, common, random, t2, common.Q, df, I2, lo, hi,
                      reml_loglik=loglik, notes=tuple(comp.notes) + tuple(notes))


__all__ = ["MEASURES", "Comparisons", "pairwise", "Network", "build_network", "NetworkFit", "fit_network",
           "GraphFit", "fit_graph", "edge_weights", "multiarm_weights", "tau2_dl", "tau2_reml", "i2_interval"]
