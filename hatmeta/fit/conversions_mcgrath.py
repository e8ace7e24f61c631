"""McGrath et al. (2020)'s quantile estimation (QE) and Box-Cox (BC) means and SDs from a median with the
range (S1), the IQR (S2) or both (S3), for skewed data where Luo/Wan/Shi's normal-theory formulas mislead.

Source: McGrath S, Zhao X, Steele R, Thombs BD, Benedetti A (2020). Estimating the sample mean and
standard deviation from commonly reported quantiles in meta-analysis. Stat Methods Med Res 29:2520-2537;
as implemented in the R package estmeansd 1.0.1 (``qe.mean.sd``, ``bc.mean.sd``), which R meta's
``metamean(method.mean = "QE-McGrath" / "BC-McGrath")`` calls. The starting values, the boxes the
parameters are kept in and the choice among families follow estmeansd's ``set.qe.fit.control`` and
``qe.fit``; where the package stops early, hatmeta goes further:

- QE fits the normal, log-normal, gamma, Weibull and beta distributions by least squares between the
  reported quantiles and the distribution's quantiles at probabilities 1/n, 0.25, 0.5, 0.75, 1 - 1/n
  (those reported), and takes the mean and SD of the best-fitting family. estmeansd minimises with
  R's ``optim(method = "L-BFGS-B")`` at its default tolerance and finite-difference step (1e-3), which
  can stop short of the minimum (estimates a few 1e-4 off), or errors where a trial step overflows the
  quantiles (then the family is dropped: the Weibull, for most min-median-max data); hatmeta minimises to
  the box-constrained minimum (trust-region least squares from the same start, with Nelder-Mead passes
  until the sum of squares stops falling), so its sum of squares is never larger than estmeansd's and it
  can choose a family estmeansd dropped (tests/validation/test_estmeansd.py shows it per case).
- BC finds the Box-Cox power lambda in [-2, 3] that makes the transformed quantiles symmetric about the
  median (lambda below 0 set to 0, as estmeansd does), takes Luo's mean and Wan's SD of the transformed
  quantiles, and maps them back through the inverse transform of the normal truncated symmetrically to
  the transform's range. estmeansd finds lambda with R's ``optimize`` at its default tolerance
  (1.2e-4 in lambda) and by default maps back by Monte Carlo (``avoid.mc = FALSE``: n + 1000 random
  draws, a different answer on each call, and meta's metamean uses that default); hatmeta finds lambda
  to 1e-10 and integrates numerically (as estmeansd's ``avoid.mc = TRUE`` does for lambda > 0.01; for
  0 < lambda <= 0.01 that option takes log-normal moments instead, hatmeta still integrates), so its answer
  is the expectation the Monte Carlo draws estimate, the same on every run.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from .conversions import Converted, _num, luo_mean, wan_sd

if TYPE_CHECKING:
    from collections.abc import Callable

Box = tuple[float, float]  # a parameter's lower and upper bound
MCGRATH = "McGrath et al. (2020) Stat Methods Med Res 29:2520; R estmeansd 1.0.1"
FAMILIES = ("normal", "log-normal", "gamma", "weibull", "beta")


def _summaries(n: Any, median: Any, q1: Any, q3: Any, minimum: Any, maximum: Any,
               method: str) -> tuple[float, str, list[float], list[float], list[str]]:
    """Checked inputs: the scenario (estmeansd's get.scenario: S3 before S2 before S1), the reported
    quantiles in order and their probabilities (qe.fit)."""
    n, m = _num(n, "n"), _num(median, "median")
    a, lo, hi, b = (_num(x, k) for x, k in ((minimum, "min"), (q1, "q1"), (q3, "q3"), (maximum, "max")))
    if n is None or m is None:
        raise InputError("the median and n are needed", column="median")
    if not 3 <= n <= 1e6:
        raise InputError(f"n = {n:g}: the {method} method needs 3 <= n <= 1,000,000 (estmeansd)", column="n")
    if None not in (a, lo, hi, b):
        scenario, q, p = "S3", [a, lo, m, hi, b], [1 / n, 0.25, 0.5, 0.75, 1 - 1 / n]
    elif lo is not None and hi is not None:
        scenario, q, p = "S2", [lo, m, hi], [0.25, 0.5, 0.75]
    elif a is not None and b is not None:
        scenario, q, p = "S1", [a, m, b], [1 / n, 0.5, 1 - 1 / n]
    else:
        raise InputError("give the range (min, max), the IQR (q1, q3) or both with the median", column="median")
    names = {"S1": ("min", "median", "max"), "S2": ("q1", "median", "q3"),
             "S3": ("min", "q1", "median", "q3", "max")}[scenario]
    for i in range(len(q) - 1):
        if q[i] > q[i + 1]:
            raise InputError(f"{names[i]} = {q[i]:g} is above {names[i + 1]} = {q[i + 1]:g}", column=names[i])
    if q[0] == q[-1]:
        raise InputError(f"{names[0]} = {names[-1]} = {q[0]:g}: no spread to estimate an SD from",
                         column=names[0])
    notes = []
    if len(set(q)) < len(q):
        notes.append("some of the reported quantiles are equal; estmeansd warns that the method may then behave "
                     "unexpectedly")
    return n, scenario, q, p, notes


def _quantile_function(family: str) -> Callable[[Any, float, float], Any]:
    import numpy as np
    from scipy import special

    if family == "normal":
        return lambda p, mu, sigma: mu + sigma * special.ndtri(p)
    if family == "log-normal":
        return lambda p, mu, sigma: np.exp(mu + sigma * special.ndtri(p))
    if family == "gamma":  # shape, rate
        return lambda p, k, rate: special.gammaincinv(k, p) / rate
    if family == "weibull":  # shape, scale
        return lambda p, k, scale: scale * (-np.log1p(-p)) ** (1 / k)
    return lambda p, a, b: special.betaincinv(a, b, p)


def _mean_sd(family: str, t: tuple[float, float]) -> tuple[float, float]:
    """estmeansd's get.mean.sd: the mean and SD of the fitted distribution."""
    x, y = t
    if family == "normal":
        return x, y
    if family == "log-normal":
        return math.exp(x + y**2 / 2), math.sqrt(math.expm1(y**2) * math.exp(2 * x + y**2))
    if family == "gamma":
        return x / y, math.sqrt(x) / y
    if family == "weibull":
        g1, g2 = math.gamma(1 + 1 / x), math.gamma(1 + 2 / x)
        return y * g1, y * math.sqrt(g2 - g1**2)
    return x / (x + y), math.sqrt(x * y / ((x + y) ** 2 * (x + y + 1)))


def _luo_wan(q: list[float], n: float, scenario: str) -> tuple[float, float]:
    """metaBLUE's Luo.mean and Wan.std of the reported quantiles in order (estmeansd's starting values, and BC's
    location and scale on the transformed scale)."""
    if scenario == "S3":
        return luo_mean(n, q[2], q[1], q[3], q[0], q[4]), wan_sd(n, q[1], q[3], q[0], q[4])
    if scenario == "S2":
        return luo_mean(n, q[1], q[0], q[2]), wan_sd(n, q[0], q[2])
    return luo_mean(n, q[1], minimum=q[0], maximum=q[2]), wan_sd(n, minimum=q[0], maximum=q[2])


def _controls(q: list[float], n: float, scenario: str) -> dict[str, tuple[tuple[float, float], tuple[Box, Box]]]:
    """Starting values and boxes per family: estmeansd's set.qe.fit.control (two.sample.default = FALSE)."""
    from scipy.optimize import brentq

    mid = (q[1], q[3]) if scenario == "S3" else (q[0], q[2])
    mean, sd = _luo_wan(q, n, scenario)
    c = {"normal": ((mean, sd), ((mid[0], mid[1]), (1e-3, 50.0)))}
    if min(q) < 0:
        return c
    cv2 = (sd / mean) ** 2
    if min(q) > 0:
        lnorm_mu = (math.log(mid[0]), math.log(mid[1]))
    else:
        # A zero quantile: estmeansd sets no bounds for the log-normal mu, and qe.fit's
        # c(con$lnorm.mu.bound[1], con$lnorm.sigma.bound[1]) then collapses to sigma's bounds, which optim
        # recycles to both parameters: mu is kept in [1e-3, 10].
        lnorm_mu = (1e-3, 10.0)
    c["log-normal"] = ((math.log(mean / math.sqrt(1 + cv2)), math.sqrt(math.log1p(cv2))), (lnorm_mu, (1e-3, 10.0)))
    c["gamma"] = ((mean**2 / sd**2, mean / sd**2), ((1e-3, 100.0), (1e-3, 100.0)))
    # Weibull shape: the k whose coefficient of variation is sd / mean (estmeansd solves it with nlminb
    # from (mean / sd)^1.086; the start only sets where the fit begins)
    def cv_gap(k: float) -> float:
        return math.sqrt(math.gamma(1 + 2 / k) / math.gamma(1 + 1 / k) ** 2 - 1) - sd / mean

    k0 = (mean / sd) ** 1.086
    try:
        k = brentq(cv_gap, 0.05, 100.0, xtol=1e-12) if cv_gap(0.05) * cv_gap(100.0) < 0 else k0
    except (ValueError, OverflowError):
        k = k0
    c["weibull"] = ((k, mean / math.gamma((k + 1) / k)), ((1e-3, 100.0), (1e-3, 100.0)))
    a0 = mean * (mean * (1 - mean) / sd**2 - 1)
    c["beta"] = ((a0, a0 * (1 - mean) / mean), ((1e-3, 40.0), (1e-3, 40.0)))
    return c


def _quantile_jacobian(family: str, p: Any, t: Any, qf: Callable[..., Any]) -> Any:
    """d quantile / d parameters (rows: probabilities), exact where the quantile function has a closed form;
    for the gamma and beta shapes a central difference of the inverse incomplete function (relative step)."""
    import numpy as np
    from scipy import special

    x, y = t
    if family == "normal":
        return np.column_stack([np.ones_like(p), special.ndtri(p)])
    if family == "log-normal":
        qv = qf(p, x, y)
        return np.column_stack([qv, qv * special.ndtri(p)])
    if family == "weibull":
        lg = -np.log1p(-p)
        base = lg ** (1 / x)
        return np.column_stack([-y * base * np.log(lg) / x**2, base])
    cols = []
    for i in range(2):
        h = 1e-6 * max(abs(t[i]), 1e-6)
        up, dn = list(t), list(t)
        up[i], dn[i] = t[i] + h, max(t[i] - h, t[i] * 0.5)
        cols.append((qf(p, *up) - qf(p, *dn)) / (up[i] - dn[i]))
    if family == "gamma":  # the rate enters exactly: q = G^-1(shape, p) / rate
        cols[1] = -qf(p, x, y) / y
    return np.column_stack(cols)


def _fit(family: str, q: list[float], p: list[float], start: tuple[float, float],
         box: tuple[Box, Box]) -> tuple[tuple[float, float], float]:
    """Least squares between reported and fitted quantiles within the box: SciPy's trust-region reflective
    least squares with the quantiles' derivatives, and Nelder-Mead passes where that stops short of a stationary
    point, until the sum of squares stops falling."""
    import numpy as np
    from scipy.optimize import least_squares, minimize

    qf = _quantile_function(family)
    qa, pa = np.asarray(q, float), np.asarray(p, float)
    lo, hi = np.array([b[0] for b in box], float), np.array([b[1] for b in box], float)

    def ssq(t: Any) -> float:
        with np.errstate(all="ignore"):
            r = qf(pa, t[0], t[1]) - qa
        v = float(np.dot(r, r))
        return v if math.isfinite(v) else 1e300

    def grad(t: Any) -> Any:
        with np.errstate(all="ignore"):
            g = 2 * (qf(pa, t[0], t[1]) - qa) @ _quantile_jacobian(family, pa, t, qf)
        return np.where(np.isfinite(g), g, 0.0)

    def stationary(t: Any, f: float) -> bool:
        """The projected gradient vanishes (relative to the parameters' and the fit's scale)."""
        g = grad(t)
        near = 1e-8 * np.maximum(np.abs(t), 1e-3)  # trust-region steps stop just inside a bound
        g = np.where(((t <= lo + near) & (g > 0)) | ((t >= hi - near) & (g < 0)), 0.0, g)
        return float(np.max(np.abs(g) * np.maximum(np.abs(t), 1e-3))) <= 1e-6 * f + 1e-12 * float(qa @ qa)

    def resid(t: Any) -> Any:
        with np.errstate(all="ignore"):
            r = qf(pa, t[0], t[1]) - qa
        return np.where(np.isfinite(r), r, 1e150)

    def jac(t: Any) -> Any:
        with np.errstate(all="ignore"):
            j = _quantile_jacobian(family, pa, t, qf)
        return np.where(np.isfinite(j), j, 0.0)

    def refine(t: Any) -> Any:
        # a least-squares problem: trust-region reflective with the exact Jacobian converges in a few steps
        # (SciPy's L-BFGS-B took hundreds of iterations, each slow, on the same fits)
        t = np.clip(t, lo, hi)
        t = np.where(t <= lo, lo + 1e-12 * np.maximum(np.abs(lo), 1e-3), t)
        t = np.where(t >= hi, hi - 1e-12 * np.maximum(np.abs(hi), 1e-3), t)
        r = least_squares(resid, t, jac=jac, bounds=(lo, hi), method="trf", x_scale="jac", ftol=1e-13,
                          xtol=1e-13, gtol=1e-13, max_nfev=200)
        return np.clip(r.x, lo, hi)

    x = np.clip(np.asarray(start, float), lo, hi)  # optim's L-BFGS-B projects a start outside the box too
    best = ssq(x)
    for _ in range(10):
        y = refine(x)
        if ssq(y) <= best:
            x, best = y, ssq(y)
        if stationary(x, best):
            break
        # Not stationary yet: a Nelder-Mead pass (no derivatives; an overflowing quantile is just a bad point),
        # then the least-squares step again. (estmeansd's L-BFGS-B stalls or errors where a trial step overflows
        # the quantiles, a Weibull shape near its lower bound giving L^(1/k) for k = 1e-3, and drops the family.)
        scale = np.maximum(np.abs(x), 1e-3)
        r = minimize(lambda u, scale=scale: ssq(u * scale), x / scale, method="Nelder-Mead",
                     bounds=list(zip(lo / scale, hi / scale)), options={"xatol": 1e-10, "fatol": 0.0,
                                                                        "maxiter": 1000})
        y = np.clip(r.x * scale, lo, hi)
        if not ssq(y) < best * (1 - 1e-14):
            break
        x, best = y, ssq(y)
    return (float(x[0]), float(x[1])), best


def qe_mean_sd(n: Any, median: Any, q1: Any = None, q3: Any = None, minimum: Any = None,
               maximum: Any = None) -> Converted:
    """McGrath et al. (2020)'s quantile estimation (QE) mean and SD (estmeansd's ``qe.mean.sd``).

    Parameters
    ----------
    n : sample size (3 to 1,000,000, as estmeansd allows).
    median, q1, q3, minimum, maximum : the reported summaries (natural scale): the range (S1), the IQR (S2)
        or both (S3) with the median.

    Returns
    -------
    Converted with ``mean``, ``sd``, ``scenario``, ``distribution`` (the best-fitting family) and ``fits``
    (per family: its two parameters, the sum of squares, mean and SD; the beta only where it could be chosen).
    With a negative quantile only the normal is fitted (estmeansd does the same), and ``notes`` says so; a
    selected fit on the edge of estmeansd's parameter box is named too.
    """
    n, scenario, q, p, notes = _summaries(n, median, q1, q3, minimum, maximum, "QE")
    fits: dict[str, dict[str, Any]] = {}
    for family, (start, box) in _controls(q, n, scenario).items():
        if family == "beta" and fits:
            # beta quantiles lie in [0, 1]: its sum of squares is at least that of the quantiles above 1. When that
            # bound exceeds a fit already made the beta cannot be chosen, and it is not fitted (estmeansd fits it
            # and never picks it); its row is left out of ``fits``
            bound = sum((v - 1) ** 2 for v in q if v > 1)
            if bound > min(f["ssq"] for f in fits.values()):
                continue
        theta, value = _fit(family, q, p, start, box)
        if family == "beta":
            # with data outside (0, 1) the beta's sum of squares has several flat minima along the box's
            # edges; two more starts (estmeansd uses one) keep hatmeta's at least as low as R's from its start
            for other in ((1.0, 1.0), (0.01, 0.01)):
                t2, v2 = _fit(family, q, p, other, box)
                if v2 < value:
                    theta, value = t2, v2
        if value >= 1e300:
            continue
        try:
            mean, sd = _mean_sd(family, theta)
        except (OverflowError, ValueError):
            continue
        if not (math.isfinite(mean) and math.isfinite(sd)):
            continue
        edge = [i for i in range(2) if theta[i] in box[i]]
        fits[family] = {"par": list(theta), "ssq": value, "mean": mean, "sd": sd, "edge": edge}
    if min(q) < 0:
        notes.append("a quantile is negative: only the normal distribution is fitted (as estmeansd does)")
    best = min(fits, key=lambda f: fits[f]["ssq"])
    if fits[best]["edge"]:
        at = ", ".join(f"{fits[best]['par'][i]:g}" for i in fits[best]["edge"])
        notes.append(f"the {best} fit sits on the edge of estmeansd's parameter box (at {at}): the data's "
                     "scale may be outside what that box allows")
    for f in fits.values():
        del f["edge"]
    return Converted({"mean": fits[best]["mean"], "sd": fits[best]["sd"], "scenario": scenario,
                      "distribution": best, "fits": fits},
                     f"McGrath 2020 QE mean and SD ({best} fit, {scenario})", MCGRATH, tuple(notes))


# ---------------------------------------------------------------- Box-Cox

def _bc(x: float, lam: float) -> float:
    """estmeansd's smooth.bc.transform (sign-preserving power)."""
    if abs(lam) < 1e-8:
        return math.log(x)
    return (math.copysign(abs(x) ** lam, x) - 1) / lam


def _bc_inv(y: float, lam: float) -> float:
    if abs(lam) < 1e-8:
        return math.exp(y)
    u = y * lam + 1
    return math.copysign(abs(u) ** (1 / lam), u)


def _asymmetry(q: list[float], lam: float) -> float:
    """estmeansd's find.lambda objective: squared departures from 1 of the upper-to-lower spread ratios
    around the median (IQR and range) of the transformed quantiles."""
    t = [_bc(v, lam) for v in q]
    if len(t) == 3:
        return ((t[2] - t[1]) / (t[1] - t[0]) - 1) ** 2
    return ((t[3] - t[2]) / (t[2] - t[1]) - 1) ** 2 + ((t[4] - t[2]) / (t[2] - t[0]) - 1) ** 2


def bc_mean_sd(n: Any, median: Any, q1: Any = None, q3: Any = None, minimum: Any = None,
               maximum: Any = None) -> Converted:
    """McGrath et al. (2020)'s Box-Cox (BC) mean and SD (estmeansd's ``bc.mean.sd(avoid.mc = TRUE)``).

    Parameters
    ----------
    n : sample size (3 to 1,000,000).
    median, q1, q3, minimum, maximum : the reported summaries (natural scale, all positive: the Box-Cox
        transform takes logarithms and powers).

    Returns
    -------
    Converted with ``mean``, ``sd``, ``scenario``, ``lambda`` (the power), ``location`` and ``scale`` (Luo's
    mean and Wan's SD of the transformed quantiles).
    """
    from scipy import integrate
    from scipy.optimize import minimize_scalar
    from scipy.special import ndtr

    n, scenario, q, _, notes = _summaries(n, median, q1, q3, minimum, maximum, "BC")
    if min(q) <= 0:
        raise InputError(f"the Box-Cox method needs positive quantiles, got {min(q):g}", column="median")
    if any(q[i] == q[i + 1] for i in range(len(q) - 1)):
        raise InputError("the Box-Cox method needs quantiles that differ (a spread ratio is 0/0)", column="median")
    if _asymmetry(q, 0.0) < 1e-8:  # find.lambda: already symmetric on the log scale
        lam = 0.0
    else:
        lam = float(minimize_scalar(lambda x: _asymmetry(q, x), bounds=(-2.0, 3.0), method="bounded",
                                    options={"xatol": 1e-10, "maxiter": 2000}).x)
    if lam > 3 - 1e-6:
        notes.append("the symmetrising power reached the top of estmeansd's search range (3): the quantiles are "
                     "more skewed to the left than a Box-Cox power can undo")
    if lam < 0 and abs(lam) >= 1e-8:
        notes.append(f"the symmetrising power is {lam:.4g} < 0; estmeansd sets it to 0 (log transform)")
    lam = 0.0 if abs(lam) < 1e-8 else max(0.0, lam)  # estmeansd's round_lambda
    t = [_bc(v, lam) for v in q]
    loc, scale = _luo_wan(t, n, scenario)
    if lam > 0:
        # the normal on the transformed scale, truncated symmetrically about its mean to where the inverse
        # transform is defined (estmeansd: [-1/lambda, 2 loc + 1/lambda]); beyond 40 SDs its density is 0.
        # estmeansd's avoid.mc = TRUE takes the log-normal moments for 0 < lambda <= 0.01, ignoring the power
        # and the truncation; its default Monte Carlo (what meta's metamean returns) does not, and neither does
        # this integral (tests/validation/test_estmeansd.py: help_lnorm_n100_S1, lambda 0.008, SD 9% apart).
        lower, upper = sorted((-1 / lam, 2 * loc + 1 / lam))
        lo, hi = max(lower, loc - 40 * scale), min(upper, loc + 40 * scale)
        norm = 1 / (ndtr((upper - loc) / scale) - ndtr((lower - loc) / scale))

        def dens(x: float) -> float:
            return float(norm * math.exp(-0.5 * ((x - loc) / scale) ** 2) / (scale * math.sqrt(2 * math.pi)))

        opts = {"epsabs": 0.0, "epsrel": 1e-12, "limit": 500, "points": [loc]}
        mean = integrate.quad(lambda x: dens(x) * _bc_inv(x, lam), lo, hi, **opts)[0]
        var = integrate.quad(lambda x: dens(x) * (_bc_inv(x, lam) - mean) ** 2, lo, hi, **opts)[0]
        how = "numerical integration"
    else:  # lambda = 0: the log transform, no truncation
        mean = math.exp(loc + scale**2 / 2)
        var = math.expm1(scale**2) * math.exp(2 * loc + scale**2)
        how = "log-normal moments"
    return Converted({"mean": mean, "sd": math.sqrt(var), "scenario": scenario, "lambda": lam, "location": loc,
                      "scale": scale},
                     f"McGrath 2020 BC mean and SD (lambda {lam:.4g}, {how}, {scenario})", MCGRATH, tuple(notes))
