"""RevMan Web's current random-effects defaults (``--preset revman-web``).

Cochrane's Statistical Methods Group recommended, and RevMan implemented in January 2025
("Random-effects meta-analysis methods for Intervention Reviews", methods.cochrane.org; the
2024 addendum to the proposal): the restricted maximum-likelihood (REML) tau^2, the Q-profile CI
for tau^2 (Viechtbauer 2007), the Hartung-Knapp-Sidik-Jonkman CI for the mean, prediction
intervals, and I^2 computed from tau^2 "to reflect the estimated heterogeneity variance under DL or
REML": I^2 = tau^2 / (tau^2 + s^2) with the typical within-study variance
s^2 = (k - 1) sum w / ((sum w)^2 - sum w^2) (Higgins & Thompson 2002, eq. 9; metafor's I^2).

The prediction interval is mu +- t_{k-1} sqrt(SE_HKSJ^2 + tau^2), as metafor's predict() of
rma(method="REML", test="knha") computes it (the check in issue 25). Fixed-effect analyses are
RevMan 5's (fit/revman5.py): RevMan Web kept those formulas. Study effects are RevMan's.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import InputError
from ..results import MetaResult
from .effects import EffectSizes


def revman_web(es: EffectSizes, method: str | None = None, level: float = 0.95) -> MetaResult:
    """RevMan Web's analysis of ``es``: REML (or ``method="DL"``) random effects with HKSJ, the
    Q-profile CI for tau^2, a t prediction interval on k - 1 df and the tau^2-based I^2 (percent).
    ``method`` MH, FE/IV or PETO: RevMan's fixed-effect analyses (as RevMan 5).

    Returns a MetaResult on the analysis scale with ``extra["preset"] == "revman-web"``.
    """
    from .. import dist as _dist
    from . import core
    from .revman5 import revman5, study_effects

    m = "REML" if method is None else str(method).strip().upper()
    if m in ("MH", "FE", "IV", "PETO"):
        res = revman5(es, method=m, level=level, preset="revman-web")
        return replace(res, extra={**res.extra, "preset": "revman-web"})
    if m not in ("REML", "DL"):
        raise InputError(f"the revman-web preset estimates tau^2 by REML (default) or DL, not {method}",
                         column="--method")
    if es.k < 2:
        raise InputError(f"random effects with HKSJ need at least 2 studies, found {es.k}", file=es.table.path)
    rows = study_effects(es, "IV")
    g = core.Groups.single(rows.yi, rows.vi)
    f = core.fit(g, method=m, ci="hksj", pi="t", level=level)
    def s(a: object) -> float:
        return float(np.asarray(a).reshape(-1)[0])
    k = es.k
    w = 1 / rows.vi
    s2 = (k - 1) * w.sum() / (w.sum() ** 2 - np.sum(w**2))
    tau2, mu, se = s(f.tau2), s(f.estimate), s(f.se)
    i2 = 100 * tau2 / (tau2 + s2)
    half = float(_dist.t_isf(k - 1, (1 - level) / 2)) * np.sqrt(se**2 + tau2)
    from .models import study_results

    name = "REML" if m == "REML" else "DL"
    notes = tuple(es.notes) + (f"preset revman-web: RevMan Web random effects ({name} tau^2, HKSJ CI, Q-profile "
                               "CI for tau^2, prediction interval t on k - 1 df, I^2 from tau^2)",)
    return MetaResult(
        measure=es.measure, method=m, ci_method="hksj", pi_method="t", scale=es.scale, k=k, estimate=mu, se=se,
        ci_low=s(f.ci_low), ci_high=s(f.ci_high), pi_low=mu - half, pi_high=mu + half, tau2=tau2,
        tau2_ci_low=s(f.tau2_ci_low), tau2_ci_high=s(f.tau2_ci_high), tau=float(np.sqrt(tau2)), q=s(f.q),
        q_df=int(s(f.q_df)), q_p=s(f.q_p), i2=i2, h2=100 / (100 - i2) if i2 < 100 else float("inf"),
        stat=s(f.stat), p=s(f.p), df=s(f.df), studies=study_results(replace(es, yi=rows.yi, vi=rows.vi), f.weights,
                                                                     level),
        level=level, notes=notes, extra={"preset": "revman-web", "i2_definition": "tau2 / (tau2 + s2)",
                                         "pi_df": k - 1})
