"""Cluster-robust (sandwich) inference for fitted meta-analytic models.

``robust(res, cluster, type)`` takes a univariate ``MetaResult`` (``hatmeta.fit.models.rma``) or a
multilevel ``MvResult`` (``hatmeta.fit.multilevel.rma_mv``) and returns the same result with a
``robust`` block: cluster-robust standard errors, t tests and CIs for the coefficients.

- ``CR1``: metafor's ``robust(x, cluster, adjust = TRUE)``: the sandwich
  B (sum_c X_c' W e_c e_c' W X_c) B with B = (X'WX)^-1, W the model's inverse marginal covariance,
  times n / (n - p) (n clusters); t on n - p df (Hedges, Tipton & Johnson 2010, Res Synth Methods 1:39).
- ``CR2``: clubSandwich's bias-reduced linearisation (Bell & McCaffrey 2002; Pustejovsky & Tipton
  2018, J Bus Econ Stat 36:672): each cluster's residuals are multiplied by
  A_c = D_c' (D_c (Phi_c - X_c B X_c') D_c')^(-1/2) D_c, with Phi the model's marginal covariance (the
  working model, clubSandwich's default target for rma.uni and rma.mv) and D_c' D_c = Phi_c its Cholesky
  factorisation; each coefficient is tested with t on the Satterthwaite degrees of freedom under the
  working model (clubSandwich's ``coef_test(vcov = "CR2", test = "Satterthwaite")``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import InputError

TYPES = ("CR1", "CR2")


@dataclass(frozen=True)
class RobustCoefficient:
    name: str
    estimate: float
    se: float
    t: float
    df: float
    p: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict:
        return {"name": self.name, "estimate": self.estimate, "se": self.se, "t": self.t, "df": self.df,
                "p": self.p, "ci_low": self.ci_low, "ci_high": self.ci_high}


@dataclass(frozen=True, eq=False)
class RobustResult:
    """Cluster-robust inference: ``type`` CR1 or CR2, ``n_clusters``, one ``RobustCoefficient`` per
    coefficient (the first is the pooled effect / intercept), ``vcov`` the robust covariance."""

    type: str
    cluster: str
    n_clusters: int
    level: float
    coefficients: tuple
    vcov: np.ndarray
    qm: float | None = None
    qm_df: tuple | None = None
    qm_p: float | None = None

    def to_dict(self) -> dict:
        c0 = self.coefficients[0]
        out = {"type": self.type, "cluster": self.cluster, "n_clusters": self.n_clusters,
               "estimate": c0.estimate, "se": c0.se, "t": c0.t, "df": c0.df, "p": c0.p,
               "ci_low": c0.ci_low, "ci_high": c0.ci_high, "variance": float(self.vcov[0, 0])}
        if len(self.coefficients) > 1:
            out["coefficients"] = [c.to_dict() for c in self.coefficients]
            if self.qm is not None:
                out.update(QM=self.qm, QM_df=list(self.qm_df or ()), QM_p=self.qm_p)
        return _finite(out)

    def summary(self) -> str:
        df_note = "Satterthwaite df" if self.type == "CR2" else f"df = {self.n_clusters} - p"
        lines = [f"Cluster-robust inference ({self.type}; {self.n_clusters} clusters of {self.cluster}; "
                 f"{df_note}):", ""]
        rows = [[c.name if len(self.coefficients) > 1 else "", f"{c.estimate:.4f}", f"{c.se:.4f}", f"{c.t:.4f}",
                 f"{c.df:.2f}", "< .0001" if c.p < 1e-4 else f"{c.p:.4f}", f"{c.ci_low:.4f}", f"{c.ci_high:.4f}"]
                for c in self.coefficients]
        header = ["", "estimate", "se", "tval", "df", "pval", "ci.lb", "ci.ub"]
        widths = [max(len(r[j]) for r in [header, *rows]) for j in range(len(header))]
        for r in [header, *rows]:
            lines.append("  ".join(x.ljust(w) if j == 0 else x.rjust(w) for j, (x, w) in enumerate(zip(r, widths))))
        return "\n".join(lines)


def _finite(value):
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _model_parts(res):
    """y, X, names, beta, bread (X'WX)^-1 and the model's blocks [(rows, W, M)] of a result."""
    from ..fit.multilevel import MvResult, weight_blocks
    from ..results import MetaResult, StudyRows

    if isinstance(res, MvResult):
        y, X = res.internals["y"], res.internals["X"]
        names = [c.name for c in res.coefficients]
        beta = np.array([c.estimate for c in res.coefficients])
        blocks = [(rows, W, M) for rows, W, M in weight_blocks(res)]
        return y, X, names, beta, np.asarray(res.vcov), blocks, res.level
    if isinstance(res, MetaResult):
        if res.meta_regression is not None:
            raise InputError("robust() takes an intercept-only rma result; fit moderators with rma_mv "
                             "(e.g. random=['~ 1 | study'])", option="--robust")
        if res.method in ("MH", "PETO", "MH-DL") or res.method.startswith("GLMM"):
            raise InputError(f"robust() needs an inverse-variance model, not {res.method}", option="--robust")
        if res.ci_method != "wald":
            raise InputError("robust() replaces the model's inference: fit with ci='wald'", option="--ci")
        st = res.studies
        if isinstance(st, StudyRows):
            y, vi = np.asarray(st._arrays["yi"], float), np.asarray(st._arrays["vi"], float)
        else:
            y, vi = np.array([s.yi for s in st]), np.array([s.vi for s in st])
        m = vi + res.tau2
        k = len(y)
        X = np.ones((k, 1))
        w = 1 / m
        bread = np.array([[1 / w.sum()]])
        beta = np.array([float((w * y).sum() / w.sum())])
        rows = np.arange(k)[:, None]
        blocks = [(rows, (1 / m)[:, None, None], m[:, None, None])]
        return y, X, ["intrcpt"], beta, bread, blocks, res.level
    raise TypeError(f"robust() takes a MetaResult or an MvResult, got {type(res).__name__}")


def robust(res: Any, cluster: str | Sequence[Any], type: str = "CR2", name: str | None = None) -> Any:
    """Cluster-robust inference on a fitted model (metafor ``robust``; clubSandwich CR2).

    Parameters
    ----------
    res : MetaResult or MvResult
        The fit (analysis scale).
    cluster : str or sequence
        A column of the fitted table (MvResult), or one cluster label per study / row in the fit's order.
    type : {"CR1", "CR2"}
        CR1: metafor's ``robust(adjust=TRUE)``, t on n - p df. CR2: clubSandwich's bias-reduced
        estimator with Satterthwaite df.
    name : str, optional
        How the cluster is called in the output (default: the column name, or "cluster").

    Returns
    -------
    The same kind of result, with the ``robust`` block (MvResult.robust; MetaResult.extra["robust"]).
    """
    from scipy.special import stdtr, stdtrit

    kind = str(type).upper()
    if kind not in TYPES:
        raise InputError(f"unknown robust type {type!r}; choose CR1 or CR2", option="--robust")
    y, X, names, beta, bread, blocks, level = _model_parts(res)
    k, p = X.shape
    if isinstance(cluster, str):
        from ..fit.multilevel import MvResult

        label = name or cluster
        if not isinstance(res, MvResult):
            raise TypeError("a MetaResult does not keep its table: pass the cluster labels, one per study")
        table = res.internals["table"]
        key = cluster.strip().lower()
        values = tuple(table.given) if key == "study" and table.given else tuple(table.column(cluster))
    else:
        label = name or "cluster"
        values = tuple(map(str, cluster))
    if len(values) != k:
        raise InputError(f"{len(values)} cluster labels for {k} rows", option="--cluster")
    levels = {v: i for i, v in enumerate(dict.fromkeys(values))}
    cl = np.array([levels[v] for v in values], dtype=np.intp)
    n = len(levels)
    if n <= p:
        raise InputError(f"cluster-robust inference with {p} coefficient{'s' if p > 1 else ''} needs more than "
                         f"{p} clusters, found {n}", option="--cluster")
    e = y - X @ beta
    # U = W X and W e, block by block (W is block diagonal by the model's blocks)
    U = np.zeros((k, p))
    We = np.zeros(k)
    for rows, W, _ in blocks:
        U[rows] = np.einsum("bij,bjp->bip", W, X[rows])
        We[rows] = np.einsum("bij,bj->bi", W, e[rows])
    if kind == "CR1":
        # metafor robust(): meat = sum_c (X'W)_c e_c e_c' (WX)_c, adjusted by n / (n - p)
        S = np.zeros((n, p))
        np.add.at(S, cl, U * e[:, None])
        vcov = bread @ (S.T @ S) @ bread * n / (n - p)
        df = np.full(p, float(n - p))
    else:
        vcov, df = _cr2(X, e, U, bread, blocks, cl, n)
    se = np.sqrt(np.diag(vcov))
    t = beta / se
    pv = 2 * stdtr(df, -np.abs(t))
    crit = stdtrit(df, 0.5 + level / 2)
    coefs = tuple(RobustCoefficient(nm, float(b), float(s), float(tt), float(d), float(pp), float(b - c * s),
                                    float(b + c * s))
                  for nm, b, s, tt, d, pp, c in zip(names, beta, se, t, df, pv, crit))
    qm = qm_df = qm_p = None
    if p > 1 and names[0] == "intrcpt" and kind == "CR1":
        # metafor: F test of coefficients 2:p on (p - 1, n - p) df
        from scipy.special import fdtrc

        b1 = beta[1:]
        qm = float(b1 @ np.linalg.solve(vcov[1:, 1:], b1)) / (p - 1)
        qm_df = (p - 1, n - p)
        qm_p = float(fdtrc(p - 1, n - p, qm))
    out = RobustResult(kind, label, n, level, coefs, vcov, qm, qm_df, qm_p)
    from ..fit.multilevel import MvResult

    if isinstance(res, MvResult):
        return replace(res, robust=out)
    return replace(res, extra={**res.extra, "robust": out})


def _cr2(X, e, U, bread, blocks, cl, n):
    """clubSandwich's CR2 with the working model as target (W = Phi^-1) and the Satterthwaite df."""
    k, p = X.shape
    # each cluster's rows and its marginal covariance Phi_c (blocks nested within clusters)
    members: list[list[int]] = [[] for _ in range(n)]
    for i, c in enumerate(cl):
        members[c].append(i)
    # Phi as a row -> (block, position) lookup; a cluster must hold whole blocks
    blk_of = np.empty(k, np.intp)
    pos_of = np.empty(k, np.intp)
    mats: list[np.ndarray] = []
    for rows, _W, M in blocks:
        base = len(mats)
        for b in range(rows.shape[0]):
            blk_of[rows[b]] = base + b
            pos_of[rows[b]] = np.arange(rows.shape[1])
            mats.append(M[b])
    for c in range(n):
        bl = set(blk_of[members[c]].tolist())
        for b in bl:
            if np.any(cl[np.flatnonzero(blk_of == b)] != c):
                raise InputError("CR2 needs the model's blocks (its random terms' groups) nested within the "
                                 "clusters; choose a coarser --cluster or use CR1", option="--cluster")
    meat = np.zeros((p, p))
    Q = np.zeros((p, n))  # X_c' p_c per cluster, for the Satterthwaite df
    P_list = []
    for c in range(n):
        idx = np.array(members[c])
        Phi = np.zeros((len(idx), len(idx)))
        for a, i in enumerate(idx):
            for b_, j in enumerate(idx):
                if blk_of[i] == blk_of[j]:
                    Phi[a, b_] = mats[blk_of[i]][pos_of[i], pos_of[j]]
        Xc = X[idx]
        D = np.linalg.cholesky(Phi).T  # upper: Phi = D'D
        B = D @ (Phi - Xc @ bread @ Xc.T) @ D.T
        vals, vecs = np.linalg.eigh(0.5 * (B + B.T))
        tol = max(vals.max(), 0.0) * 1e-12
        inv_sqrt = np.where(vals > tol, 1 / np.sqrt(np.where(vals > tol, vals, 1.0)), 0.0)
        A = D.T @ (vecs * inv_sqrt) @ vecs.T @ D
        Uc = U[idx]  # W_c X_c
        s = Uc.T @ (A @ e[idx])
        meat += np.outer(s, s)
        P_list.append((idx, A @ Uc @ bread, Phi, Xc))  # p_c for all contrasts: A W X B (n_c x p)
    vcov = bread @ meat @ bread
    df = np.zeros(p)
    for j in range(p):
        # g_c' y with p_c = A_c W_c X_c B e_j; under the working model
        # Omega_cd = p_c' (Phi_c delta_cd - X_c B X_d') p_d
        diag = np.zeros(n)
        for c, (_idx, Pm, Phi, Xc) in enumerate(P_list):
            pc = Pm[:, j]
            diag[c] = pc @ Phi @ pc
            Q[:, c] = Xc.T @ pc
        QBQ = Q.T @ bread @ Q
        omega_diag = diag - np.diag(QBQ)
        total = omega_diag.sum()
        sq = float((diag**2).sum() - 2 * (diag * np.diag(QBQ)).sum() + (QBQ**2).sum())
        df[j] = total**2 / sq
    return vcov, df


__all__ = ["robust", "RobustResult", "RobustCoefficient", "TYPES"]
