"""--pi metafor: the prediction interval of metafor's predict.rma (z after a Wald test, t on k - p df after
Knapp-Hartung), against metafor 3.8 (tests/fixtures/predict/generate.R)."""

import json

import pytest

from hatmeta.api import pool_table

from ..conftest import FIXTURES

CASES = json.loads((FIXTURES / "predict" / "predict.json").read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_pi_metafor_is_metafors_predict(case):
    res = pool_table(str(FIXTURES / "data" / case["file"]), case["measure"], method=case["method"], ci=case["ci"],
                     pi="metafor")
    assert res.estimate == pytest.approx(case["estimate"], rel=1e-8)
    assert res.tau2 == pytest.approx(case["tau2"], rel=1e-6)
    assert res.pi_low == pytest.approx(case["pi_low"], rel=1e-6)
    assert res.pi_high == pytest.approx(case["pi_high"], rel=1e-6)
    assert res.to_dict()["pi_method"] == "metafor"
    assert "as metafor's predict()" in res.summary()


def test_laopaiboon_hksj_interval_differs_between_conventions():
    """The issue's case: metafor [-1.661, 1.831]; t on k - 2 df and z give other intervals."""
    path = str(FIXTURES / "data" / "laopaiboon2015.csv")
    ours = {pi: pool_table(path, "RR", method="REML", ci="hksj", pi=pi) for pi in ("t", "z", "metafor")}
    assert (round(ours["metafor"].pi_low, 3), round(ours["metafor"].pi_high, 3)) == (-1.661, 1.831)
    assert ours["t"].pi_low < ours["metafor"].pi_low < ours["z"].pi_low
