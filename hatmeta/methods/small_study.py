"""Small-study effects: the classical Egger regression test (Egger et al. 1997, BMJ 315:629)."""

from __future__ import annotations

import numpy as np

from ..fit.effects import EffectSizes
from ..errors import InputError
from ..results import EggerTest


def egger(es: EffectSizes) -> EggerTest:
    """Ordinary least squares of yi/se on 1/se; the intercept measures asymmetry (t on k - 2 df).

    Equivalent to metafor's ``regtest(model="lm", predictor="sei")``, whose coefficient of sei is
    this intercept. Warns below 10 studies (Cochrane Handbook 13.3.5.4: too little power).
    """
    from scipy.special import stdtr

    k = es.k
    if k < 3:
        raise InputError(f"Egger's test needs at least 3 studies, found {k}", file=es.table.path)
    se = np.sqrt(es.vi)
    X = np.column_stack([np.ones(k), 1 / se])
    z = es.yi / se
    beta, *_ = np.linalg.lstsq(X, z, rcond=None)
    resid = z - X @ beta
    df = k - 2
    sigma2 = resid @ resid / df
    cov = sigma2 * np.linalg.inv(X.T @ X)
    b0, s0 = float(beta[0]), float(np.sqrt(cov[0, 0]))
    t = b0 / s0
    warning = (f"only {k} studies: Egger's test has little power below 10 (Cochrane Handbook 13.3.5.4)"
               if k < 10 else None)
    return EggerTest(intercept=b0, se=s0, t=t, df=df, p=float(2 * stdtr(df, -abs(t))), slope=float(beta[1]),
                     warning=warning)
