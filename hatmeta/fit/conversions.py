"""Conversions from what trial reports give to what the models need; each names its source.

Every function returns a ``Converted`` (values, the method's name and its citation) so that a
table converted row by row can say which formula produced each number (``convert_rows``). The
formulas follow metafor 4.x/5.0's ``conv.fivenum``, ``conv.wald`` and ``conv.2x2`` and its
``escalc(measure="SMD", ti=, pi=)``, which tests/fixtures/conversions/generate.R runs for the fixtures.

- median with range, IQR or both -> mean and SD: means by Luo et al. (2018) (Stat Methods Med Res
  27:1785-1805; metafor's "luo/wan/shi", its default) or Wan et al. (2014) (BMC Med Res Methodol
  14:135, eqs. 2, 10, 14); SDs by Wan et al. (2014) (eqs. 9 and 16) and, with all five numbers, Shi et al.
  (2020) (Res Synth Methods 11:641-654, eq. 10); the skewness test of Shi et al. (2023)
  (Stat Methods Med Res 32:1338-1360) is reported beside the estimate;
- CI, p-value, z or t -> SE: (upper - lower) / (2 z_{1-alpha/2}) (Cochrane Handbook 6.3.1; conv.wald),
  |estimate| / z_{1-p/2}, |estimate| / t_{df, 1-p/2} (Handbook 6.3.2) or estimate / statistic;
  ratios on the log scale;
- OR with the margins -> the 2x2 table (metafor's conv.2x2, after Bonett 2007's p11 formula); OR with its
  CI and the group sizes -> the 2x2 table (Di Pietrantonj 2006, Stat Med 25:2299-2322: the table
  whose OR and Woolf variance match);
- change-from-baseline SD from a correlation: sqrt(sd1^2 + sd2^2 - 2 r sd1 sd2), and the correlation
  implied by reported change SDs (Cochrane Handbook 6.5.2.8);
- SMD from a t statistic, a two-sided p-value (with the sign of the effect) or an F with one numerator
  df: d = t sqrt(1/n1 + 1/n2) (metafor's escalc with ti/pi), Hedges' g with the exact J.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:
    from typing import TypeAlias

    # A number, its text (a CSV cell) or None (not reported): each goes through _num, which parses it and
    # raises InputError for text that is not a number. Any, not float | str | None: the bodies rebind the
    # parameters to _num's float or None and then rely on their None checks, which mypy cannot follow.
    _Cell: TypeAlias = Any

LUO = "Luo et al. (2018) Stat Methods Med Res 27:1785"
WAN = "Wan et al. (2014) BMC Med Res Methodol 14:135"
SHI = "Shi et al. (2020) Res Synth Methods 11:641"
SHI_TEST = "Shi et al. (2023) Stat Methods Med Res 32:1338"
HANDBOOK_SE = "Cochrane Handbook 6.3.1-6.3.2 (metafor conv.wald)"
BONETT = "metafor conv.2x2 (Bonett 2007)"
DIPIETRANTONJ = "Di Pietrantonj (2006) Stat Med 25:2299"
HANDBOOK_CHANGE = "Cochrane Handbook 6.5.2.8"
SMD_T = "metafor escalc(measure='SMD', ti=, pi=); Hedges (1981)"


@dataclass(frozen=True)
class Converted:
    """Values produced by one conversion, with the method used and its source (for the output's notes)."""

    values: dict
    method: str
    source: str
    notes: tuple = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {**self.values, "method": self.method, "source": self.source, "notes": list(self.notes)}


def _qnorm_upper(p: float) -> float:
    from statistics import NormalDist

    return -NormalDist().inv_cdf(p)


def _z(p: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(p)


def _num(x: Any, name: str) -> Any:  # a float or None; Any for the callers' reasons (see _Cell)
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {x!r}", column=name) from None
    if not math.isfinite(v):
        return None
    return v


# ---------------------------------------------------------------- medians to means and SDs

def _xi_eta(n: float) -> tuple[float, float]:
    """Wan et al. (2014)'s expected standardised range and IQR: 2 z((n - 0.375)/(n + 0.25)) and
    2 z((0.75 n - 0.125)/(n + 0.25)) (metaBLUE's Wan.std)."""
    return float(2 * _z((n - 0.375) / (n + 0.25))), float(2 * _z((0.75 * n - 0.125) / (n + 0.25)))


def luo_mean(n: float, median: float, q1: float | None = None, q3: float | None = None,
             minimum: float | None = None, maximum: float | None = None) -> float:
    """Luo et al. (2018)'s mean from the median with the range (S1), the IQR (S2) or both (S3); no checks
    (the callers' job). Natural scale."""
    m = median
    if minimum is not None and maximum is not None and q1 is not None and q3 is not None:
        w1, w2 = 2.2 / (2.2 + n**0.75), 0.7 - 0.72 / n**0.55
        return float(w1 * (minimum + maximum) / 2 + w2 * (q1 + q3) / 2 + (1 - w1 - w2) * m)
    if minimum is not None and maximum is not None:
        w = 4 / (4 + n**0.75)
        return float(w * (minimum + maximum) / 2 + (1 - w) * m)
    if q1 is None or q3 is None:
        raise InputError("give the range (min, max), the IQR (q1, q3) or both with the median", column="median")
    w = 0.7 + 0.39 / n
    return float(w * (q1 + q3) / 2 + (1 - w) * m)


def wan_sd(n: float, q1: float | None = None, q3: float | None = None, minimum: float | None = None,
           maximum: float | None = None) -> float:
    """Wan et al. (2014)'s SD (eqs. 9, 16; with all five numbers the average of the two) from the range,
    the IQR or both; no checks. Natural scale."""
    xi, eta = _xi_eta(n)
    r = None if minimum is None or maximum is None else (maximum - minimum) / xi
    i = None if q1 is None or q3 is None else (q3 - q1) / eta
    if r is not None and i is not None:
        return 0.5 * (r + i)
    if r is not None:
        return float(r)
    if i is None:
        raise InputError("give the range (min, max), the IQR (q1, q3) or both", column="min")
    return float(i)


def median_to_mean_sd(n: _Cell, median: _Cell, q1: _Cell = None, q3: _Cell = None, minimum: _Cell = None,
                      maximum: _Cell = None, method: str = "luo/wan/shi") -> Converted:
    """Mean and SD (normal data) from the median with the range (S1), the IQR (S2) or both (S3).

    Parameters
    ----------
    n : sample size (at least 5, as metafor's conv.fivenum requires).
    median, q1, q3, minimum, maximum : the reported summaries (natural scale).
    method : "luo/wan/shi" (default; means Luo 2018, SDs Wan 2014 and, for S3, Shi 2020) or "wan2014".

    Returns
    -------
    Converted with ``mean``, ``sd``, ``scenario`` (S1, S2, S3) and the skewness test of Shi et al. (2023)
    (``skew_t``, ``skew_crit``, ``skewed``); a skewed row is named in ``notes`` (metafor's conv.fivenum
    with test=TRUE leaves it out).
    """
    n = _num(n, "n")
    m = _num(median, "median")
    a, lo, hi, b = (_num(x, k) for x, k in ((minimum, "min"), (q1, "q1"), (q3, "q3"), (maximum, "max")))
    method = str(method).lower()
    if method not in ("luo/wan/shi", "wan2014"):
        raise InputError(f"unknown method {method!r}; choose luo/wan/shi or wan2014", column="method")
    if n is None or m is None:
        raise InputError("the median and n are needed", column="median")
    if n < 5:
        raise InputError(f"n = {n:g}: the median-based estimators need n >= 5 (metafor conv.fivenum)", column="n")
    given = [x for x in (a, lo, m, hi, b) if x is not None]
    if given != sorted(given):
        raise InputError("min <= q1 <= median <= q3 <= max does not hold", column="median")
    s1, s2 = a is not None and b is not None, lo is not None and hi is not None
    if not (s1 or s2):
        raise InputError("give the range (min, max), the IQR (q1, q3) or both with the median", column="median")
    xi, eta = _xi_eta(n)
    if s1 and s2:
        scenario = "S3"
        t = max(2.65 * math.log(0.6 * n) / math.sqrt(n) * abs((a + b - 2 * m) / (b - a)),
                abs((lo + hi - 2 * m) / (hi - lo)))
        crit = 3 / math.sqrt(n) - 40 / n**3
        if method == "luo/wan/shi":
            mean = luo_mean(n, m, lo, hi, a, b)
            w = 1 / (1 + 0.07 * n**0.6)
            sd = w * (b - a) / xi + (1 - w) * (hi - lo) / eta
            name, src = "Luo 2018 mean, Shi 2020 SD (min, q1, median, q3, max)", f"{LUO}; {SHI}"
        else:
            mean = (a + 2 * lo + 2 * m + 2 * hi + b) / 8
            sd = wan_sd(n, lo, hi, a, b)
            name, src = "Wan 2014 mean and SD (min, q1, median, q3, max)", WAN
    elif s1:
        scenario = "S1"
        t = abs((a + b - 2 * m) / (b - a))
        crit = 1 / math.log(n + 9) + 2.5 / (n + 1)
        if method == "luo/wan/shi":
            mean = luo_mean(n, m, minimum=a, maximum=b)
            name, src = "Luo 2018 mean, Wan 2014 SD (min, median, max)", f"{LUO}; {WAN}"
        else:
            mean = (a + 2 * m + b) / 4
            name, src = "Wan 2014 mean and SD (min, median, max)", WAN
        sd = wan_sd(n, minimum=a, maximum=b)
    else:
        scenario = "S2"
        t = abs((lo + hi - 2 * m) / (hi - lo))
        crit = 2.65 / math.sqrt(n) - 6 / n**2
        if method == "luo/wan/shi":
            mean = luo_mean(n, m, lo, hi)
            name, src = "Luo 2018 mean, Wan 2014 SD (q1, median, q3)", f"{LUO}; {WAN}"
        else:
            mean = (lo + m + hi) / 3
            name, src = "Wan 2014 mean and SD (q1, median, q3)", WAN
        sd = wan_sd(n, lo, hi)
    skewed = t >= crit
    notes = (f"skewness test ({SHI_TEST}): {t:.4g} >= {crit:.4g}: the data look skewed, the normal-theory "
             "mean and SD may mislead (methods qe-mcgrath and bc-mcgrath do not assume normality)",) if skewed else ()
    return Converted({"mean": mean, "sd": sd, "scenario": scenario, "skew_t": t, "skew_crit": crit,
                      "skewed": skewed}, name, src, notes)


# ---------------------------------------------------------------- standard errors

def se_from(estimate: _Cell = None, ci_low: _Cell = None, ci_high: _Cell = None, p: _Cell = None,
            z: _Cell = None, t: _Cell = None, df: _Cell = None, level: float = 0.95,
            log: bool = False) -> Converted:
    """SE of an estimate (analysis scale) from its CI, a two-sided p-value, a z or a t statistic.

    ``log=True``: a ratio given on the natural scale (estimate and CI are logged first). ``df`` with
    ``p``: the t quantile on df degrees of freedom instead of the normal one (Cochrane Handbook 6.3.2).
    The CI wins when given (metafor conv.wald's order), then z or t, then p.
    """
    from ..dist import t_isf  # exact to R's qt for whole df (SciPy's stdtrit before 1.17 is not)

    est, lo, hi = (_num(x, k) for x, k in ((estimate, "estimate"), (ci_low, "ci_low"), (ci_high, "ci_high")))
    p, z, t, df = (_num(x, k) for x, k in ((p, "p"), (z, "z"), (t, "t"), (df, "df")))
    if log:
        for name, v in (("estimate", est), ("ci_low", lo), ("ci_high", hi)):
            if v is not None and v <= 0:
                raise InputError(f"a ratio must be positive, got {name} = {v:g}", column=name)
        est, lo, hi = (None if v is None else math.log(v) for v in (est, lo, hi))
    if not 0 < level < 1:
        raise InputError(f"level must lie between 0 and 1, got {level}", column="level")
    crit = _qnorm_upper((1 - level) / 2)
    if lo is not None and hi is not None:
        if hi < lo:
            raise InputError("ci_high is below ci_low", column="ci_high")
        return Converted({"estimate": est, "se": (hi - lo) / (2 * crit)}, f"SE from the {100 * level:g}% CI",
                         HANDBOOK_SE)
    if hi is not None and est is not None:
        return Converted({"estimate": est, "se": (hi - est) / crit}, "SE from the estimate and upper CI bound",
                         HANDBOOK_SE)
    if est is None:
        raise InputError("an estimate is needed to turn a test statistic or p-value into an SE", column="estimate")
    if z is not None or t is not None:
        s = z if z is not None else t
        if s == 0:
            raise InputError("a test statistic of 0 gives no SE", column="z" if z is not None else "t")
        return Converted({"estimate": est, "se": abs(est / s)}, f"SE = |estimate / {'z' if z is not None else 't'}|",
                         HANDBOOK_SE)
    if p is not None:
        if not 0 < p < 1:
            raise InputError(f"p must lie strictly between 0 and 1, got {p:g}", column="p")
        if df is not None:
            q = float(t_isf(df, p / 2))
            return Converted({"estimate": est, "se": abs(est) / q}, f"SE from p with t on {df:g} df", HANDBOOK_SE)
        return Converted({"estimate": est, "se": abs(est) / _qnorm_upper(p / 2)}, "SE from p (normal)", HANDBOOK_SE)
    raise InputError("give ci_low and ci_high, z, t or p", column="ci_low")


# ---------------------------------------------------------------- 2x2 tables

def table_from_or(odds_ratio: _Cell, n: _Cell, n1: _Cell, events: _Cell) -> Converted:
    """The 2x2 table (a, b, c, d: events and non-events in groups 1 and 2) with odds ratio
    ``odds_ratio``, total ``n``, group-1 size ``n1`` and total events ``events`` (metafor conv.2x2 with
    ori, ni, n1i and n2i = events; a rounded to the nearest count)."""
    OR, n, n1, m1 = (_num(x, k) for x, k in ((odds_ratio, "or"), (n, "n"), (n1, "n1"), (events, "events")))
    if None in (OR, n, n1, m1) or OR <= 0:
        raise InputError("give a positive OR, n, n1 and the total events", column="or")
    n, n1, m1 = round(n), round(n1), round(m1)
    if n1 > n or m1 > n:
        raise InputError("n1 and the total events cannot exceed n", column="n")
    p1, p2 = n1 / n, m1 / n
    if OR == 1:
        p11 = n1 * m1 / n**2
    else:
        x = OR * (p1 + p2) + (1 - p1) - p2
        y = math.sqrt(x**2 - 4 * p1 * p2 * OR * (OR - 1))
        p11 = (x - y) / (2 * (OR - 1))
    a = round(n * p11)
    b, c = n1 - a, m1 - a
    d = n - a - b - c
    if min(a, b, c, d) < 0:
        raise InputError("no 2x2 table with these margins has this OR", column="or")
    # metafor's layout: rows are the groups, columns outcome 1 / outcome 2; here a, c are the events.
    return Converted({"events_treat": a, "n_treat": n1, "events_ctrl": c, "n_ctrl": n - n1},
                     "2x2 from OR and margins", BONETT)


def table_from_or_ci(odds_ratio: _Cell, ci_low: _Cell, ci_high: _Cell, n1: _Cell, n2: _Cell,
                     level: float = 0.95) -> Converted:
    """The 2x2 table whose OR and Woolf SE (from the CI) match, given the group sizes: events
    (a in group 1, c in group 2), not rounded (Di Pietrantonj 2006). Of the two solutions (events and
    non-events swapped), the one with fewer events in group 1 is returned; the other is in ``values``."""
    from scipy.optimize import brentq

    OR, lo, hi, n1, n2 = (_num(x, k) for x, k in ((odds_ratio, "or"), (ci_low, "ci_low"), (ci_high, "ci_high"),
                                                  (n1, "n1"), (n2, "n2")))
    if None in (OR, lo, hi, n1, n2) or min(OR, lo, hi) <= 0 or not lo < OR < hi:
        raise InputError("give a positive OR inside its CI, and n1, n2", column="or")
    target = ((math.log(hi) - math.log(lo)) / (2 * _qnorm_upper((1 - level) / 2))) ** 2

    def c_of(a):
        return a * n2 / (OR * (n1 - a) + a)

    def f(a):
        c = c_of(a)
        return 1 / a + 1 / (n1 - a) + 1 / c + 1 / (n2 - c) - target

    # the variance is large at both ends and smallest in between: one root on each side of its minimum
    from scipy.optimize import minimize_scalar

    eps = 1e-9 * n1
    mid = minimize_scalar(f, bounds=(eps, n1 - eps), method="bounded").x
    if f(mid) > 0:
        raise InputError("no table with these group sizes has so narrow a CI", column="ci_low")
    a1 = brentq(f, eps, mid, xtol=1e-13)
    a2 = brentq(f, mid, n1 - eps, xtol=1e-13)
    c1, c2 = c_of(a1), c_of(a2)
    return Converted({"events_treat": a1, "n_treat": n1, "events_ctrl": c1, "n_ctrl": n2,
                      "other_solution": {"events_treat": a2, "events_ctrl": c2}},
                     "2x2 from OR, its CI and the group sizes", DIPIETRANTONJ,
                     ("counts not rounded; the other solution (events and non-events swapped) is under "
                      "other_solution",))


# ---------------------------------------------------------------- change scores

def change_sd(sd_baseline: _Cell, sd_final: _Cell, r: _Cell) -> Converted:
    """SD of the change from baseline: sqrt(sd1^2 + sd2^2 - 2 r sd1 sd2) (Cochrane Handbook 6.5.2.8)."""
    s1, s2, r = (_num(x, k) for x, k in ((sd_baseline, "sd_baseline"), (sd_final, "sd_final"), (r, "r")))
    if None in (s1, s2, r) or s1 < 0 or s2 < 0 or not -1 <= r <= 1:
        raise InputError("give sd_baseline, sd_final >= 0 and a correlation r in [-1, 1]", column="r")
    return Converted({"sd_change": math.sqrt(s1**2 + s2**2 - 2 * r * s1 * s2)},
                     f"change SD with correlation {r:g}", HANDBOOK_CHANGE)


def correlation_from_change(sd_baseline: _Cell, sd_final: _Cell, sd_change: _Cell) -> Converted:
    """The baseline-final correlation implied by a reported change SD (Cochrane Handbook 6.5.2.8)."""
    s1, s2, sc = (_num(x, k) for x, k in ((sd_baseline, "sd_baseline"), (sd_final, "sd_final"),
                                          (sd_change, "sd_change")))
    if None in (s1, s2, sc) or s1 <= 0 or s2 <= 0:
        raise InputError("give positive sd_baseline, sd_final and sd_change", column="sd_change")
    r = (s1**2 + s2**2 - sc**2) / (2 * s1 * s2)
    notes = () if -1 <= r <= 1 else (f"implied correlation {r:.4g} lies outside [-1, 1]: the SDs are inconsistent",)
    return Converted({"r": r}, "correlation implied by the change SD", HANDBOOK_CHANGE, notes)


# ---------------------------------------------------------------- SMD from test statistics

def smd_from_t(n1: _Cell, n2: _Cell, t: _Cell = None, p: _Cell = None, f: _Cell = None,
               sign: float = 1.0) -> Converted:
    """Hedges' g and its variance from an independent-groups t, a two-sided p (the sign of ``sign``)
    or an F with one numerator df (t = sign * sqrt(F)): d = t sqrt(1/n1 + 1/n2), g = J d with the exact
    J, variance 1/n1 + 1/n2 + g^2 / (2 (n1 + n2)) (metafor escalc "SMD", vtype "LS")."""
    from scipy.special import gammaln

    from ..dist import t_isf

    n1, n2, t, p, f = (_num(x, k) for x, k in ((n1, "n1"), (n2, "n2"), (t, "t"), (p, "p"), (f, "f")))
    if None in (n1, n2) or n1 < 2 or n2 < 2:
        raise InputError("give group sizes n1, n2 of at least 2", column="n1")
    df = n1 + n2 - 2
    sgn = -1.0 if (sign is not None and float(sign) < 0) else 1.0
    if t is not None:
        how = "t"
    elif f is not None:
        if f < 0:
            raise InputError("F must not be negative", column="f")
        t, how = sgn * math.sqrt(f), "F (1 numerator df)"
    elif p is not None:
        if not 0 < p <= 1:
            raise InputError(f"p must lie in (0, 1], got {p:g}", column="p")
        t, how = sgn * float(t_isf(df, p / 2)), "two-sided p"
    else:
        raise InputError("give t, F or p", column="t")
    d = t * math.sqrt(1 / n1 + 1 / n2)
    j = math.exp(gammaln(df / 2) - 0.5 * math.log(df / 2) - gammaln((df - 1) / 2))
    g = j * d
    return Converted({"yi": g, "vi": 1 / n1 + 1 / n2 + g**2 / (2 * (n1 + n2)), "t": t},
                     f"Hedges' g from {how}", SMD_T)


# ---------------------------------------------------------------- a table, one layout per row

INPUTS = {
    "median_iqr": ("n", "median", "q1", "q3"),
    "median_range": ("n", "median", "min", "max"),
    "median_iqr_range": ("n", "median", "q1", "q3", "min", "max"),
    "ci": ("estimate", "ci_low", "ci_high"),
    "p": ("estimate", "p"),
    "t": ("estimate", "t"),
    "or_margins": ("or", "n", "n1", "events"),
    "or_ci": ("or", "ci_low", "ci_high", "n1", "n2"),
    "change_sd": ("sd_baseline", "sd_final", "r"),
    "smd_t": ("n1", "n2", "t"),
    "smd_p": ("n1", "n2", "p", "sign"),
    "smd_f": ("n1", "n2", "f", "sign"),
    "hr_oe": ("o_minus_e", "v"),
    "hr_oe_arms": ("observed_treat", "expected_treat", "observed_ctrl", "expected_ctrl"),
    "hr_ci": ("hr", "ci_low", "ci_high"),
    "hr_p": ("p", "sign"),
}
# columns a layout reads when present: hr_p takes the events per arm, or the total with or without the numbers
# randomised (conversions_hr.log_hr_from_p says which it used)
OPTIONAL = {"hr_p": ("events_treat", "events_ctrl", "events", "n_treat", "n_ctrl", "sides")}
MEDIAN_METHODS = ("luo/wan/shi", "wan2014", "qe-mcgrath", "bc-mcgrath")


def convert_row(kind: str, row: dict, level: float = 0.95, log: bool = False, method: str = "luo/wan/shi",
                ) -> Converted:
    """One row of a table with an ``input`` column naming its layout (INPUTS), as CMA allows. ``method`` (one of
    MEDIAN_METHODS) converts the median rows; a row's own ``method`` cell, when filled, overrides it."""
    kind = str(kind).strip().lower()
    if kind not in INPUTS:
        raise InputError(f"unknown input {kind!r}; choose one of {', '.join(INPUTS)}", column="input")
    g = {k: (row.get(k) if row.get(k) not in ("", None) else None)
         for k in INPUTS[kind] + OPTIONAL.get(kind, ()) + ("df",)}
    missing = [k for k in INPUTS[kind] if g[k] is None and k != "sign"]
    if missing:
        raise InputError(f"input {kind} needs {', '.join(missing)}", column=missing[0])
    if kind.startswith("median"):
        own = str(row.get("method") or "").strip().lower()
        method = own or str(method).lower()
        if method not in MEDIAN_METHODS:
            raise InputError(f"unknown method {method!r}; choose one of {', '.join(MEDIAN_METHODS)}", column="method")
        args = (g["n"], g["median"], g.get("q1"), g.get("q3"), g.get("min"), g.get("max"))
        if method in ("qe-mcgrath", "bc-mcgrath"):
            from .conversions_mcgrath import bc_mean_sd, qe_mean_sd

            return (qe_mean_sd if method == "qe-mcgrath" else bc_mean_sd)(*args)
        return median_to_mean_sd(*args, method=method)
    if kind.startswith("hr_"):
        from . import conversions_hr as hr

        if kind == "hr_oe":
            return hr.log_hr_from_oe(g["o_minus_e"], g["v"])
        if kind == "hr_oe_arms":
            return hr.log_hr_from_oe(observed_treat=g["observed_treat"], expected_treat=g["expected_treat"],
                                     observed_ctrl=g["observed_ctrl"], expected_ctrl=g["expected_ctrl"])
        if kind == "hr_ci":
            return hr.log_hr_from_ci(g["hr"], g["ci_low"], g["ci_high"], level)
        sides = _num(g["sides"], "sides")
        if sides not in (None, 1, 2):
            raise InputError(f"sides must be 1 or 2, got {g['sides']}", column="sides")
        return hr.log_hr_from_p(g["p"], g["sign"], g["events_treat"], g["events_ctrl"], g["events"], g["n_treat"],
                                g["n_ctrl"], sides=int(sides or 2))
    if kind == "ci":
        return se_from(g["estimate"], g["ci_low"], g["ci_high"], level=level, log=log)
    if kind == "p":
        return se_from(g["estimate"], p=g["p"], df=g.get("df"), log=log)
    if kind == "t":
        return se_from(g["estimate"], t=g["t"], log=log)
    if kind == "or_margins":
        return table_from_or(g["or"], g["n"], g["n1"], g["events"])
    if kind == "or_ci":
        return table_from_or_ci(g["or"], g["ci_low"], g["ci_high"], g["n1"], g["n2"], level)
    if kind == "change_sd":
        return change_sd(g["sd_baseline"], g["sd_final"], g["r"])
    sign = g.get("sign")
    sign = 1.0 if sign is None else sign
    if kind == "smd_t":
        return smd_from_t(g["n1"], g["n2"], t=g["t"])
    if kind == "smd_p":
        return smd_from_t(g["n1"], g["n2"], p=g["p"], sign=float(sign))
    return smd_from_t(g["n1"], g["n2"], f=g["f"], sign=float(sign))
