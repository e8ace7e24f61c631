"""Multilevel and multivariate meta-analysis: metafor's ``rma.mv`` (REML and ML).

The model (Viechtbauer 2010, J Stat Softw 36(3); metafor's ``rma.mv``) is

    y = X beta + sum_c Z_c u_c + e,   e ~ N(0, V),   u_c ~ N(0, G_c),

with V the known sampling covariance (``vi`` on its diagonal) and one variance component per
random term: ``~ 1 | a`` (sigma^2 on the levels of a; ``~ 1 | a/b`` is two terms, a and a/b) and
``~ inner | outer`` with a structure for the inner levels within each outer level (CS, HCS, UN,
DIAG, AR; metafor's ``struct``). The marginal covariance M = V + sum_c Z_c G_c Z_c' is block
diagonal: the rows linked by any grouping (or by V) form one block. Every computation runs block
by block, blocks of one size stacked into (blocks x n x n) arrays, so the cost is linear in the
number of blocks and no k x k matrix is formed.

M is linear in a set of *elementary* coefficients phi (each sigma^2, and each distinct entry of a
G): M = V + sum_a phi_a E_a. The (restricted) log-likelihood, its gradient and its expected
information in phi are (Harville 1977, JASA 72:320; Searle, Casella & McCulloch 1992, ch. 6)

    l_ML   = -1/2 (k log 2 pi + log|M| + r' M^-1 r)
    l_REML = -1/2 ((k - p) log 2 pi + log|M| + log|X'M^-1 X| + r' M^-1 r) + 1/2 log|X'X|
    dl/dphi_a = 1/2 (r'W E_a W r - tr(P E_a)),     I_ab = 1/2 tr(P E_a P E_b),

with W = M^-1, P = W - W X (X'WX)^-1 X'W (ML: P replaced by W in the trace), r = y - X beta_GLS;
the REML constant terms are metafor's (``logLik`` with ``REMLf = TRUE``). The structure's own
parameters theta (variances, correlations, or a Cholesky factor for UN) map to phi by a Jacobian.

Maximisation: variances are bounded below by 0 and correlations to [-1, 1] (UN: a Cholesky factor
with a non-negative diagonal), so a boundary is an ordinary point of the parameter space, not a
limit at infinity as on the log scale. Projected Fisher scoring with step halving (the likelihood
never decreases) until a step moves no parameter by more than 1e-10 (relative); where scoring stalls,
Newton steps on the free parameters with the observed information (a finite difference of the
analytic gradient). A second starting point is tried for structured terms (correlations) and when
the first answer lies on a boundary; the highest likelihood wins. A fit that cannot be made says why.

Validated against metafor 3.8.1 (tests/fixtures/multilevel/generate.R, tests/validation/test_metafor_rma_mv.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from .effects import EffectSizes

if TYPE_CHECKING:
    import pandas as pd

STRUCTS = ("CS", "HCS", "UN", "DIAG", "AR")
MV_METHODS = ("REML", "ML")
MAX_BLOCK = 4000  # rows in one block of M: beyond this the dense block algebra would be too slow
_NAME = re.compile(r"^[A-Za-z_.][A-Za-z0-9_.]*$")
LOG2PI = math.log(2 * math.pi)


# ---------------------------------------------------------------- random terms

@dataclass(frozen=True)
class RandomTerm:
    """A parsed ``~ 1 | a/b`` (``inner`` None, ``outer`` the nesting path) or ``~ inner | outer``."""

    formula: str
    inner: str | None
    outer: tuple


def parse_random(formula: str) -> RandomTerm:
    """Parse metafor's formula syntax for one random term: ``~ 1 | a``, ``~ 1 | a/b/c`` or
    ``~ inner | outer``."""
    text = str(formula).strip()
    where: dict[str, Any] = {"option": "--random"}
    if not text.startswith("~") or text.count("|") != 1:
        raise InputError(f"random term {formula!r} is not of the form '~ 1 | COL', '~ 1 | A/B' or "
                         "'~ INNER | OUTER'", **where)
    lhs, rhs = (p.strip() for p in text[1:].split("|"))
    outer = tuple(p.strip() for p in rhs.split("/"))
    for name in outer + (() if lhs == "1" else (lhs,)):
        if not _NAME.match(name):
            raise InputError(f"random term {formula!r}: {name!r} is not a column name", **where)
    if lhs != "1" and len(outer) > 1:
        raise InputError(f"random term {formula!r}: an '~ inner | outer' term takes one outer column "
                         "(nest with '~ 1 | a/b' terms)", **where)
    return RandomTerm(text, None if lhs == "1" else lhs, outer)


def _levels_sorted(values):
    """Distinct values in R's factor order: numeric order when every value is a number, else
    string order (R sorts character levels by the locale; C-locale order here)."""
    distinct = sorted(set(values))
    try:
        return sorted(distinct, key=float)
    except ValueError:
        return distinct


def _codes(values) -> tuple[np.ndarray, list]:
    """Integer code per row and the level labels (R factor coding: equal text, equal level)."""
    levels = _levels_sorted(values)
    index = {v: i for i, v in enumerate(levels)}
    return np.fromiter((index[v] for v in values), dtype=np.intp, count=len(values)), levels


@dataclass
class _Component:
    """One variance component of the model (internal)."""

    kind: str  # "sigma2" or a struct ("UNR": UN by variances and correlations, for profiling a rho)
    name: str  # the factor: "district", "district/school", or "outcome | study"
    codes: np.ndarray  # sigma2: level per row; struct: outer level per row
    nlevels: int
    inner: np.ndarray | None = None  # struct: inner level 0..m-1 per row
    inner_levels: list = field(default_factory=list)
    k_lvl: np.ndarray | None = None  # struct: rows per inner level

    @property
    def m(self) -> int:
        return len(self.inner_levels)

    def n_theta(self) -> int:
        m = self.m
        return {"sigma2": 1, "CS": 2, "AR": 2, "HCS": m + 1, "DIAG": m, "UN": m * (m + 1) // 2,
                "UNR": m * (m + 1) // 2}[self.kind]

    def pairs(self):
        """The elementary matrices' index pairs of the inner levels (struct components)."""
        m = self.m
        if self.kind in ("CS",):
            return ["same", "other"]
        if self.kind == "AR":
            return [("lag", d) for d in range(m)]
        if self.kind == "DIAG":
            return [(j, j) for j in range(m)]
        return [(j, j) for j in range(m)] + [(a, b) for b in range(m) for a in range(b + 1, m)]


# ---------------------------------------------------------------- sampling covariance

@dataclass(frozen=True)
class SamplingCov:
    """A known sampling covariance V as its within-block entries (both triangles and the diagonal):
    V[i, j] = ``values`` at (``rows``, ``cols``); zero elsewhere. ``cluster`` names the rows' blocks."""

    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    cluster: np.ndarray | None = None
    description: str = "diagonal (vi)"


def v_diag(vi: Sequence[float] | np.ndarray) -> SamplingCov:
    vi = np.asarray(vi, float)
    i = np.arange(len(vi))
    return SamplingCov(i, i, vi)


def _cluster_pairs(cluster_codes):
    """All ordered pairs (i, j) of rows in the same cluster, i != j."""
    order = np.argsort(cluster_codes, kind="stable")
    c = cluster_codes[order]
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    sizes = np.diff(np.r_[starts, len(c)])
    ii, jj = [], []
    for n in np.unique(sizes):
        if n < 2:
            continue
        st = starts[sizes == n]
        a, b = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        off = a != b
        ii.append((st[:, None] + a[off][None, :]).ravel())
        jj.append((st[:, None] + b[off][None, :]).ravel())
    if not ii:
        return np.zeros(0, np.intp), np.zeros(0, np.intp), order
    return order[np.concatenate(ii)], order[np.concatenate(jj)], order


def vcalc(vi: Sequence[float] | np.ndarray, cluster: Sequence[Any], rho: float) -> SamplingCov:
    """V with covariance rho sqrt(vi vj) between rows of one cluster (metafor's ``vcalc(vi, cluster,
    obs, rho)`` for rows that are distinct observations); rows of different clusters are independent."""
    vi = np.asarray(vi, float)
    rho = float(rho)
    if not -1 < rho < 1:
        raise InputError(f"the within-cluster sampling correlation must lie in (-1, 1), got {rho}", option="--v-rho")
    codes, _ = _codes(tuple(map(str, cluster)))
    i, j, _ = _cluster_pairs(codes)
    d = np.arange(len(vi))
    return SamplingCov(np.r_[d, i], np.r_[d, j], np.r_[vi, rho * np.sqrt(vi[i] * vi[j])], codes,
                       f"rho = {rho:g} within clusters")


def v_from_columns(vi: Sequence[float] | np.ndarray, cluster: Sequence[Any], columns: Sequence[Sequence[float]],
                   names: Sequence[str] = (), path: str | None = None,
                   lines: Sequence[int | None] | None = None) -> SamplingCov:
    """V from covariance columns (berkey1998's ``v1i, v2i``): in a cluster's j-th row (file order),
    column i holds its covariance with the cluster's i-th row; the diagonal is ``vi``. Columns
    beyond a cluster's size are ignored; asymmetric entries are an error. ``lines``: each row's line in
    ``path``, for the messages."""
    vi = np.asarray(vi, float)
    line = (lambda r: lines[r]) if lines is not None else (lambda r: None)
    cols = [np.asarray(c, float) for c in columns]
    codes, levels = _codes(tuple(map(str, cluster)))
    k = len(vi)
    pos = np.zeros(k, np.intp)
    seen: dict = {}
    for r, c in enumerate(codes):
        pos[r] = seen.get(c, 0)
        seen[c] = pos[r] + 1
    size = np.bincount(codes)[codes]
    if size.max() > len(cols):
        worst = int(np.argmax(size))
        raise InputError(f"cluster {levels[codes[worst]]!r} has {size.max()} rows but only {len(cols)} covariance "
                         "columns are given", file=path, option="--v-columns")
    i, j, _ = _cluster_pairs(codes)
    # V[i, j]: row i's column for the position of row j in their cluster
    vals = np.array([cols[pos[jj]][ii] for ii, jj in zip(i, j)]) if len(i) else np.zeros(0)
    diag_given = np.array([cols[pos[r]][r] for r in range(k)])
    if np.any(np.isnan(vals)):
        bad = int(i[np.isnan(vals)][0])
        raise InputError(f"missing covariance with row {int(pos[j[np.isnan(vals)][0]]) + 1} of its cluster",
                         file=path, line=line(bad), option="--v-columns")
    mismatch = np.flatnonzero(~np.isclose(diag_given, vi, rtol=1e-8, atol=0) & ~np.isnan(diag_given))
    if len(mismatch):
        r = int(mismatch[0])
        raise InputError(f"covariance column {names[pos[r]] if names else pos[r] + 1} gives "
                         f"{diag_given[r]:g} for the row's own variance, vi is {vi[r]:g}", file=path,
                         line=line(r), option="--v-columns")
    # symmetry: V[i, j] == V[j, i]
    lookup = dict(zip(zip(i.tolist(), j.tolist()), vals.tolist()))
    for (a, b), x in lookup.items():
        if not math.isclose(x, lookup[(b, a)], rel_tol=1e-8, abs_tol=1e-15):
            raise InputError(f"covariance {x:g} with the row on line {line(b)}, which gives {lookup[(b, a)]:g} "
                             "back", file=path, line=line(a), option="--v-columns")
    d = np.arange(k)
    return SamplingCov(np.r_[d, i], np.r_[d, j], np.r_[vi, vals], codes,
                       "from columns " + ",".join(names) if names else "from columns")


def sampling_cov(es: EffectSizes, cluster: str | None = None, rho: float | None = None,
                 columns: Sequence[str] = ()) -> SamplingCov:
    """V for the rows of ``es`` from its table: blocks of rows sharing a value of ``cluster`` (file order),
    filled with the constant correlation ``rho`` (``vcalc``) or from covariance ``columns``
    (``v_from_columns``); without ``cluster``, diag(vi)."""
    if cluster is None:
        if rho is not None or columns:
            raise InputError("--v-rho and --v-columns need --v-cov-cluster COL", option="--v-cov-cluster")
        return v_diag(es.vi)
    if (rho is None) == (not columns):
        raise InputError("--v-cov-cluster needs exactly one of --v-rho R or --v-columns C1,C2,...",
                         option="--v-cov-cluster")
    values = _column_values(es, cluster)
    if rho is not None:
        return vcalc(es.vi, values, rho)
    table = es.table
    cols = []
    for name in columns:
        raw = table.column(name)
        out = []
        for r, text in enumerate(raw):
            t = str(text).strip()
            if t.lower() in ("", "na", "nan"):
                out.append(math.nan)
                continue
            try:
                out.append(float(t))
            except ValueError:
                raise InputError(f"not a number: {t!r}", file=table.path, line=table.line_of(r),
                                 column=name) from None
        cols.append(out)
    return v_from_columns(es.vi, values, cols, names=tuple(columns), path=table.path,
                          lines=[table.line_of(r) for r in range(es.k)])


def v_dense(V: np.ndarray | Sequence[Sequence[float]]) -> SamplingCov:
    """A dense k x k sampling covariance as its nonzero entries."""
    V = np.asarray(V, float)
    if V.ndim != 2 or V.shape[0] != V.shape[1] or not np.allclose(V, V.T, rtol=1e-10, atol=0):
        raise InputError("V must be a symmetric k x k matrix")
    i, j = np.nonzero(V)
    d = np.arange(len(V))
    extra = i != j
    return SamplingCov(np.r_[d, i[extra]], np.r_[d, j[extra]], np.r_[np.diag(V), V[i[extra], j[extra]]],
                       None, "given matrix")


# ---------------------------------------------------------------- block layout

class _Class:
    """The blocks of one size n, stacked: rows (B, n), y (B, n), X (B, n, p), V (B, n, n) and the
    elementary matrices E (a, B, n, n)."""

    __slots__ = ("B", "E", "V", "X", "n", "rows", "y")

    def __init__(self, rows, y, X, V, E):
        self.rows, self.y, self.X, self.V, self.E = rows, y, X, V, E
        self.B, self.n = rows.shape


def _blocks(k, link_codes):
    """Connected components of the rows linked by equal codes in any of ``link_codes``: each row's
    label is lowered to the smallest label of its levels until nothing changes (a few passes for nested
    groupings; NumPy only, so the command line does not import scipy.sparse)."""
    label = np.arange(k)
    for _ in range(k + 1):
        before = label
        for codes in link_codes:
            low = np.full(int(codes.max()) + 1, k, dtype=label.dtype)
            np.minimum.at(low, codes, label)
            label = np.minimum(label, low[codes])
        # pointer jumping: a label is a row whose own label may be lower still
        while True:
            nxt = label[label]
            if np.array_equal(nxt, label):
                break
            label = nxt
        if np.array_equal(label, before):
            break
    roots, label = np.unique(label, return_inverse=True)
    return len(roots), label.reshape(-1)


def _elementary(comp: _Component, rows):
    """The elementary matrices of ``comp`` on blocks of rows (B, n): list of (B, n, n) arrays."""
    C = comp.codes[rows]
    same = C[:, :, None] == C[:, None, :]
    if comp.kind == "sigma2":
        return [same.astype(float)]
    assert comp.inner is not None
    Iv = comp.inner[rows]
    Il, Im = Iv[:, :, None], Iv[:, None, :]
    out = []
    for pair in comp.pairs():
        if pair == "same":
            e = same & (Il == Im)
        elif pair == "other":
            e = same & (Il != Im)
        elif pair[0] == "lag":
            e = same & (np.abs(Il - Im) == pair[1])
        else:
            a, b = pair
            e = same & (((Il == a) & (Im == b)) | ((Il == b) & (Im == a)))
        out.append(e.astype(float))
    return out


# ---------------------------------------------------------------- parameters

def _theta_layout(comps):
    """Bounds and labels of theta, component by component."""
    lo: list[float] = []
    hi: list[float] = []
    kinds: list[str] = []
    for c in comps:
        m = c.m
        if c.kind == "sigma2":
            lo, hi, kinds = lo + [0.0], hi + [np.inf], kinds + ["var"]
        elif c.kind in ("CS", "AR"):
            lo, hi, kinds = lo + [0.0, -1.0], hi + [np.inf, 1.0], kinds + ["var", "cor"]
        elif c.kind == "HCS":
            lo, hi, kinds = lo + [0.0] * m + [-1.0], hi + [np.inf] * m + [1.0], kinds + ["var"] * m + ["cor"]
        elif c.kind == "DIAG":
            lo, hi, kinds = lo + [0.0] * m, hi + [np.inf] * m, kinds + ["var"] * m
        elif c.kind == "UNR":
            n_cor = m * (m - 1) // 2
            lo, hi, kinds = lo + [0.0] * m + [-1.0] * n_cor, hi + [np.inf] * m + [1.0] * n_cor, \
                kinds + ["var"] * m + ["cor"] * n_cor
        else:  # UN: Cholesky factor, diagonal first, then the lower triangle column by column
            lo += [0.0] * m + [-np.inf] * (m * (m - 1) // 2)
            hi += [np.inf] * (m * (m + 1) // 2)
            kinds += ["chol"] * m + ["cholo"] * (m * (m - 1) // 2)
    return np.array(lo), np.array(hi), kinds


def _lower_pairs(m):
    """metafor's order of the correlations of an m x m matrix: R's lower.tri, column by column."""
    return [(a, b) for b in range(m) for a in range(b + 1, m)]


def _phi(comps, theta):
    """Elementary coefficients phi and the Jacobian d phi / d theta."""
    phis, blocks = [], []
    t = 0
    for c in comps:
        nt = c.n_theta()
        th = theta[t:t + nt]
        m = c.m
        if c.kind == "sigma2":
            ph, J = th.copy(), np.eye(1)
        elif c.kind == "CS":
            s, r = th
            ph = np.array([s, r * s])
            J = np.array([[1.0, 0.0], [r, s]])
        elif c.kind == "AR":
            s, r = th
            d = np.arange(m)
            ph = s * r ** d
            J = np.column_stack([r ** d, s * d * np.where(d > 0, r ** np.maximum(d - 1, 0), 0.0)])
        elif c.kind == "DIAG":
            ph, J = th.copy(), np.eye(m)
        elif c.kind in ("HCS", "UNR"):  # UNR: one correlation per pair, HCS: one for all
            v = th[:m]
            pairs = _lower_pairs(m)
            rs = th[m:] if c.kind == "UNR" else np.full(len(pairs), th[m])
            sd = np.sqrt(v)
            ph = np.r_[v, [r * sd[a] * sd[b] for r, (a, b) in zip(rs, pairs)]]
            J = np.zeros((len(ph), nt))
            J[:m, :m] = np.eye(m)
            for q, (a, b) in enumerate(pairs):
                r = rs[q]
                # d (r sd_a sd_b) / d v_a = r sd_b / (2 sd_a): one-sided 0 at the boundary v_a = 0
                J[m + q, a] = r * sd[b] / (2 * sd[a]) if sd[a] > 0 else 0.0
                J[m + q, b] = r * sd[a] / (2 * sd[b]) if sd[b] > 0 else 0.0
                J[m + q, m + q if c.kind == "UNR" else m] = sd[a] * sd[b]
        else:  # UN: G = L L'
            L = _chol_matrix(th, m)
            G = L @ L.T
            pairs = [(j, j) for j in range(m)] + _lower_pairs(m)
            ph = np.array([G[a, b] for a, b in pairs])
            idx = [(j, j) for j in range(m)] + _lower_pairs(m)  # theta order of L's entries
            J = np.zeros((len(ph), nt))
            for q, (a, b) in enumerate(pairs):
                for s_, (i, j) in enumerate(idx):
                    # d (L L')_ab / d L_ij = delta_ai L_bj + delta_bi L_aj
                    J[q, s_] = (L[b, j] if a == i else 0.0) + (L[a, j] if b == i else 0.0)
        phis.append(ph)
        blocks.append(J)
        t += nt
    J = np.zeros((sum(b.shape[0] for b in blocks), sum(b.shape[1] for b in blocks)))
    r = c_ = 0
    for b in blocks:
        J[r:r + b.shape[0], c_:c_ + b.shape[1]] = b
        r, c_ = r + b.shape[0], c_ + b.shape[1]
    return np.concatenate(phis), J


def _chol_matrix(th, m):
    L = np.zeros((m, m))
    L[np.diag_indices(m)] = th[:m]
    for q, (a, b) in enumerate(_lower_pairs(m)):
        L[a, b] = th[m + q]
    return L


# ---------------------------------------------------------------- likelihood

class _Model:
    """The data laid out by blocks, and the likelihood machinery."""

    def __init__(self, y, X, V: SamplingCov, comps, method):
        self.y, self.X, self.comps, self.method = y, X, comps, method
        self.k, self.p = X.shape
        # The algebra runs on Q of X = Q R (orthonormal columns): P, the likelihood and the REML term
        # log|X'WX| - log|X'X| = log|Q'WQ| do not depend on the basis, and Q keeps X'WX well conditioned
        # (a moderator such as year ~ 1990 makes X'X's determinant lose 10 digits to cancellation).
        Qx, self.Rx = np.linalg.qr(X)
        self.Rinv = np.linalg.inv(self.Rx)
        links = [c.codes for c in comps]
        if V.cluster is not None:
            links.append(V.cluster)
        # V's own off-diagonal entries link rows too (a dense V given as a matrix)
        if len(V.rows) > self.k and V.cluster is None:
            from scipy.sparse import coo_matrix
            from scipy.sparse.csgraph import connected_components

            g = coo_matrix((np.ones(len(V.rows)), (V.rows, V.cols)), shape=(self.k, self.k))
            links.append(connected_components(g, directed=False)[1].astype(np.intp))
        self.nblocks, label = _blocks(self.k, links) if links else (self.k, np.arange(self.k))
        order = np.argsort(label, kind="stable")
        sizes = np.bincount(label)
        if sizes.max() > MAX_BLOCK:
            raise InputError(f"the random terms (and V) link {sizes.max()} rows into one block of the marginal "
                             f"covariance (crossed groupings?); hatmeta fits block-diagonal models with up to "
                             f"{MAX_BLOCK} rows per block", option="--random")
        starts = np.r_[0, np.cumsum(sizes)[:-1]]
        # position of each row within its block
        pos = np.empty(self.k, np.intp)
        pos[order] = np.arange(self.k) - np.repeat(starts, sizes)
        self.label, self.pos = label, pos
        layout: list = []
        for n in np.unique(sizes):
            bl = np.flatnonzero(sizes == n)
            rows = order[starts[bl][:, None] + np.arange(n)[None, :]]
            layout.append([n, bl, rows])
        # V into the blocks
        bl_of = np.full(len(sizes), -1, np.intp)
        cls_of = np.full(len(sizes), -1, np.intp)
        Vs = []
        for ci, (n, bl, _rows) in enumerate(layout):
            bl_of[bl] = np.arange(len(bl))
            cls_of[bl] = ci
            Vs.append(np.zeros((len(bl), n, n)))
        if np.any(label[V.rows] != label[V.cols]):
            raise InputError("V links rows that the random terms and V's clusters keep apart")
        for ci in range(len(layout)):
            sel = cls_of[label[V.rows]] == ci
            Vs[ci][bl_of[label[V.rows[sel]]], pos[V.rows[sel]], pos[V.cols[sel]]] = V.values[sel]
        built: list[_Class] = []
        for ci, (n, bl, rows) in enumerate(layout):
            mats = [e for c in comps for e in _elementary(c, rows)]
            E = np.stack(mats) if mats else np.zeros((0, len(bl), n, n))
            built.append(_Class(rows, y[rows], Qx[rows], Vs[ci], E))
        self.classes = built
        self.n_phi = sum(len(c.pairs()) if c.kind != "sigma2" else 1 for c in comps)

    # one evaluation: log-likelihood, gradient and expected information in phi
    def evaluate(self, phi, want=2):
        p, k = self.p, self.k
        XtWX = np.zeros((p, p))
        XtWy = np.zeros(p)
        logdet = 0.0
        cache = []
        for c in self.classes:
            M = c.V + np.tensordot(phi, c.E, axes=1) if len(phi) else c.V.copy()
            try:
                L = np.linalg.cholesky(M)
            except np.linalg.LinAlgError:
                return None
            logdet += 2.0 * float(np.log(np.diagonal(L, axis1=1, axis2=2)).sum())
            W = np.linalg.inv(M)
            W = 0.5 * (W + np.swapaxes(W, 1, 2))
            WX = W @ c.X
            Xf, WXf = c.X.reshape(-1, p), WX.reshape(-1, p)
            XtWX += Xf.T @ WXf
            XtWy += WXf.T @ c.y.reshape(-1)
            cache.append((W, WX))
        try:
            H = np.linalg.inv(XtWX)
        except np.linalg.LinAlgError:
            return None
        beta = H @ XtWy
        rss = 0.0
        na = self.n_phi
        q = np.zeros(na)
        trWE = np.zeros(na)
        T = np.zeros((na, p, p))
        info = np.zeros((na, na))
        A2 = np.zeros((na, na, p, p))
        for c, (W, WX) in zip(self.classes, cache):
            r = c.y - c.X @ beta
            Wr = (W @ r[:, :, None])[:, :, 0]
            rss += float((r * Wr).sum())
            if want < 1 or not na:
                continue
            # matmul and tensordot forms of the sums over blocks (BLAS, not einsum's generic loops)
            B, n = c.B, c.n
            EWr = (c.E @ Wr[None, :, :, None])[..., 0]  # (a, B, n)
            q += (EWr * Wr[None]).reshape(na, -1).sum(1)
            WE = W[None] @ c.E  # (a, B, n, n)
            trWE += np.trace(WE, axis1=2, axis2=3).sum(1)
            F = c.E @ WX[None]  # E_a W X: (a, B, n, p)
            Ff = F.reshape(na, B * n, p)
            T += np.tensordot(WX.reshape(B * n, p), Ff, axes=([0], [1])).transpose(1, 0, 2)
            if want >= 2:
                WEf = WE.reshape(na, -1)
                WEt = np.swapaxes(WE, 2, 3).reshape(na, -1)
                info += WEf @ WEt.T
                if self.method == "REML":
                    WF = (W[None] @ F).reshape(na, B * n, p)
                    A2 += np.tensordot(Ff, WF, axes=([1], [1])).transpose(0, 2, 1, 3)
        logdet_xwx = -float(np.linalg.slogdet(H)[1])
        if self.method == "REML":
            ll = -0.5 * ((k - p) * LOG2PI + logdet + logdet_xwx + rss)  # log|Q'Q| = 0
        else:
            ll = -0.5 * (k * LOG2PI + logdet + rss)
        Ri = self.Rinv
        out = dict(ll=ll, beta=Ri @ beta, H=Ri @ H @ Ri.T, rss=rss, logdet=logdet)
        if want >= 1:
            trPE = trWE - (np.einsum("pq,aqp->a", H, T) if self.method == "REML" else 0.0)
            out["grad"] = 0.5 * (q - trPE)
        if want >= 2:
            if self.method == "REML":
                HT = np.einsum("pq,aqr->apr", H, T)
                info = info - 2 * np.einsum("pq,acqp->ac", H, A2) + np.einsum("apq,cqp->ac", HT, HT)
            out["info"] = 0.5 * info
        return out


def _fit_theta(model: _Model, start, lo, hi, scale):
    """Maximise over theta in the box [lo, hi]: projected Fisher scoring with step halving, then
    Newton steps with the observed information on the free parameters. Returns (theta, result, iterations)."""
    comps = model.comps

    def ev(th, want=2):
        ph, J = _phi(comps, th)
        out = model.evaluate(ph, want)
        if out is None:
            return None
        if want >= 1:
            out["g"] = J.T @ out["grad"]
        if want >= 2:
            out["I"] = J.T @ out["info"] @ J
        return out

    th = np.clip(np.asarray(start, float), lo, hi)
    cur = ev(th)
    if cur is None:
        return None
    tol = 1e-12
    it = 0
    converged = False
    for it in range(1, 301):  # noqa: B007 (the count is returned)
        g = cur["g"]
        at_lo = (th <= lo) & (g <= 0)
        at_hi = (th >= hi) & (g >= 0)
        free = ~(at_lo | at_hi)
        if not free.any():
            break
        Iff = cur["I"][np.ix_(free, free)]
        try:
            step_f = np.linalg.solve(Iff + 1e-14 * np.eye(free.sum()) * max(1.0, np.trace(Iff)), g[free])
        except np.linalg.LinAlgError:
            step_f = np.linalg.lstsq(Iff, g[free], rcond=None)[0]
        step = np.zeros_like(th)
        step[free] = step_f
        if np.all(np.abs(np.clip(th + step, lo, hi) - th) <= 1e-10 * (np.abs(th) + scale)):
            # the next step would move no parameter by more than 1e-10 (relative): converged
            converged = True
            break
        t, accepted = 1.0, None
        for _ in range(40):
            new = np.clip(th + t * step, lo, hi)
            nxt = ev(new)
            if nxt is not None and nxt["ll"] >= cur["ll"] - 1e-13 * abs(cur["ll"]):
                accepted = (new, nxt)
                break
            t *= 0.5
        if accepted is None:
            break
        new, nxt = accepted
        moved = np.abs(new - th)
        th, cur = new, nxt
        if np.all(moved <= tol * (np.abs(th) + scale)):
            converged = True
            break
    # Where scoring stalled (a flat ridge, steps halved to nothing): Newton steps with the observed
    # information (central differences of the analytic gradient)
    for _ in range(0 if converged else 8):
        g = cur["g"]
        free = ~(((th <= lo) & (g <= 0)) | ((th >= hi) & (g >= 0)))
        if not free.any():
            break
        idx = np.flatnonzero(free)
        Hs = np.zeros((len(idx), len(idx)))
        ok = True
        for a, i in enumerate(idx):
            h = 1e-5 * (abs(th[i]) + scale[i])
            up, dn = th.copy(), th.copy()
            up[i] += h
            dn[i] -= h
            if dn[i] < lo[i]:
                dn[i] = th[i]
            eu, ed = ev(up, 1), ev(dn, 1)
            if eu is None or ed is None:
                ok = False
                break
            Hs[:, a] = (eu["g"][idx] - ed["g"][idx]) / (up[i] - dn[i])
        if not ok:
            break
        Hs = 0.5 * (Hs + Hs.T)
        try:
            if np.any(np.linalg.eigvalsh(-Hs) <= 0):
                break
            step_f = np.linalg.solve(-Hs, g[idx])
        except np.linalg.LinAlgError:
            break
        new = th.copy()
        new[idx] = np.clip(th[idx] + step_f, lo[idx], hi[idx])
        nxt = ev(new)
        if nxt is None or nxt["ll"] < cur["ll"] - 1e-12 * abs(cur["ll"]):
            break
        moved = np.abs(new - th)
        th, cur = new, nxt
        if np.all(moved <= 1e-14 * (np.abs(th) + scale)):
            break
    return th, cur, it


def _starts(model: _Model, comps, vi):
    """Two starting points: the heterogeneity beyond the sampling variance shared equally by the
    components (metafor's idea), and a tenth of it."""
    y, X = model.y, model.X
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    r = y - X @ beta
    total = float(np.mean(r**2))
    excess = max(total - float(np.mean(vi)), 0.05 * total, 1e-8)
    out = []
    for f in (1.0, 0.1):
        th = []
        share = f * excess / max(1, len(comps))
        for c in comps:
            m = c.m
            if c.kind == "sigma2":
                th += [share]
            elif c.kind in ("CS", "AR"):
                th += [share, 0.5]
            elif c.kind == "HCS":
                th += [share] * m + [0.5]
            elif c.kind == "DIAG":
                th += [share] * m
            else:
                th += [math.sqrt(share)] * m + [0.0] * (m * (m - 1) // 2)
        out.append(np.array(th))
    return out


# ---------------------------------------------------------------- the result

@dataclass(frozen=True)
class MvCoefficient:
    """A fixed-effect coefficient (analysis scale); ``stat`` is z, or t on ``df`` degrees of freedom."""

    name: str
    estimate: float
    se: float
    stat: float
    p: float
    ci_low: float
    ci_high: float
    df: int | None = None  # t tests: the t statistic's df (k - p); None: z

    def to_dict(self) -> dict:
        out = {"name": self.name, "estimate": self.estimate, "se": self.se,
               ("z" if self.df is None else "t"): self.stat, "p": self.p, "ci_low": self.ci_low,
               "ci_high": self.ci_high}
        if self.df is not None:
            out["df"] = self.df
        return out


@dataclass(frozen=True)
class VarianceComponent:
    """One sigma^2 (or tau^2 of a structure) with its factor and number of levels."""

    name: str
    estimate: float
    nlevels: int
    ci_low: float | None = None
    ci_high: float | None = None


@dataclass(frozen=True, eq=False)
class MvResult:
    """A fitted multilevel / multivariate model (metafor's rma.mv). Estimates on the analysis scale.

    ``estimate``, ``se``, ... describe the first coefficient (the intercept, or the pooled effect of
    a model without moderators); ``coefficients`` all of them. ``sigma2``: one per ``~ 1 | ...`` term
    in order (``a/b`` gives [a, a/b]); ``tau2`` and ``rho`` the structure of an ``~ inner | outer``
    term. ``loglik`` is metafor's ``logLik`` (REML: the restricted likelihood with its constants).
    """

    measure: str
    scale: str
    method: str
    level: float
    k: int
    coefficients: tuple
    vcov: np.ndarray
    sigma2: tuple  # of VarianceComponent
    tau2: tuple  # of VarianceComponent (structured term)
    rho: tuple  # floats
    struct: str | None
    inner: str | None
    outer: str | None
    inner_levels: tuple
    random: tuple  # the formulas as given
    qe: float
    qe_df: int
    qe_p: float
    qm: float | None
    qm_df: int | None
    qm_p: float | None
    loglik: float
    n_par: int
    n_blocks: int
    iterations: int
    v_description: str
    notes: tuple = ()
    robust: Any = None  # a hatmeta.methods.robust.RobustResult (a later stage, so not imported here)
    rho_ci: tuple = ()  # profile-likelihood CIs of rho, (low, high) each (profile_ci)
    test: str = "z"  # "t": coefficients t on ddf = k - p df, QM an F(qm_df, ddf) statistic
    ddf: int | None = None
    # what post-fit methods (robust) need: per-row data and the model's weight matrix by block
    internals: dict = field(default_factory=dict, repr=False, compare=False)

    # -- the first coefficient
    @property
    def estimate(self) -> float:
        return self.coefficients[0].estimate

    @property
    def se(self) -> float:
        return self.coefficients[0].se

    @property
    def ci_low(self) -> float:
        return self.coefficients[0].ci_low

    @property
    def ci_high(self) -> float:
        return self.coefficients[0].ci_high

    @property
    def p(self) -> float:
        return self.coefficients[0].p

    def fit_stats(self) -> dict:
        """metafor's ``fitstats``: deviance, AIC, BIC, AICc (REML on k - p observations). ML's deviance
        is relative to the saturated model, -2 (logLik + (k log 2 pi + log|V|) / 2), as metafor's."""
        n = self.k - len(self.coefficients) if self.method == "REML" else self.k
        npar = self.n_par
        dev = -2 * self.loglik
        if self.method == "ML":
            dev = -2 * (self.loglik - self.internals["ll_saturated"])
        m2ll = -2 * self.loglik
        return {"deviance": dev, "aic": m2ll + 2 * npar, "bic": m2ll + npar * math.log(n),
                "aicc": m2ll + 2 * npar * max(n, npar + 2) / (max(n, npar + 2) - npar - 1)}

    def to_dict(self) -> dict:
        """The JSON contract (issue 23): full precision; writers round through hatmeta.precision."""
        c0 = self.coefficients[0]
        out = {"model": "rma.mv", "measure": self.measure, "scale": self.scale, "method": self.method,
               "level": self.level, "k": self.k, "random": list(self.random),
               "estimate": c0.estimate, "se": c0.se, "ci_low": c0.ci_low, "ci_high": c0.ci_high,
               ("z" if self.ddf is None else "t"): c0.stat, "p": c0.p, "test": self.test,
               "sigma2": [s.estimate for s in self.sigma2],
               "sigma2_factors": [s.name for s in self.sigma2],
               "sigma2_nlevels": [s.nlevels for s in self.sigma2],
               "QE": self.qe, "QE_df": self.qe_df, "QE_p": self.qe_p, "loglik": self.loglik,
               "blocks": self.n_blocks, "V": self.v_description}
        if any(s.ci_low is not None for s in self.sigma2):
            out["sigma2_ci"] = [[s.ci_low, s.ci_high] for s in self.sigma2]
        if self.struct is not None:
            out["struct"] = self.struct
            out["inner"], out["outer"] = self.inner, self.outer
            out["inner_levels"] = list(self.inner_levels)
            out["tau2"] = self.tau2[0].estimate if self.struct in ("CS", "AR") else [t.estimate for t in self.tau2]
            if self.struct != "DIAG":
                out["rho"] = self.rho[0] if self.struct in ("CS", "AR", "HCS") else list(self.rho)
            if any(t.ci_low is not None for t in self.tau2):
                out["tau2_ci"] = [[t.ci_low, t.ci_high] for t in self.tau2]
            if self.rho_ci:
                out["rho_ci"] = [list(b) for b in self.rho_ci]
        if len(self.coefficients) > 1:
            out["coefficients"] = [c.to_dict() for c in self.coefficients]
            out.update(QM=self.qm, QM_df=self.qm_df, QM_p=self.qm_p)
            if self.ddf is not None:  # QM is F = chi^2 / m on (QM_df, QM_df2) df
                out.update(QM_test="F", QM_df2=self.ddf)
        out.update(self.fit_stats())
        if self.robust is not None:
            out["robust"] = self.robust.to_dict()
        out["notes"] = list(self.notes)
        return _jsonable(out)

    def to_frame(self) -> pd.DataFrame:
        """One row per coefficient (pandas): name, estimate, se, z, p, ci_low, ci_high (analysis scale),
        with the robust columns when ``robust`` was applied."""
        import pandas as pd

        rows = [c.to_dict() for c in self.coefficients]
        frame = pd.DataFrame(rows)
        if self.robust is not None:
            rc = self.robust.coefficients
            frame["robust_se"] = [c.se for c in rc]
            frame["robust_df"] = [c.df for c in rc]
            frame["robust_p"] = [c.p for c in rc]
        return frame

    def summary(self) -> str:
        from ..precision import quantised

        return _summary(quantised(self))

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(self.summary())}</pre>"


def _jsonable(value):
    """NaN and infinities as None; NumPy scalars as floats (full precision)."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _fmt(x, d=4):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "NA"
    return f"{x:.{d}f}"


def _pfmt(p):
    if p is None or not math.isfinite(p):
        return "NA"
    return "< .0001" if p < 1e-4 else f"{p:.4f}"


def _pval(p):
    """metafor's "p-val < .0001" or "p-val = 0.0123"."""
    return "< .0001" if p is not None and p < 1e-4 else "= " + _pfmt(p)


def _table(header, rows, left=()):
    cols = list(zip(header, *rows))
    widths = [max(len(str(x)) for x in col) for col in cols]
    lines = []
    for r in [header, *rows]:
        cells = [str(x).ljust(w) if j in left else str(x).rjust(w) for j, (x, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(cells).rstrip())
    return lines


def _summary(r: MvResult) -> str:
    """metafor's print.rma.mv layout."""
    fs = r.fit_stats()
    lines = [f"Multivariate Meta-Analysis Model (k = {r.k}; method: {r.method})", ""]
    lines += _table(["", "logLik", "Deviance", "AIC", "BIC", "AICc"],
                    [["", _fmt(r.loglik), _fmt(fs["deviance"]), _fmt(fs["aic"]), _fmt(fs["bic"]), _fmt(fs["aicc"])]])
    lines += ["", "Variance Components:", ""]
    if r.sigma2:
        rows = [[f"sigma^2.{i + 1}", _fmt(s.estimate), _fmt(math.sqrt(max(s.estimate, 0))), s.nlevels, "no", s.name]
                for i, s in enumerate(r.sigma2)]
        lines += _table(["", "estim", "sqrt", "nlvls", "fixed", "factor"], rows)
        if any(s.ci_low is not None for s in r.sigma2):
            lines += ["", "Profile-likelihood CIs:"]
            lines += _table(["", "ci.lb", "ci.ub"], [[f"sigma^2.{i + 1}", _fmt(s.ci_low), _fmt(s.ci_high)]
                                                    for i, s in enumerate(r.sigma2)])
        lines.append("")
    if r.struct is not None:
        lines += [f"outer factor: {r.outer} (nlvls = {r.internals.get('outer_nlevels', '')})",
                  f"inner factor: {r.inner} (nlvls = {len(r.inner_levels)})", ""]
        if r.struct in ("CS", "AR"):
            t = r.tau2[0]
            lines += _table(["", "estim", "sqrt", "fixed"], [["tau^2", _fmt(t.estimate),
                                                              _fmt(math.sqrt(max(t.estimate, 0))), "no"],
                                                             ["rho", _fmt(r.rho[0]), "", "no"]])
        else:
            rows = [[f"tau^2.{i + 1}", _fmt(t.estimate), _fmt(math.sqrt(max(t.estimate, 0))), t.nlevels, "no",
                     lev] for i, (t, lev) in enumerate(zip(r.tau2, r.inner_levels))]
            lines += _table(["", "estim", "sqrt", "k.lvl", "fixed", "level"], rows)
            if r.struct == "HCS":
                lines += ["", *_table(["", "estim", "fixed"], [["rho", _fmt(r.rho[0]), "no"]])]
            elif r.struct == "UN":
                m = len(r.inner_levels)
                R = np.eye(m)
                for q, (a, b) in enumerate(_lower_pairs(m)):
                    R[a, b] = R[b, a] = r.rho[q]
                hdr = [""] + [f"rho.{lev}" for lev in r.inner_levels]
                rows = [[lev] + [_fmt(R[a, b]) if b <= a else "" for b in range(m)]
                        for a, lev in enumerate(r.inner_levels)]
                lines += ["", *_table(hdr, rows)]
        ci_rows = [[f"tau^2.{i + 1}" if len(r.tau2) > 1 else "tau^2", _fmt(t.ci_low), _fmt(t.ci_high)]
                   for i, t in enumerate(r.tau2) if t.ci_low is not None]
        ci_rows += [[f"rho.{i + 1}" if len(r.rho_ci) > 1 else "rho", _fmt(lo_), _fmt(hi_)]
                    for i, (lo_, hi_) in enumerate(r.rho_ci)]
        if ci_rows:
            lines += ["", "Profile-likelihood CIs:", *_table(["", "ci.lb", "ci.ub"], ci_rows)]
        lines.append("")
    lines += ["Test for Residual Heterogeneity:" if len(r.coefficients) > 1 else "Test for Heterogeneity:",
              f"{'QE' if len(r.coefficients) > 1 else 'Q'}(df = {r.qe_df}) = {_fmt(r.qe)}, p-val {_pval(r.qe_p)}", ""]
    if len(r.coefficients) > 1:
        test = (f"F(df1 = {r.qm_df}, df2 = {r.ddf})" if r.ddf is not None else f"QM(df = {r.qm_df})")
        lines += [f"Test of Moderators (coefficients 2:{len(r.coefficients)}):",
                  f"{test} = {_fmt(r.qm)}, p-val {_pval(r.qm_p)}",
                  ""]
    lines += ["Model Results:", ""]
    tdf = [] if r.ddf is None else [str(r.ddf)]
    rows = [[c.name if len(r.coefficients) > 1 else "", _fmt(c.estimate), _fmt(c.se), _fmt(c.stat), *tdf,
             _pfmt(c.p), _fmt(c.ci_low), _fmt(c.ci_high)] for c in r.coefficients]
    lines += _table(["", "estimate", "se", "zval" if r.ddf is None else "tval", *(["df"] if tdf else []), "pval",
                     "ci.lb", "ci.ub"], rows, left=(0,))
    if r.robust is not None:
        lines += ["", r.robust.summary()]
    if r.notes:
        lines += ["", *[f"note: {n}" for n in r.notes]]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the fit

def _column_values(es: EffectSizes, name):
    """Text values of a grouping column as given (a repeated study name keeps its own text)."""
    table = es.table
    if name.strip().lower() == "study" and table.given:
        return tuple(table.given)
    values = tuple(table.column(name))
    for r, v in enumerate(values):
        if v.strip().lower() in ("", "na", "nan"):
            # metafor: "No NAs allowed in variables specified via the 'random' argument"
            raise InputError("missing value in a grouping column (random terms and V clusters need a value in "
                             "every row)", file=table.path, line=table.line_of(r), column=name)
    return values


def rma_mv(es: EffectSizes, random: Sequence[str] = (), struct: str | Sequence[str] = "CS",
           V: SamplingCov | np.ndarray | None = None, moderators: Sequence[str] = (), method: str = "REML",
           level: float = 0.95, X: np.ndarray | None = None, names: Sequence[str] | None = None,
           profile: bool = False, test: str = "z") -> MvResult:
    """Fit a multilevel / multivariate meta-analytic model (metafor's ``rma.mv``).

    Parameters
    ----------
    es : EffectSizes
        Effects ``yi`` and variances ``vi`` on the analysis scale (``hatmeta.fit.effects.escalc``);
        the grouping columns are read from ``es.table``.
    random : sequence of str
        Random terms in metafor's syntax: ``"~ 1 | a"``, ``"~ 1 | a/b"`` (a and a/b), ``"~ inner | outer"``.
    struct : str
        Structure of the ``~ inner | outer`` term: CS, HCS, UN, DIAG or AR (metafor's ``struct``).
    V : SamplingCov, array or None
        Known sampling covariance (``vcalc``, ``v_from_columns``, a dense k x k array); None: diag(vi).
    moderators : sequence of str
        Moderator columns (numeric, or factors coded by dummies as ``design_matrix``).
    method : {"REML", "ML"}
    level : float
        Confidence level of the Wald intervals.
    X, names : array, names, optional
        A design matrix instead of ``moderators`` (with its column names).
    profile : bool
        Also profile-likelihood CIs for each sigma^2 / tau^2 and each correlation rho (metafor's ``confint``).
    test : {"z", "t"}
        "t": t tests and CIs on k - p df for the coefficients and an F(m, k - p) omnibus test, QM / m
        (metafor's ``rma.mv(..., test = "t")``); "z": Wald z and chi^2 (the default, as metafor's).

    Returns
    -------
    MvResult
    """
    from .. import dist as _dist
    from .metareg import _complete_moderators, design_matrix

    if not isinstance(es, EffectSizes):
        raise TypeError(f"rma_mv expects the EffectSizes of escalc(table, measure), got {type(es).__name__}")
    method = str(method).upper()
    test = str(test).lower()
    if test not in ("z", "t"):
        raise InputError(f"rma_mv tests with z or t, not {test!r}", option="--test")
    if method not in MV_METHODS:
        raise InputError(f"rma_mv fits REML or ML, not {method}", option="--method")
    notes = list(es.notes)
    if isinstance(moderators, str):
        moderators = [moderators]
    if isinstance(random, str):
        random = [random]
    if moderators and X is None:
        es2, more = _complete_moderators(es, moderators)
        if more:
            if V is not None and not isinstance(V, np.ndarray):
                raise InputError("rows with missing moderator values cannot be left out when V is given; "
                                 "complete them or leave them out of the table", option="--moderator")
            notes += list(more)
            es = es2
        X, names = design_matrix(es, moderators)
    elif X is None:
        X, names = np.ones((es.k, 1)), ["intrcpt"]
    else:
        X = np.asarray(X, float)
        names = list(names) if names is not None else [f"X{j + 1}" for j in range(X.shape[1])]
    y, vi = np.asarray(es.yi, float), np.asarray(es.vi, float)
    k, p = X.shape
    if k <= p:
        raise InputError(f"rma_mv with {p} coefficient{'s' if p > 1 else ''} needs more than {p} rows, found {k}")
    if np.linalg.matrix_rank(X) < p:
        raise InputError("the design matrix is rank deficient (collinear or constant moderators)",
                         option="--moderator")
    if V is None:
        Vc = v_diag(vi)
    elif isinstance(V, SamplingCov):
        Vc = V
    else:
        Vc = v_dense(V)
    if len(Vc.rows) and max(Vc.rows.max(), Vc.cols.max()) >= k:
        raise InputError("V has more rows than the effect sizes")
    terms = [parse_random(f) for f in random]
    structs = [struct] if isinstance(struct, str) or struct is None else list(struct)
    comps: list = []
    n_struct = 0
    for term in terms:
        if term.inner is None:
            values = [_column_values(es, c) for c in term.outer]
            for depth in range(1, len(term.outer) + 1):
                combo = tuple("\x1f".join(v) for v in zip(*values[:depth])) if depth > 1 else values[0]
                codes, levels = _codes(combo)
                comps.append(_Component("sigma2", "/".join(term.outer[:depth]), codes, len(levels)))
        else:
            n_struct += 1
            if n_struct > 1:
                raise InputError("one '~ inner | outer' term per model (metafor allows two; hatmeta one)",
                                 option="--random")
            s = str(structs[min(n_struct - 1, len(structs) - 1)] or "CS").upper()
            if s not in STRUCTS:
                raise InputError(f"unknown struct {s!r}; choose one of {', '.join(STRUCTS)}", option="--struct")
            outer_codes, outer_levels = _codes(_column_values(es, term.outer[0]))
            inner_codes, inner_levels = _codes(_column_values(es, term.inner))
            comps.append(_Component(s, f"{term.inner} | {term.outer[0]}", outer_codes, len(outer_levels),
                                    inner_codes, list(inner_levels), np.bincount(inner_codes,
                                                                                minlength=len(inner_levels))))
    for c in comps:
        if c.kind in ("CS", "HCS", "UN", "AR"):
            pairs = set(zip(c.codes.tolist(), c.inner.tolist()))
            per_outer = np.bincount(np.array([o for o, _ in pairs], dtype=np.intp), minlength=c.nlevels)
            if per_outer.max() < 2:
                raise InputError(f"random term '~ {c.name}': no {c.name.split(' | ')[1]} holds two levels of "
                                 f"{c.name.split(' | ')[0]}, so the correlation of struct {c.kind} is not "
                                 "identifiable; use --struct DIAG", option="--struct")
        if c.kind == "sigma2" and c.nlevels == 1:
            raise InputError(f"random term for {c.name!r} has one level: its variance is not identifiable "
                             "(it is the intercept)", option="--random")
    for a in range(len(comps)):
        for b in range(a):
            ca, cb = comps[a], comps[b]
            if ca.kind == cb.kind == "sigma2" and ca.nlevels == cb.nlevels and _same_partition(ca.codes, cb.codes):
                raise InputError(f"random terms {cb.name!r} and {ca.name!r} group the rows identically: their "
                                 "variances are not identifiable", option="--random")
    if k - p > _dist.SERIES_DF:
        _dist.preload_scipy()  # QE's p-value on this many df comes from SciPy: import it while fitting
    model = _Model(y, X, Vc, comps, method)
    _check_v(model, es)
    lo, hi, kinds = _theta_layout(comps)
    scale_v = float(np.mean(vi)) if k else 1.0
    scale = np.array([scale_v if kd == "var" else math.sqrt(scale_v) if kd.startswith("chol") else 1.0
                      for kd in kinds])
    best = None
    iterations = 0
    if comps:
        # A second start where the likelihood is more likely to have more than one maximum (a structured
        # term's correlations) or where the first answer lies on a boundary; the higher maximum wins.
        structured = any(c.kind != "sigma2" for c in comps)
        for n_start, st in enumerate(_starts(model, comps, vi)):
            if n_start and best is not None and not structured and np.all((best[0] > lo) & (best[0] < hi)):
                break
            got = _fit_theta(model, st, lo, hi, scale)
            if got is None:
                continue
            iterations += got[2]
            if best is None or got[1]["ll"] > best[1]["ll"]:
                best = got
        if best is None:
            raise InputError("the marginal covariance is not positive definite at any starting value "
                             "(check V: is every vi positive and every block's covariance valid?)")
        theta, ev = best[0], best[1]
    else:
        theta = np.zeros(0)
        ev = model.evaluate(np.zeros(0), 0)
        if ev is None:
            raise InputError("V is not positive definite")
    beta, H = ev["beta"], ev["H"]
    se = np.sqrt(np.diag(H))
    stat = beta / se
    ddf = k - p if test == "t" else None  # metafor's test = "t": t on k - p df (its default dfs = "residual")
    if ddf is None:
        z = float(_dist.norm_isf((1 - level) / 2))
        pv = 2 * _dist.norm_sf(np.abs(stat))
    else:
        z = float(_dist.t_isf(ddf, (1 - level) / 2))
        pv = 2 * _dist.t_sf(ddf, np.abs(stat))
    coefs = tuple(MvCoefficient(n, float(b), float(s), float(t), float(pp), float(b - z * s), float(b + z * s), ddf)
                  for n, b, s, t, pp in zip(names, beta, se, stat, pv))
    # residual heterogeneity with V alone (metafor's QE)
    ev0 = _Model(y, X, Vc, [], method).evaluate(np.zeros(0), 0)
    qe = float(ev0["rss"])
    qe_df = k - p
    if p > 1:
        b1 = beta[1:] if names[0] == "intrcpt" else beta
        idx = slice(1, None) if names[0] == "intrcpt" else slice(None)
        qm_value = float(b1 @ np.linalg.solve(H[idx, idx], b1))
        qm: float | None = qm_value
        qm_df: int | None = len(b1)
        qm_p: float | None = float(_dist.chi2_sf(len(b1), qm_value))
        if ddf is not None:  # metafor: F = QM / m on (m, k - p) df
            from scipy.special import fdtrc

            qm = qm_value / len(b1)
            qm_p = float(fdtrc(len(b1), ddf, qm))
    else:
        qm, qm_df, qm_p = None, None, None
    sig: list = []
    tau: list = []
    rho: list = []
    t = 0
    struct_comp = None
    for c in comps:
        th = theta[t:t + c.n_theta()]
        t += c.n_theta()
        if c.kind == "sigma2":
            sig.append(VarianceComponent(c.name, float(th[0]), c.nlevels))
            continue
        struct_comp = c
        m = c.m
        if c.kind in ("CS", "AR"):
            tau.append(VarianceComponent(c.name, float(th[0]), c.nlevels))
            rho.append(float(th[1]))
        elif c.kind in ("HCS", "DIAG"):
            tau += [VarianceComponent(str(lev), float(x), int(c.k_lvl[i])) for i, (lev, x) in
                    enumerate(zip(c.inner_levels, th[:m]))]
            if c.kind == "HCS":
                rho.append(float(th[m]))
        else:
            L = _chol_matrix(th, m)
            G = L @ L.T
            tau += [VarianceComponent(str(lev), float(G[i, i]), int(c.k_lvl[i])) for i, lev in
                    enumerate(c.inner_levels)]
            sd = np.sqrt(np.diag(G))
            rho += [float(G[a, b] / (sd[a] * sd[b])) if sd[a] > 0 and sd[b] > 0 else 0.0
                    for a, b in _lower_pairs(m)]
    n_par = p + len(theta)
    internals = {"y": y, "vi": vi, "X": X, "model": model, "moderators": tuple(moderators or ()),
                 "phi": _phi(comps, theta)[0] if comps else np.zeros(0),
                 "ll_saturated": -0.5 * (k * LOG2PI + ev0["logdet"]),
                 "table": es.table, "theta": theta, "lo": lo, "hi": hi, "scale": scale}
    if struct_comp is not None:
        internals["outer_nlevels"] = struct_comp.nlevels
    res = MvResult(measure=es.measure, scale=es.scale, method=method, level=level, k=k, coefficients=coefs,
                   vcov=H, sigma2=tuple(sig), tau2=tuple(tau), rho=tuple(rho),
                   struct=struct_comp.kind if struct_comp else None,
                   inner=struct_comp.name.split(" | ")[0] if struct_comp else None,
                   outer=struct_comp.name.split(" | ")[1] if struct_comp else None,
                   inner_levels=tuple(struct_comp.inner_levels) if struct_comp else (),
                   random=tuple(x.formula for x in terms), qe=qe, qe_df=qe_df, qe_p=float(_dist.chi2_sf(qe_df, qe)),
                   qm=qm, qm_df=qm_df, qm_p=qm_p, loglik=float(ev["ll"]), n_par=n_par, n_blocks=model.nblocks,
                   iterations=iterations, v_description=Vc.description, notes=tuple(notes), internals=internals,
                   test=test, ddf=ddf)
    if profile:
        res = profile_ci(res)
    return res


def _check_v(model: _Model, es: EffectSizes) -> None:
    """V must be positive definite block by block: name the first block that is not."""
    for c in model.classes:
        try:
            np.linalg.cholesky(c.V)
        except np.linalg.LinAlgError:
            for b in range(c.B):
                if np.linalg.eigvalsh(c.V[b]).min() <= 0:
                    rows = sorted(c.rows[b].tolist())
                    names = ", ".join(es.studies[r] for r in rows[:10]) + (", ..." if len(rows) > 10 else "")
                    raise InputError(f"the sampling covariance V of rows {names} is not positive definite "
                                     "(a vi of 0, or covariances too large for the variances)",
                                     file=es.table.path, line=es.table.line_of(rows[0])) from None


def _same_partition(a, b):
    """Whether two codings group the rows identically."""
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def weight_blocks(res: MvResult) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The model's blocks: per block (rows, W = M^-1) at the fitted variance components, for
    post-fit methods (cluster-robust inference). Yields (rows (B, n), W (B, n, n)) per block size."""
    model: _Model = res.internals["model"]
    phi = res.internals["phi"]
    for c in model.classes:
        M = c.V + np.tensordot(phi, c.E, axes=1) if len(phi) else c.V
        yield c.rows, np.linalg.inv(M), M


def row_weights(res: MvResult) -> np.ndarray:
    """Each row's weight in percent, 100 diag(M^-1) / sum(diag(M^-1)) at the fitted variance components
    (metafor's ``weights.rma.mv``, type "diagonal"); in the rows' order."""
    w = np.empty(res.k)
    for rows, W, _ in weight_blocks(res):
        w[rows] = np.diagonal(W, axis1=1, axis2=2)
    return 100 * w / w.sum()


@dataclass(frozen=True)
class ClusterRows:
    """The rows of a fit grouped by the outer factor of its first random term (for a forest plot):
    ``clusters`` as (value, row indices) in the order of first appearance, rows in table order;
    ``labels`` each row's label (the next grouping level, the inner factor, or the study)."""

    outer: str
    label_name: str
    clusters: tuple
    labels: tuple


def cluster_rows(res: MvResult) -> ClusterRows:
    """Group the rows of ``res`` by the outer factor of its first random term: ``district`` for
    ``~ 1 | district/school`` (rows labelled by school), ``trial`` for ``~ outcome | trial`` (labelled by
    outcome); for ``~ 1 | a`` alone the rows are labelled by study."""
    table = res.internals["table"]
    term = parse_random(res.random[0])
    outer = term.outer[0]

    def values(name):
        if name.strip().lower() == "study" and table.given:
            return tuple(table.given)
        return tuple(table.column(name))

    if term.inner is not None:
        label_name, labels = term.inner, values(term.inner)
    elif len(term.outer) > 1:
        label_name = "/".join(term.outer[1:])
        labels = tuple("/".join(v) for v in zip(*(values(c) for c in term.outer[1:])))
    else:
        label_name, labels = "study", tuple(table.studies)
    order: dict = {}
    for r, v in enumerate(values(outer)):
        order.setdefault(v, []).append(r)
    return ClusterRows(outer, label_name, tuple((v, tuple(rows)) for v, rows in order.items()), labels)


@dataclass(frozen=True)
class MvPrediction:
    """A predicted mean x0' beta (analysis scale) with its CI and prediction interval (None where the
    model does not define one)."""

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    pi_low: float | None
    pi_high: float | None
    tau2_level: str | None = None


def predict_mv(res: MvResult, x0: Sequence[float] | np.ndarray | None = None,
               tau2_level: str | None = None) -> MvPrediction:
    """The model's mean at the design row ``x0`` (default: the intercept alone) with its CI and
    prediction interval, as metafor's ``predict.rma.mv``: the interval's variance is se^2 plus every
    sigma^2 plus the structure's tau^2 (for HCS, DIAG and UN the tau^2 of ``tau2_level``, a level of the
    inner factor, as metafor's ``tau2.levels``; without it no prediction interval). Critical values: z,
    or t on k - p df with ``test="t"``.

    Returns
    -------
    MvPrediction
    """
    from .. import dist as _dist

    p = len(res.coefficients)
    x = np.zeros(p) if x0 is None else np.asarray(x0, float)
    if x0 is None:
        x[0] = 1.0
    if x.shape != (p,):
        raise InputError(f"the design row needs {p} values (one per coefficient), got {x.size}")
    beta = np.array([c.estimate for c in res.coefficients])
    est = float(x @ beta)
    se = float(math.sqrt(max(float(x @ res.vcov @ x), 0.0)))
    a = (1 - res.level) / 2
    crit = float(_dist.norm_isf(a) if res.ddf is None else _dist.t_isf(res.ddf, a))
    var = sum(s.estimate for s in res.sigma2)
    pi: tuple = (None, None)
    level_used = None
    if res.struct in ("CS", "AR"):
        var += res.tau2[0].estimate
    elif res.struct is not None:
        if tau2_level is not None:
            names = [str(v) for v in res.inner_levels]
            if str(tau2_level) not in names:
                raise InputError(f"tau2 level {tau2_level!r} is not a level of {res.inner} ({', '.join(names)})")
            var += res.tau2[names.index(str(tau2_level))].estimate
            level_used = str(tau2_level)
        else:
            var = math.nan
    if math.isfinite(var):
        half = crit * math.sqrt(se**2 + var)
        pi = (est - half, est + half)
    return MvPrediction(est, se, est - crit * se, est + crit * se, pi[0], pi[1], level_used)


# ---------------------------------------------------------------- profile likelihood

def profile_ci(res: MvResult, level: float | None = None) -> MvResult:
    """Profile-likelihood CIs for every variance (sigma^2, tau^2) and every correlation rho (metafor's
    ``confint.rma.mv``): the values where 2 (l_max - l_profile) equals the chi^2_1 quantile, the other
    parameters re-maximised.

    The searches span metafor's intervals: [0, inf) for a variance (a bound at 0 when the profile stays
    above the cut-off there), [-1, 1] for the rho of CS, HCS and UN, and [min(0, rho), 1] for AR's (a
    bound at the end of its interval when the profile stays above the cut-off there, which metafor prints
    with '<' or '>'). UN is profiled in variances and correlations (metafor's own parameters), not in the
    Cholesky factor the fit uses, so that each tau^2 and each rho can be held fixed."""
    from dataclasses import replace

    from scipy.optimize import brentq
    from scipy.special import chdtri

    level = res.level if level is None else level
    cut = float(chdtri(1, 1 - level)) / 2
    model: _Model = res.internals["model"]
    theta, lo, hi, scale = (res.internals[k] for k in ("theta", "lo", "hi", "scale"))
    if any(c.kind == "UN" for c in model.comps):
        # the variances' scale (mean vi) from the fit's: a variance's entry, or a Cholesky diagonal's squared
        kinds0 = _theta_layout(model.comps)[2]
        scale_v = next(float(sc if kd == "var" else sc**2) for sc, kd in zip(scale, kinds0) if kd in ("var", "chol"))
        model, theta = _as_unr(model, theta)
        lo, hi, kinds = _theta_layout(model.comps)
        scale = np.array([scale_v if kd == "var" else 1.0 for kd in kinds])
    lmax = res.loglik
    _, _, kinds = _theta_layout(model.comps)

    def prof(i, value):
        lo2, hi2 = lo.copy(), hi.copy()
        lo2[i] = hi2[i] = value
        st = theta.copy()
        st[i] = value
        got = _fit_theta(model, st, lo2, hi2, scale)
        return -np.inf if got is None else got[1]["ll"]

    # the rho of AR is searched from min(0, rho) as metafor's confint does
    ar_cor = set()
    t = 0
    for c in model.comps:
        if c.kind == "AR":
            ar_cor.add(t + 1)
        t += c.n_theta()

    bounds = {}
    for i, kd in enumerate(kinds):
        if kd not in ("var", "cor"):
            continue

        def f(v, i=i):  # negative inside the interval
            return lmax - prof(i, v) - cut

        est = float(theta[i])
        tol = 1e-10 * scale[i]
        if kd == "var":
            if est <= 0 or f(0.0) <= 0:
                lower = 0.0
            else:
                lower = brentq(f, 0.0, est, xtol=tol, rtol=1e-10)
            up = max(est, scale[i]) * 2 + 1e-8
            for _ in range(60):
                if f(up) > 0:
                    break
                up *= 2
            upper = brentq(f, est, up, xtol=tol, rtol=1e-10)
        else:
            floor = min(0.0, est) if i in ar_cor else -1.0
            lower = floor if est <= floor or f(floor) <= 0 else brentq(f, floor, est, xtol=1e-11, rtol=1e-10)
            upper = 1.0 if est >= 1.0 or f(1.0) <= 0 else brentq(f, est, 1.0, xtol=1e-11, rtol=1e-10)
        bounds[i] = (float(lower), float(upper))
    sig, tau = list(res.sigma2), list(res.tau2)
    rho_ci: list = []
    t = 0
    si = ti = 0
    for c in model.comps:
        n = c.n_theta()
        for j in range(n):
            i = t + j
            if i not in bounds:
                continue
            if kinds[i] == "cor":
                rho_ci.append(bounds[i])
            elif c.kind == "sigma2":
                sig[si] = replace(sig[si], ci_low=bounds[i][0], ci_high=bounds[i][1])
            else:
                tau[ti] = replace(tau[ti], ci_low=bounds[i][0], ci_high=bounds[i][1])
                ti += 1
        if c.kind == "sigma2":
            si += 1
        t += n
    return replace(res, sigma2=tuple(sig), tau2=tuple(tau), rho_ci=tuple(rho_ci))


def _as_unr(model: _Model, theta: np.ndarray) -> tuple[_Model, np.ndarray]:
    """The model with each UN term in metafor's parameters (variances, then the correlations in R's
    lower.tri order), and theta in them: the same likelihood, the elementary matrices unchanged."""
    import copy

    comps, out = [], []
    t = 0
    for c in model.comps:
        th = theta[t:t + c.n_theta()]
        t += c.n_theta()
        if c.kind != "UN":
            comps.append(c)
            out.append(th)
            continue
        m = c.m
        L = _chol_matrix(th, m)
        G = L @ L.T
        sd = np.sqrt(np.diag(G))
        rho = [float(G[a, b] / (sd[a] * sd[b])) if sd[a] > 0 and sd[b] > 0 else 0.0 for a, b in _lower_pairs(m)]
        comps.append(_replace_kind(c, "UNR"))
        out.append(np.r_[np.diag(G), rho])
    new = copy.copy(model)
    new.comps = comps
    return new, np.concatenate(out) if out else np.zeros(0)


def _replace_kind(c: _Component, kind: str) -> _Component:
    import copy

    new = copy.copy(c)
    new.kind = kind
    return new


__all__ = ["rma_mv", "MvResult", "SamplingCov", "sampling_cov", "vcalc", "v_from_columns", "v_dense", "v_diag",
           "parse_random", "row_weights", "predict_mv", "MvPrediction", "cluster_rows", "ClusterRows",
           "profile_ci", "STRUCTS"]
