"""From arm rows to one comparison per trial: conversions and arm combination.

Each function returns the value and a sentence saying how it was obtained, so that a derived
figure carries its derivation into the extraction (status 'derived') or the analysis notes.
Standard library only (``statistics.NormalDist`` for normal quantiles).
"""

from __future__ import annotations

import math
from statistics import NormalDist

Z975 = NormalDist().inv_cdf(0.975)  # 1.959964: CIs are taken to be 95% unless a level is given


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def round_half_up(x: float) -> int:
    """Round to the nearest whole number, halves away from zero (not Python's banker's rounding)."""
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def percent_to_count(percent: float, n: int) -> tuple[int, str]:
    """Events from a percentage of n, rounded half up; returns (count, derivation)."""
    if not 0 <= percent <= 100:
        raise ValueError(f"percentage must lie between 0 and 100, got {percent:g}")
    exact = percent / 100 * n
    count = round_half_up(exact)
    return count, f"{_fmt(percent)}% of {n} = {exact:.1f}, rounded to {count}"


def ci_to_se(estimate: float, ci_low: float, ci_high: float, log: bool, level: float = 0.95) -> tuple[float, str]:
    """Standard error from a symmetric CI (on the log scale for ratios); returns (se, derivation).

    se = (upper - lower) / (2 z), z the normal quantile for ``level`` (Cochrane Handbook 6.5.2.2-3).
    """
    if not ci_low < ci_high:
        raise ValueError(f"CI lower limit {ci_low:g} must be below the upper {ci_high:g}")
    if not ci_low <= estimate <= ci_high:
        raise ValueError(f"estimate {estimate:g} lies outside its CI [{ci_low:g}, {ci_high:g}]")
    z = NormalDist().inv_cdf(0.5 + level / 2)
    if log:
        if ci_low <= 0:
            raise ValueError("a ratio's CI must be positive")
        se = (math.log(ci_high) - math.log(ci_low)) / (2 * z)
        how = f"SE of log ratio = (ln {_fmt(ci_high)} - ln {_fmt(ci_low)}) / (2 x {z:.4f}) = {se:.4g}"
    else:
        se = (ci_high - ci_low) / (2 * z)
        how = f"SE = ({_fmt(ci_high)} - {_fmt(ci_low)}) / (2 x {z:.4f}) = {se:.4g}"
    return se, how


def _xi_quartiles(n: int) -> float:
    # Wan et al. 2014 (BMC Med Res Methodol 14:135), eq. 15: expected standardised quartile for size n.
    return NormalDist().inv_cdf((0.75 * n - 0.125) / (n + 0.25))


def _xi_range(n: int) -> float:
    # Wan et al. 2014, eq. 7: expected standardised maximum for size n (Blom's approximation).
    return NormalDist().inv_cdf((n - 0.375) / (n + 0.25))


def median_iqr_to_mean_sd(q1: float, median: float, q3: float, n: int) -> tuple[float, float, str]:
    """Mean and SD from the median and quartiles (Wan et al. 2014, scenario C3).

    mean = (q1 + median + q3) / 3 (their eq. 14); SD = (q3 - q1) / (2 xi), xi = Phi^-1((0.75n - 0.125) / (n + 0.25)).
    Assumes a roughly normal distribution; skewed data (e.g. days of use piled at 0 or 30) make it rough.
    """
    if not q1 <= median <= q3:
        raise ValueError(f"quartiles must be ordered: {q1:g} <= {median:g} <= {q3:g}")
    if n < 1:
        raise ValueError("n must be at least 1")
    mean = (q1 + median + q3) / 3
    sd = (q3 - q1) / (2 * _xi_quartiles(n))
    how = (f"Wan et al. 2014 (median, IQR): mean = ({_fmt(q1)} + {_fmt(median)} + {_fmt(q3)}) / 3 = {mean:.4g}; "
           f"SD = ({_fmt(q3)} - {_fmt(q1)}) / (2 x {_xi_quartiles(n):.4f}) = {sd:.4g} (n = {n})")
    return mean, sd, how


def median_range_to_mean_sd(minimum: float, median: float, maximum: float, n: int) -> tuple[float, float, str]:
    """Mean and SD from the median and range (Wan et al. 2014, scenario C1).

    mean = (min + 2 median + max) / 4 (Hozo et al. 2005, used by Wan); SD = (max - min) / (2 xi),
    xi = Phi^-1((n - 0.375) / (n + 0.25)).
    """
    if not minimum <= median <= maximum:
        raise ValueError(f"values must be ordered: {minimum:g} <= {median:g} <= {maximum:g}")
    if n < 2:
        raise ValueError("n must be at least 2 for an SD from the range")
    mean = (minimum + 2 * median + maximum) / 4
    sd = (maximum - minimum) / (2 * _xi_range(n))
    how = (f"Wan et al. 2014 (median, range): mean = ({_fmt(minimum)} + 2 x {_fmt(median)} + {_fmt(maximum)}) / 4 "
           f"= {mean:.4g}; SD = ({_fmt(maximum)} - {_fmt(minimum)}) / (2 x {_xi_range(n):.4f}) = {sd:.4g} (n = {n})")
    return mean, sd, how


def combine_binary(groups) -> tuple[int, int]:
    """Merge arms of a multi-arm trial into one group: summed events and n (Cochrane Handbook 23.3.4)."""
    events = sum(int(e) for e, _ in groups)
    n = sum(int(m) for _, m in groups)
    return events, n


def combine_continuous(groups) -> tuple[float, float, int]:
    """Merge arms (mean, sd, n) into one group (Cochrane Handbook 6.5.2.10, Table 6.5.a).

    Combined mean is the n-weighted mean; the SD adds the between-arm spread to the pooled
    within-arm variance, applied pairwise as the Handbook describes for more than two groups.
    """
    groups = list(groups)
    m1, s1, n1 = groups[0]
    for m2, s2, n2 in groups[1:]:
        n = n1 + n2
        mean = (n1 * m1 + n2 * m2) / n
        var = ((n1 - 1) * s1 ** 2 + (n2 - 1) * s2 ** 2 + n1 * n2 / n * (m1 - m2) ** 2) / (n - 1)
        m1, s1, n1 = mean, math.sqrt(var), n
    return m1, s1, int(n1)


def combine_rates(groups) -> tuple[float, float]:
    """Merge arms (count, person_time) into one group: summed counts and person-time."""
    return sum(c for c, _ in groups), sum(t for _, t in groups)
