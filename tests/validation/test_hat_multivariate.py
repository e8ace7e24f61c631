"""The HAT multivariate retention analysis (analyses/multivariate/retention-multivariate.toml) agrees with
metafor 3.8's rma.mv on the same rows, at every within-trial correlation of the spec's sensitivity range.

Fixtures: tests/fixtures/hat-multivariate/ (hat.csv, hat-synthetic.csv, metafor.json), made by its
export_tables.py and generate.R. Two cases: the extraction as it is (no trial reports both time points:
~ 1 | trial, V diagonal) and a copy whose 26-week rows of two trials hold SYNTHETIC counts
(synthetic.json), so that the paired model (V with covariances, ~ timepoint | trial, CS) is validated too.
Estimates, SEs, CIs, tau^2, rho, QE and the log-likelihood to 1e-6; where the optimum differs (tau^2 on
its bound), hatmeta's log-likelihood is shown to be the higher one.
"""

import csv
import importlib.util
import json

import pytest

from ..conftest import FIXTURES

HERE = FIXTURES / "hat-multivariate"
DOC = json.loads((HERE / "metafor.json").read_text())
REL, ABS = 1e-6, 1e-6


def _synthetic(tmp_path):
    spec = importlib.util.spec_from_file_location("hat_mv_export", HERE / "export_tables.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.synthetic_extraction(tmp_path / "extracted")


def _fit(case, tmp_path):
    from hatmeta.review.multivariate import pool_multivariate

    data = _synthetic(tmp_path) if case == "hat-synthetic" else None
    return pool_multivariate("retention-multivariate", data_dir=data)


@pytest.mark.parametrize("case", ["hat", "hat-synthetic"])
def test_the_rows_are_the_exported_ones(case, tmp_path):
    res, an = _fit(case, tmp_path)
    with open(HERE / f"{case}.csv", newline="") as fh:
        want = [(r["trial"], float(r["timepoint"]), float(r["events_treat"]), float(r["n_treat"]),
                 float(r["events_ctrl"]), float(r["n_ctrl"])) for r in csv.DictReader(fh)]
    got = [(t, w, c.values["events_treat"], c.values["n_treat"], c.values["events_ctrl"], c.values["n_ctrl"])
           for t, w, c in an.rows]
    assert got == want


@pytest.mark.parametrize("case", ["hat", "hat-synthetic"])
def test_the_multivariate_fit_matches_metafor_rma_mv(case, tmp_path):
    res, _ = _fit(case, tmp_path)
    expected = DOC["cases"][case]
    assert [s.rho for s in res.sensitivity] == [e["rho"] for e in expected]
    paired = expected[0]["paired"]
    assert res.random_used.startswith("~ timepoint | trial" if paired else "~ 1 | trial")
    for s, e in zip(res.sensitivity, expected):
        for est, b, se, lo, hi in zip(s.estimates, e["estimate"], e["se"], e["ci_low"], e["ci_high"]):
            assert est.estimate == pytest.approx(b, rel=REL, abs=ABS)
            assert est.se == pytest.approx(se, rel=REL, abs=ABS)
            assert (est.ci_low, est.ci_high) == pytest.approx((lo, hi), rel=REL, abs=ABS)
        assert s.tau2 == pytest.approx(e["tau2"], rel=REL, abs=ABS)
        if paired:
            assert s.rho_between == pytest.approx(e["rho_between"], rel=REL, abs=ABS)
        else:
            assert s.rho_between is None and e["rho_between"] is None
        if s.loglik != pytest.approx(e["loglik"], rel=REL, abs=ABS):
            assert s.loglik > e["loglik"]  # a different optimum: the higher likelihood wins
        else:
            assert s.loglik == pytest.approx(e["loglik"], rel=REL, abs=ABS)
    main = next(e for e in expected if e["rho"] == res.within_rho)
    assert res.fit.qe == pytest.approx(main["QE"], rel=REL, abs=ABS)
    assert res.fit.qe_df == main["QE_df"]
    assert res.difference["estimate"] == pytest.approx(main["difference"], rel=REL, abs=ABS)
    assert res.difference["se"] == pytest.approx(main["difference_se"], rel=REL, abs=ABS)


@pytest.mark.parametrize("case", ["hat", "hat-synthetic"])
def test_the_effect_sizes_are_metafors_escalc(case, tmp_path):
    from hatmeta.fit.effects import escalc
    from hatmeta.review.multivariate import trial_table

    _, an = _fit(case, tmp_path)
    es = escalc(trial_table(an), "RR", cc=0.5)
    e = DOC["cases"][case][0]
    assert list(es.yi) == pytest.approx(e["yi"], rel=1e-12)
    assert list(es.vi) == pytest.approx(e["vi"], rel=1e-12)


def test_the_tau2_on_its_bound_is_the_higher_likelihood():
    """The real rows put tau^2 on 0; metafor stops at ~5e-10. Both are 1e-6 from each other, and the
    restricted log-likelihood at hatmeta's optimum is not lower."""
    from hatmeta.review.multivariate import pool_multivariate

    res, _ = pool_multivariate("retention-multivariate")
    e = DOC["cases"]["hat"][0]
    assert res.tau2 == pytest.approx(0, abs=1e-10) and 0 < e["tau2"] < 1e-6
    assert res.fit.loglik >= e["loglik"] - 1e-12


def test_the_paired_case_depends_on_the_within_trial_correlation(tmp_path):
    """With two trials at both time points the estimates move with rho (as in metafor), so the sensitivity
    table can tell; with none they cannot."""
    res, _ = _fit("hat-synthetic", tmp_path)
    at_52 = [s.estimates[1].estimate for s in res.sensitivity]
    assert max(at_52) - min(at_52) > 1e-3
    expected = [e["estimate"][1] for e in DOC["cases"]["hat-synthetic"]]
    assert max(expected) - min(expected) > 1e-3
