"""Leave-one-out, cumulative and subgroup analyses, each fitted as many groups at once (``core``)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ..fit import core
from ..fit.effects import EffectSizes
from ..results import Sensitivity, SensitivityRow, SubgroupResult, Subgroups, SubgroupTest
from ..vocabulary import COMMON_EFFECT_METHODS
from .fitted import fitted

if TYPE_CHECKING:
    from ..results import MetaResult


def _rows(f: core.CoreFit, names) -> tuple:
    return tuple(
        SensitivityRow(study=names[j], k=int(f.k[j]), estimate=float(f.estimate[j]), se=float(f.se[j]),
                       ci_low=float(f.ci_low[j]), ci_high=float(f.ci_high[j]), tau2=float(f.tau2[j]),
                       q=float(f.q[j]), i2=float(f.i2[j]), p=float(f.p[j]))
        for j in range(len(names)))


def _core_method(method):
    # Subgroups of an MH or Peto analysis are pooled with inverse-variance weights.
    return "FE" if method in COMMON_EFFECT_METHODS else method


def _refit_each(es, groups, method, level):
    """MH and Peto sequences: refit each subset with the same method (as metafor's leave1out)."""
    from ..fit.models import rma

    rows = []
    for name, index in groups:
        r = rma(es.subset(index), method=method, level=level)
        rows.append(SensitivityRow(study=name, k=r.k, estimate=r.estimate, se=r.se, ci_low=r.ci_low,
                                   ci_high=r.ci_high, tau2=r.tau2, q=r.q, i2=r.i2, p=r.p))
    return tuple(rows)


def leave_one_out(res: MetaResult | EffectSizes, method: str | None = None, ci: str | None = None,
                  level: float | None = None) -> Sensitivity:
    """The model refitted k times, each time without one study (metafor's ``leave1out``).

    Parameters
    ----------
    res : MetaResult
        A fit from ``rma`` or ``pool_table`` (or its EffectSizes).
    method, ci, level : optional
        Override the fit's tau² estimator, CI method and confidence level.

    Returns
    -------
    Sensitivity
        One row per omitted study (``rows[j].study``): k, estimate and CI (analysis scale), tau², Q, I², p.
    """
    f = fitted(res, method, ci, level)
    rows = _leave_one_out(f.es, f.method, f.ci, f.level)
    return Sensitivity("leave_one_out", f.es.measure, f.es.scale, f.method, f.level, rows)


def _leave_one_out(es: EffectSizes, method, ci, level) -> tuple:
    k = es.k
    if k < 3:
        raise InputError(f"leave-one-out needs at least 3 studies, found {k}", option="--leave-one-out")
    if method in ("MH", "PETO"):
        return _refit_each(es, [(es.studies[j], [i for i in range(k) if i != j]) for j in range(k)],
                           method, level)
    # Group j holds every study except j.
    idx = np.array([i for j in range(k) for i in range(k) if i != j], dtype=np.intp)
    gid = np.repeat(np.arange(k, dtype=np.intp), k - 1)
    g = core.Groups(es.yi[idx], es.vi[idx], gid, k)
    f = core.fit(g, method=_core_method(method), ci=ci, level=level, tau2_ci=False)
    return _rows(f, es.studies)


def cumulative(res: MetaResult | EffectSizes, order: str, method: str | None = None, ci: str | None = None,
               level: float | None = None) -> Sensitivity:
    """The model refitted as studies are added in the order of column ``order`` (numerically when every
    value is a number; metafor's ``cumul``).

    Parameters
    ----------
    res : MetaResult
        A fit from ``rma`` or ``pool_table`` (or its EffectSizes).
    order : str
        The table's column that orders the studies (e.g. ``"year"``).
    method, ci, level : optional
        Override the fit's tau² estimator, CI method and confidence level.

    Returns
    -------
    Sensitivity
        One row per added study (``rows[j].study``), analysis scale.
    """
    f = fitted(res, method, ci, level)
    rows = _cumulative(f.es, order, f.method, f.ci, f.level)
    return Sensitivity("cumulative", f.es.measure, f.es.scale, f.method, f.level, rows, order_by=order)


def _cumulative(es: EffectSizes, order_by: str, method, ci, level) -> tuple:
    keys = es.table.column(order_by)
    order = _sort_order(keys)
    k = es.k
    if method in ("MH", "PETO"):
        return _refit_each(es, [(es.studies[order[j]], order[: j + 1]) for j in range(k)], method, level)
    idx = np.concatenate([order[: j + 1] for j in range(k)]).astype(np.intp)
    gid = np.repeat(np.arange(k, dtype=np.intp), np.arange(1, k + 1))
    g = core.Groups(es.yi[idx], es.vi[idx], gid, k)
    m = _core_method(method)
    # The first fits have too few studies for tau^2 or HKSJ: they are fitted but marked by k.
    with np.errstate(divide="ignore", invalid="ignore"):
        f = core.fit(g, method=m, ci=ci, level=level, tau2_ci=False)
    return _rows(f, [es.studies[i] for i in order])


def _sort_order(keys):
    """Stable order of text keys, numerically when every key is a number."""
    try:
        vals = [float(x) for x in keys]
        return np.argsort(np.asarray(vals), kind="stable")
    except ValueError:
        return np.array(sorted(range(len(keys)), key=lambda i: keys[i]), dtype=np.intp)


def subgroups(res: MetaResult | EffectSizes, by: str, method: str | None = None, ci: str | None = None,
              level: float | None = None) -> Subgroups:
    """A separate model (own tau²) per level of column ``by``, and the test for subgroup differences:
    Q between subgroup estimates with weights 1/se², df = groups - 1 (Cochrane Handbook 10.11.3.1;
    Borenstein et al. 2009 ch. 19, separate tau²).

    Parameters
    ----------
    res : MetaResult
        A fit from ``rma`` or ``pool_table`` (or its EffectSizes).
    by : str
        The table's column whose values form the subgroups (in order of first appearance).
    method, ci, level : optional
        Override the fit's tau² estimator, CI method and confidence level.

    Returns
    -------
    Subgroups
        ``groups`` (estimate and CI on the analysis scale, tau², Q, I² per subgroup) and ``test``.

    References
    ----------
    Borenstein M, Hedges LV, Higgins JPT, Rothstein HR (2009). Introduction to Meta-Analysis, ch. 19.
    Wiley.
    """
    f = fitted(res, method, ci, level)
    groups, test = _subgroups(f.es, by, f.method, f.ci, f.level)
    return Subgroups(by, f.es.measure, f.es.scale, f.method, f.level, groups, test)


def _subgroups(es: EffectSizes, column: str, method, ci, level):
    from scipy.special import chdtrc

    keys = es.table.column(column)
    levels = list(dict.fromkeys(keys))  # in order of first appearance, as the table lists them
    if len(levels) < 2:
        raise InputError(f"subgroup column has a single value ({levels[0]!r}): nothing to compare",
                         file=es.table.path, column=column)
    gid = np.array([levels.index(x) for x in keys], dtype=np.intp)
    order = np.argsort(gid, kind="stable")
    g = core.Groups(es.yi[order], es.vi[order], gid[order], len(levels))
    m = _core_method(method)
    kk = g.k
    if m in core.TAU2_METHODS and (kk < 2).any():
        # A one-study subgroup has no tau^2 to estimate: it is fitted with tau^2 = 0 (its 0/0 is masked).
        with np.errstate(divide="ignore", invalid="ignore"):
            tau2 = np.where(kk >= 2, core.estimate_tau2(g, m), 0.0)
    else:
        tau2 = None
    with np.errstate(divide="ignore", invalid="ignore"):
        f = core.fit(g, method=m, ci=ci, level=level, tau2=tau2, tau2_ci=False)
        if ci == "hksj" and (kk < 2).any():
            # HKSJ has no residual variance with one study; such a subgroup shows that trial's own
            # Wald interval, as RevMan does for a one-study subgroup.
            wald = core.fit(g, method=m, ci="wald", level=level, tau2=tau2, tau2_ci=False)
            one = kk < 2
            f = replace(f, **{name: np.where(one, getattr(wald, name), getattr(f, name))
                              for name in ("se", "ci_low", "ci_high", "stat", "p")})
    groups = tuple(
        SubgroupResult(group=levels[j], k=int(kk[j]), estimate=float(f.estimate[j]), se=float(f.se[j]),
                       ci_low=float(f.ci_low[j]), ci_high=float(f.ci_high[j]), tau2=float(f.tau2[j]),
                       q=float(f.q[j]), i2=float(f.i2[j]))
        for j in range(len(levels)))
    w = 1 / f.se**2
    mu = np.sum(w * f.estimate) / np.sum(w)
    qb = float(np.sum(w * (f.estimate - mu) ** 2))
    df = len(levels) - 1
    return groups, SubgroupTest(q=qb, df=df, p=float(chdtrc(df, qb)))
