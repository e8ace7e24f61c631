"""The output-precision policy (hatmeta/precision.py): one rounding for everything written."""

import json
import math

import numpy as np
from hypothesis import given, settings, strategies as st

from hatmeta.precision import DIGITS, agree, dumps, json_floats, q, quantise, quantised


def reference(x):
    """The policy's definition: Python's correctly rounded decimal formatting, -0.0 as 0.0."""
    return float(format(x, f".{DIGITS}g")) + 0.0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=50))
def test_vectorised_rounding_is_exactly_decimal_rounding(xs):
    got = quantise(np.array(xs))
    assert got.tolist() == [reference(x) for x in xs]


def test_ties_powers_of_ten_and_extremes():
    """Values at and next to rounding ties and powers of ten, where the fast path hands over to
    decimal formatting, and values outside its range."""
    rng = np.random.default_rng(3)
    ties = np.round(rng.uniform(0, 1, 20000) * 1e10) / 1e10 + 5e-11  # decimal ties at the 11th digit
    powers = 10.0 ** np.arange(-30, 30)
    near = np.concatenate([np.nextafter(powers, 0), powers, np.nextafter(powers, np.inf)])
    extremes = np.array([5e-324, 1e-300, 1e-14, 9.9999999995e-14, 1e22, 1e300, -0.0, 0.0, 123456789012345.0])
    for xs in (ties, near, -near, extremes, rng.normal(size=20000) * 10.0 ** rng.integers(-20, 25, 20000)):
        assert quantise(xs).tolist() == [reference(x) for x in xs.tolist()]
    assert np.isnan(quantise(np.array([np.nan]))[0]) and quantise(np.array([np.inf]))[0] == np.inf


def test_rounding_removes_last_bit_differences():
    """The AVX-512 and AVX2 kernels gave these two posterior means (issue 9): written, they are one."""
    assert q(0.2503691750949581) == q(0.25036917509495815) == 0.2503691751
    assert dumps({"x": 0.2503691750949581}) == dumps({"x": 0.25036917509495815})


def test_dumps_sorts_keys_rounds_and_writes_null_for_nan():
    obj = {"b": [1.0, math.nan, -0.0, np.float64(1 / 3)], "a": {"z": math.inf, "y": np.arange(3.0) / 7},
           "c": (1, True, None, "text")}
    text = dumps(obj)
    assert json.loads(text) == {"a": {"y": [0.0, 0.1428571429, 0.2857142857], "z": None},
                                "b": [1.0, None, 0.0, 0.3333333333], "c": [1, True, None, "text"]}
    assert list(json.loads(text)) == ["a", "b", "c"] and text.startswith('{\n  "a"')
    assert "\n" not in dumps(obj, indent=False)
    assert dumps(obj) == dumps(json.loads(dumps(obj)))  # rounding is idempotent: re-writing changes nothing


def test_json_floats_and_quantised_results():
    assert json_floats(np.array([1 / 3, np.nan, -np.inf])) == [0.3333333333, None, None]
    from hatmeta.review.api import pool_analysis

    res, _ = pool_analysis("retention")
    r = quantised(res)
    assert (r.estimate == q(res.estimate) and res.estimate != r.estimate) or res.estimate == q(res.estimate)
    assert [s.yi for s in r.studies] == [q(s.yi) for s in res.studies]
    assert [s.label for s in r.studies] == [s.label for s in res.studies]
    assert json.loads(dumps(r.to_dict())) == json.loads(dumps(res.to_dict()))


def test_agreement_tolerance():
    assert agree(0.2503691751, 0.2503691752) and agree(1e-17, -2e-17) and agree(None, None)
    assert not agree(0.25121651, 0.2504613301) and not agree(1.0, None)
