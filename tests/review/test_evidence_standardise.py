"""Conversions used to derive figures: checked against independent computations (scipy) and by hand."""

import math

import pytest
from scipy.stats import norm

from hatmeta.review import standardise as st


@pytest.mark.parametrize("pct, n, count, text", [
    (67.2, 515, 346, "67.2% of 515 = 346.1, rounded to 346"),
    (40.0, 500, 200, "40% of 500 = 200.0, rounded to 200"),
    (54.1, 111, 60, "54.1% of 111 = 60.1, rounded to 60"),
    (50.0, 37, 19, "50% of 37 = 18.5, rounded to 19"),  # halves go up (Python's round() would give 18)
    (2.5, 20, 1, "2.5% of 20 = 0.5, rounded to 1"),
])
def test_percent_to_count(pct, n, count, text):
    assert st.percent_to_count(pct, n) == (count, text)


def test_percent_out_of_range():
    with pytest.raises(ValueError):
        st.percent_to_count(101, 10)


def test_ci_to_se():
    # NAOMI's rate ratio 1.62 (1.35 to 1.95): SE of the log ratio by hand.
    se, how = st.ci_to_se(1.62, 1.35, 1.95, log=True)
    assert se == pytest.approx((math.log(1.95) - math.log(1.35)) / (2 * norm.ppf(0.975)), rel=1e-12)
    assert "ln 1.95" in how
    se, _ = st.ci_to_se(0.44, 0.16, 0.71, log=False, level=0.9)
    assert se == pytest.approx(0.55 / (2 * norm.ppf(0.95)), rel=1e-12)
    with pytest.raises(ValueError):
        st.ci_to_se(2.0, 1.35, 1.95, log=True)


@pytest.mark.parametrize("n", [10, 50, 400])
def test_wan_median_iqr(n):
    mean, sd, how = st.median_iqr_to_mean_sd(2.0, 5.0, 11.0, n)
    assert mean == pytest.approx(6.0)
    assert sd == pytest.approx(9.0 / (2 * norm.ppf((0.75 * n - 0.125) / (n + 0.25))), rel=1e-12)
    assert how.startswith("Wan et al. 2014 (median, IQR)")


def test_wan_recovers_normal_sd_for_large_n():
    # For a normal sample the quartiles sit at mu +- 0.6745 sigma: the estimate must return sigma.
    q = norm.ppf(0.75)
    mean, sd, _ = st.median_iqr_to_mean_sd(10 - 3 * q, 10.0, 10 + 3 * q, 100_000)
    assert mean == pytest.approx(10.0) and sd == pytest.approx(3.0, rel=1e-4)


def test_wan_median_range():
    mean, sd, _ = st.median_range_to_mean_sd(0.0, 4.0, 30.0, 50)
    assert mean == pytest.approx((0 + 8 + 30) / 4)
    assert sd == pytest.approx(30 / (2 * norm.ppf((50 - 0.375) / 50.25)), rel=1e-12)


def test_combine_continuous_matches_pooled_raw_data():
    # Two groups of raw values: the combined mean/SD must equal those of the concatenated sample.
    a, b, c = [1.0, 2.0, 4.0, 7.0], [3.0, 3.5, 9.0], [0.0, 10.0]

    def summary(x):
        m = sum(x) / len(x)
        return m, math.sqrt(sum((v - m) ** 2 for v in x) / (len(x) - 1)), len(x)

    mean, sd, n = st.combine_continuous([summary(a), summary(b), summary(c)])
    m, s, k = summary(a + b + c)
    assert (mean, n) == (pytest.approx(m), k) and sd == pytest.approx(s, rel=1e-12)


def test_combine_binary_and_rates():
    assert st.combine_binary([(34, 42), (29, 42)]) == (63, 84)
    assert st.combine_rates([(3, 40.5), (1, 39.5)]) == (4, 80.0)


def test_round_half_up():
    assert [st.round_half_up(x) for x in (0.5, 1.5, 2.5, 2.49, -0.5)] == [1, 2, 3, 2, -1]
