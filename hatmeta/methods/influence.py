"""Influence diagnostics (metafor's ``influence.rma.uni``), the Baujat plot's coordinates, and
confidence intervals for I^2 and H^2 from the Q-profile interval of tau^2 (metafor's ``confint``).

Every leave-one-out refit of every meta-analysis is one group of a single vectorised ``core`` fit,
so k studies cost one pass over k (k - 1) rows (100 studies: ~10,000 rows, milliseconds) and many
``--by`` groups cost one pass too.

Formulas (intercept-only model; Viechtbauer & Cheung 2010, Res Synth Methods 1:112; metafor 3.8):
with w_i = 1/(v_i + tau^2), mu and vb = s2w / sum w from the full fit, and mu_(-i), tau^2_(-i),
vb_(-i) = s2w_(-i) / sum_(-i) w from the fit without study i (s2w = 1 for Wald, the weighted
residual variance for HKSJ / Knapp-Hartung),
  rstudent = (y_i - mu_(-i)) / sqrt(s2w_(-i) (v_i + tau^2_(-i)) + vb_(-i))
  dffits   = (mu - mu_(-i)) / sqrt(s2w_(-i) h_i (tau^2_(-i) + v_i)),  h_i = w_i / sum w
  cook     = (mu - mu_(-i))^2 / vb,   cov_ratio = vb_(-i) / vb,
  q_deleted = Cochran's Q (weights 1/v) of the other studies.
A study is flagged influential as metafor does: |dffits| > 3 sqrt(1/(k-1)), pchisq(cook, 1) > 0.5,
h > 3/k, or |dfbetas| > 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..fit import core
from ..fit.effects import EffectSizes
from ..results import InfluenceRow
from ..vocabulary import COMMON_EFFECT_METHODS

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from ..results import Influence, MetaResult

CHUNK_ROWS = 2_000_000  # leave-one-out rows per vectorised pass: bounds memory for very large k


def _loo_index(sizes: np.ndarray, rows: range | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For rows grouped contiguously with ``sizes``: (row of each leave-one-out member, its fit id),
    fit r holding every row of r's group except r; only the fits of ``rows`` (a range) if given,
    numbered from 0."""
    sizes = np.asarray(sizes, dtype=np.intp)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
    n = int(sizes.sum())
    grp = np.repeat(np.arange(len(sizes)), sizes)
    pos = np.arange(n) - starts[grp]  # position of each row within its group
    r = np.arange(n) if rows is None else np.arange(rows.start, rows.stop)
    m = sizes[grp[r]] - 1  # members of each leave-one-out fit
    fit_id = np.repeat(np.arange(len(r)), m)
    offs = np.arange(int(m.sum())) - np.repeat(np.cumsum(m) - m, m)
    member = starts[grp[r]][fit_id] + offs + (offs >= pos[r][fit_id])
    return member, fit_id, grp


def _deleted_fits(y: np.ndarray, v: np.ndarray, sizes: np.ndarray, m: str, hksj: bool) -> dict[str, np.ndarray]:
    """tau^2, mean, sum of weights, s2w and Cochran's Q of every leave-one-out fit (per row), in
    passes of at most CHUNK_ROWS rows."""
    n = len(y)
    grp = np.repeat(np.arange(len(sizes)), sizes)
    per = sizes[grp] - 1
    out = {key: np.empty(n) for key in ("tau2", "mu", "sw", "s2w", "q")}
    start = 0
    while start < n:
        stop = start + 1
        total = per[start]
        while stop < n and total + per[stop] <= CHUNK_ROWS:
            total += per[stop]
            stop += 1
        member, fit_id, _ = _loo_index(sizes, range(start, stop))
        G = stop - start
        loo = core.Groups(y[member], v[member], fit_id, G)
        tau2_d = core.estimate_tau2(loo, m)
        w_d = 1 / (v[member] + tau2_d[fit_id])
        mu_d, sw_d = loo.wmean(w_d)
        with np.errstate(divide="ignore", invalid="ignore"):
            s2w = (loo.sum(w_d * (loo.y - mu_d[fit_id]) ** 2) / (loo.k - 1) if hksj else np.ones(G))
        sl = slice(start, stop)
        out["tau2"][sl], out["mu"][sl], out["sw"][sl], out["s2w"][sl] = tau2_d, mu_d, sw_d, s2w
        out["q"][sl] = core.q_stat(loo)
        start = stop
    return out


def influence_arrays(y: np.ndarray, v: np.ndarray, sizes: ArrayLike, method: str = "REML",
                     ci: str = "wald") -> dict[str, np.ndarray]:
    """Influence statistics for rows grouped contiguously in meta-analyses of ``sizes`` studies.

    Returns a dict of per-row arrays (rstudent, dffits, cooks_distance, hat, cov_ratio, tau2_deleted,
    q_deleted, dfbetas, baujat_x, baujat_y, influential). Common-effect methods (FE, MH, Peto) use
    inverse-variance weights with tau^2 = 0.
    """
    y, v = np.asarray(y, float), np.asarray(v, float)
    m = "FE" if method in COMMON_EFFECT_METHODS else method
    sizes = np.asarray(sizes, dtype=np.intp)
    G = len(sizes)
    grp = np.repeat(np.arange(G), sizes)
    full = core.Groups(y, v, grp, G)
    tau2 = core.estimate_tau2(full, m)
    w = 1 / (v + tau2[grp])
    mu, sw = full.wmean(w)
    k = sizes.astype(float)
    hksj = ci == "hksj"
    with np.errstate(divide="ignore", invalid="ignore"):
        s2w = full.sum(w * (y - mu[grp]) ** 2) / (k - 1) if hksj else np.ones(G)
        vb = s2w / sw
        d = _deleted_fits(y, v, sizes, m, hksj)
        tau2_d, mu_d, sw_d, s2w_d, q_d = d["tau2"], d["mu"], d["sw"], d["s2w"], d["q"]
        vb_d = s2w_d / sw_d
        hat = w / sw[grp]
        resid = y - mu_d
        resid = np.where(np.abs(resid) < 100 * np.finfo(float).eps, 0.0, resid)
        rstudent = resid / np.sqrt(v * s2w_d + vb_d + tau2_d * s2w_d)
        diff = mu[grp] - mu_d
        dffits = diff / np.sqrt(s2w_d * hat * (tau2_d + v))
        cook = diff**2 / vb[grp]
        cov_ratio = vb_d / vb[grp]
        # dfbetas: the change scaled by the variance of the full-data estimate under tau^2_(-i).
        sw_all = sw_d + 1 / (v + tau2_d)
        dfbetas = diff / np.sqrt(s2w_d / sw_all)
        baujat_x = (y - mu[grp]) ** 2 / (tau2[grp] + v)
        baujat_y = diff**2 / vb_d
    from scipy.special import chdtr

    influential = ((np.abs(dffits) > 3 * np.sqrt(1 / (k[grp] - 1))) | (chdtr(1, cook) > 0.5)
                   | (hat > 3 / k[grp]) | (np.abs(dfbetas) > 1))
    return dict(rstudent=rstudent, dffits=dffits, cooks_distance=cook, hat=hat, cov_ratio=cov_ratio,
                tau2_deleted=tau2_d, q_deleted=q_d, dfbetas=dfbetas, baujat_x=baujat_x, baujat_y=baujat_y,
                influential=influential)


FIELDS = ("rstudent", "dffits", "cooks_distance", "hat", "cov_ratio", "tau2_deleted", "q_deleted")


def influence(res: MetaResult | EffectSizes, method: str | None = None, ci: str | None = None) -> Influence:
    """metafor's ``influence()``: per study the externally studentised residual, DFFITS, Cook's distance,
    hat value, covariance ratio, and tau² and Q with the study left out (needs at least 3 studies).

    Parameters
    ----------
    res : MetaResult
        A fit from ``rma`` or ``pool_table`` (or its EffectSizes).
    method, ci : optional
        Override the fit's tau² estimator and CI method (common-effect fits use inverse-variance weights).

    Returns
    -------
    Influence
        One ``InfluenceRow`` per study (residuals and DFFITS in SD units, tau² and Q with the study
        left out on the analysis scale).

    References
    ----------
    Viechtbauer W, Cheung MW-L (2010). Outlier and influence diagnostics for meta-analysis. Res Synth
    Methods 1:112-125.
    """
    from ..results import Influence
    from .fitted import fitted

    f = fitted(res, method, ci)
    m = "FE" if f.method in COMMON_EFFECT_METHODS else f.method
    return Influence(f.es.measure, m, _influence(f.es, m, f.ci))


def _influence(es: EffectSizes, method: str, ci: str) -> tuple[InfluenceRow, ...]:
    from ..errors import InputError

    if es.k < 3:
        raise InputError(f"influence diagnostics need at least 3 studies, found {es.k}", option="--influence")
    a = influence_arrays(es.yi, es.vi, [es.k], method=method, ci=ci)
    cols = {name: a[name].tolist() for name in FIELDS}
    flags = a["influential"].tolist()
    return tuple(InfluenceRow(study=s, influential=bool(flags[i]), **{n: cols[n][i] for n in FIELDS})
                 for i, s in enumerate(es.studies))


def heterogeneity_ci(yi: ArrayLike, vi: ArrayLike, level: float = 0.95) -> dict[str, float]:
    """(tau2, I^2 %, H^2) confidence bounds from the Q-profile interval of tau^2 (Viechtbauer 2007), as
    metafor's confint: I^2 = 100 tau^2 / (tau^2 + s^2) and H^2 = (tau^2 + s^2) / s^2, with the typical
    within-study variance s^2 = (k - 1) sum w / ((sum w)^2 - sum w^2), w = 1/v (Higgins & Thompson 2002).

    These are tau^2-based: at the tau^2 estimate the same formulas give metafor's I^2, which differs
    from the Q-based I^2 = (Q - df)/Q that hatmeta reports (equal only for the DL estimator), so the
    interval need not contain the Q-based point estimate."""
    yi, vi = np.asarray(yi, float), np.asarray(vi, float)
    g = core.Groups.single(yi, vi)
    lo_g, hi_g = core.qprofile_ci(g, level)
    w = 1 / vi
    k = len(yi)
    s2 = (k - 1) * w.sum() / (w.sum() ** 2 - (w**2).sum())
    i2: Callable[[float], float] = lambda t: 100 * t / (t + s2)  # noqa: E731
    h2: Callable[[float], float] = lambda t: (t + s2) / s2  # noqa: E731
    lo, hi = float(lo_g[0]), float(hi_g[0])
    return {"tau2_ci_low": lo, "tau2_ci_high": hi, "i2_ci_low": i2(lo), "i2_ci_high": i2(hi),
            "h2_ci_low": h2(lo), "h2_ci_high": h2(hi)}


def influence_by_group(es: EffectSizes, gid: ArrayLike, G: int, method: str = "REML",
                       ci: str = "wald") -> list[list[dict[str, object]]]:
    """Influence rows (JSON-ready dicts) for every group of rows of ``es``, all groups in one vectorised
    fit; groups with fewer than 3 studies get an empty list (and are named by the caller)."""
    gid = np.asarray(gid, dtype=np.intp)
    k = np.bincount(gid, minlength=G)
    ok = k >= 3
    order = np.argsort(gid, kind="stable")
    order = order[ok[gid[order]]]
    out: list[list[dict[str, object]]] = [[] for _ in range(G)]
    if order.size == 0:
        return out
    a = influence_arrays(es.yi[order], es.vi[order], k[ok], method=method, ci=ci)
    cols = {name: a[name].tolist() for name in FIELDS}
    flags = a["influential"].tolist()
    for pos, i in enumerate(order.tolist()):
        row = {"study": es.studies[i], **{n: cols[n][pos] for n in FIELDS}, "influential": bool(flags[pos])}
        out[int(gid[i])].append(row)
    return out
