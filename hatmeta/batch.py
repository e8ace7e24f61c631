"""``--by``: pool every group of rows separately, all groups in one vectorised fit (``core``)."""

from __future__ import annotations

import numpy as np

from . import core
from .effects import escalc
from .errors import InputError
from .models import normalise_method, rma, study_results
from .results import MetaResult


def pool_groups(table, by, measure, method="REML", ci="wald", pi="t", level=0.95, cc=0.5) -> list:
    """One MetaResult per value of column ``by``, in order of first appearance.

    Groups too small for the method are answered with NaN numbers and a note, never dropped.
    """
    method = normalise_method(method)
    keys = table.column(by)
    es = escalc(table, measure, cc=cc)
    if len(keys) != es.k:  # rows dropped by escalc (double zeros): re-read the key of the rows kept
        keys = es.table.column(by)
    levels = list(dict.fromkeys(keys))
    lookup = {x: j for j, x in enumerate(levels)}
    gid_all = np.fromiter((lookup[x] for x in keys), dtype=np.intp, count=len(keys))
    order = np.argsort(gid_all, kind="stable")
    G = len(levels)
    counts = np.bincount(gid_all, minlength=G)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    if method in ("MH", "PETO"):
        return [_single(es.subset(order[starts[j]: starts[j] + counts[j]]), levels[j], method, ci, pi, level)
                for j in range(G)]
    need = 2 if method in core.TAU2_METHODS or ci == "hksj" else 1
    ok = counts >= need
    okg = np.flatnonzero(ok)
    remap = np.full(G, -1, dtype=np.intp)
    remap[okg] = np.arange(len(okg))
    rows = order[ok[gid_all[order]]]
    g = core.Groups(es.yi[rows], es.vi[rows], remap[gid_all[rows]], len(okg))
    with np.errstate(invalid="ignore", divide="ignore"):
        f = core.fit(g, method=method, ci=ci, pi=pi, level=level)
    weights = np.empty(es.k)
    weights[rows] = f.weights
    out = []
    random = method not in ("FE",)
    nan = float("nan")
    for j in range(G):
        idx = order[starts[j]: starts[j] + counts[j]]
        sub = es.subset(idx)
        if not ok[j]:
            out.append(_too_small(sub, levels[j], method, ci, pi, level, need))
            continue
        m = remap[j]
        val = {name: float(getattr(f, name)[m]) for name in (
            "estimate", "se", "ci_low", "ci_high", "tau2", "tau2_ci_low", "tau2_ci_high", "q", "q_p",
            "i2", "h2", "stat", "p")}
        out.append(MetaResult(
            measure=es.measure, method=method, ci_method=ci, pi_method=pi if random else "none",
            scale=es.scale, k=int(counts[j]), pi_low=float(f.pi_low[m]) if random else nan,
            pi_high=float(f.pi_high[m]) if random else nan, tau=float(np.sqrt(val["tau2"])),
            q_df=int(counts[j] - 1), df=None if f.df is None else float(f.df[m]),
            studies=study_results(sub, weights[idx], level), level=level, group=str(levels[j]),
            notes=tuple(n for n in es.notes if any(s in n for s in sub.studies)), **val))
    return out


def _single(sub, group, method, ci, pi, level):
    from dataclasses import replace

    try:
        return replace(rma(sub, method=method, ci=ci, pi=pi, level=level), group=str(group))
    except InputError as exc:
        return _too_small(sub, group, method, ci, pi, level, None, str(exc.message))


def _too_small(sub, group, method, ci, pi, level, need, why=None):
    nan = float("nan")
    why = why or f"method {method} needs at least {need} studies, found {sub.k}"
    return MetaResult(measure=sub.measure, method=method, ci_method=ci, pi_method=pi, scale=sub.scale, k=sub.k,
                      estimate=nan, se=nan, ci_low=nan, ci_high=nan, pi_low=nan, pi_high=nan, tau2=nan,
                      tau2_ci_low=nan, tau2_ci_high=nan, tau=nan, q=nan, q_df=max(sub.k - 1, 0), q_p=nan,
                      i2=nan, h2=nan, stat=nan, p=nan, df=None,
                      studies=study_results(sub, np.full(sub.k, nan), level), level=level, group=str(group),
                      notes=(why,))


