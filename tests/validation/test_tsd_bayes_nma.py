"""The Bayesian network meta-analysis (hatmeta.bayes.network) against the posterior summaries
printed in NICE DSU TSD2 and TSD4 (tests/fixtures/tsd/README.md says where each is printed).

Chains are short here, to keep the suite fast; the tolerances are Monte Carlo ones for them
(|difference| < 0.05 on posterior means, SDs and tau, as multinma's own TSD tests; the deviance
summaries within a few units, their Monte Carlo SD being about sqrt(2 pD / ESS)). Every case at
full length, thrombolytics and the UME models included: benchmarks/tsd_bayes_nma.py. Seeded:
the same seed gives the same bytes, through the API and the command line.
"""

import json
import subprocess
import sys

import pytest

pm = pytest.importorskip("pymc")  # the [bayes] extra; installed with the test extras

from hatmeta.bayes.network import BayesNMAComparison, bayes_nma  # noqa: E402
from hatmeta.precision import dumps  # noqa: E402

from ..conftest import FIXTURES, ROOT  # noqa: E402

TSD = FIXTURES / "tsd"
PRINTED = json.loads((TSD / "printed.json").read_text())


def fit(case, **options):
    c = PRINTED[case]
    settings = {"model": c["model"], "common": c["effects"] == "common",
                "ume_multiarm": c.get("ume_multiarm", "correlated"), **options}
    return bayes_nma(TSD / c["data"], c["measure"], c["reference"], **settings)


def contrast(res, treatment, versus):
    for c in res.contrasts:
        if (c["treatment"], c["versus"]) == (treatment, versus):
            return c["mean"], c["sd"]
        if (c["versus"], c["treatment"]) == (treatment, versus):
            return -c["mean"], c["sd"]
    raise KeyError((treatment, versus))


def assert_effects(res, case, mc=False):
    """Posterior means and SDs within 0.05 of the printed ones. With ``mc`` (short chains of a
    weakly identified tau), means within three Monte Carlo SEs (sd / sqrt(ESS), the run's smallest
    bulk ESS) where that is wider, and SDs within 0.1: the effects' posteriors are then scale
    mixtures over tau, heavy-tailed, and their SDs settle slowly (at 2 x 2000 draws two seeds
    gave 0.47 and 0.56 for TSD2's 0.54; benchmarks/tsd_bayes_nma.py)."""
    printed = PRINTED[case].get("estimates") or PRINTED[PRINTED[case]["estimates_as"]]["estimates"]
    ess = res.diagnostics["ess_bulk_min"]
    for e in printed:
        mean, sd = contrast(res, e["treatment"], e["versus"])
        tol_mean = max(0.05, 3 * sd / ess**0.5) if mc else 0.05
        tol_sd = 0.1 if mc else 0.05
        assert abs(mean - e["est"]) < tol_mean, (e, mean)
        assert abs(sd - e["sd"]) < tol_sd, (e, sd)


def assert_fit(res, case, tol):
    f = PRINTED[case]["fit"]
    assert abs(res.fit["totresdev"] - f["totresdev"]) < tol["totresdev"], res.fit
    assert abs(res.fit["pD"] - f["pD"]) < tol["pD"], res.fit
    assert abs(res.fit["DIC"] - f["DIC"]) < tol["pD"] + tol["totresdev"], res.fit


@pytest.fixture(scope="module")
def smoking():
    return fit("smoking_re_consistency", seed=1, draws=400, tune=400)


def test_smoking_random_effects_match_tsd(smoking):
    assert smoking.diagnostics["r_hat_max"] < 1.02 and smoking.diagnostics["divergences"] == 0
    assert_effects(smoking, "smoking_re_consistency")
    tau = PRINTED["smoking_re_consistency"]["tau"]
    assert abs(smoking.tau["median"] - tau["median"]) < 0.05 and abs(smoking.tau["sd"] - tau["sd"]) < 0.05


def test_smoking_residual_deviance_and_dic_match_tsd(smoking):
    # TSD: totresdev 54.0 on 50 data points, pD 45.0, DIC 99.0 (WinBUGS's plug-in pD)
    assert smoking.fit["n_data"] == 50
    assert_fit(smoking, "smoking_re_consistency", {"totresdev": 2.0, "pD": 2.0})
    assert len(smoking.residual_deviance) == 50 and smoking.loo["elpd_loo"] < 0


def test_text_fits_80_columns_and_names_the_model(smoking):
    text = smoking.summary()
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "consistency" in text and "tau ~ uniform:5" in text and "DIC" in text and "R-hat" in text
    assert smoking.to_frame()["treatment"].tolist() == ["B", "C", "D"]


def test_rank_probabilities_and_sucra(smoking):
    n = len(smoking.treatments)
    for t in smoking.treatments:
        p = smoking.ranks[t]
        assert sum(p) == pytest.approx(1.0)
        expected_rank = sum((i + 1) * pi for i, pi in enumerate(p))
        assert smoking.sucra[t] == pytest.approx((n - expected_rank) / (n - 1))  # Salanti et al. 2011
    for r in range(n):
        assert sum(smoking.ranks[t][r] for t in smoking.treatments) == pytest.approx(1.0)
    # more quitting is better: with the default benefit "lower" no contact ranks first
    assert max(smoking.sucra, key=smoking.sucra.get) == "A" and smoking.ranks["A"][0] > 0.8


@pytest.fixture(scope="module")
def parkinsons_contrast():
    return fit("parkinsons_contrast_re", seed=2, draws=800, tune=800)


def test_parkinsons_contrast_level_random_effects_match_tsd2(parkinsons_contrast):
    res = parkinsons_contrast
    assert res.likelihood == "contrast" and res.fit["n_data"] == 8
    assert_effects(res, "parkinsons_contrast_re", mc=True)
    tau = PRINTED["parkinsons_arm_re"]["tau"]
    tol = max(0.05, 3 * res.tau["sd"] / res.diagnostics["ess_bulk_min"] ** 0.5)
    assert abs(res.tau["mean"] - tau["mean"]) < tol and abs(res.tau["median"] - tau["median"]) < tol
    assert_fit(res, "parkinsons_contrast_re", {"totresdev": 0.5, "pD": 0.5})


def test_turner_prior_on_tau2_is_the_one_sampled(parkinsons_contrast):
    # Turner et al. 2015's general-setting prior, log(tau^2) ~ N(-2.56, 1.74^2): far less mass above
    # tau = 1 than U(0, 5), so with 7 trials the posterior's upper tail comes down
    res = fit("parkinsons_contrast_re", tau_prior="turner:marginal", seed=2, draws=300, tune=300)
    assert res.prior["kind"] == "lognormal" and res.prior["params"] == [-2.56, 1.74]
    assert res.tau["high"] < parkinsons_contrast.tau["high"] - 0.3
    assert res.tau["mean"] < parkinsons_contrast.tau["mean"]


def test_parkinsons_arm_level_common_effect_matches_tsd2():
    res = fit("parkinsons_arm_fe", seed=3, draws=300, tune=300)
    assert res.likelihood == "normal" and res.tau is None and res.fit["n_data"] == 15
    assert_effects(res, "parkinsons_arm_fe")
    assert_fit(res, "parkinsons_arm_fe", {"totresdev": 0.6, "pD": 0.5})


def test_same_seed_same_bytes_through_the_command_line_and_the_ume_comparison():
    res = fit("parkinsons_contrast_fe", model="both", seed=5, draws=60, tune=60)
    assert isinstance(res, BayesNMAComparison)
    p = subprocess.run([sys.executable, "-m", "hatmeta.cli", "nma", "--data", str(TSD / "parkinsons_contrast.csv"),
                        "--measure", "MD", "--reference", "1", "--bayes", "--common", "--model", "ume",
                        "--seed", "5", "--draws", "60", "--tune", "60", "--format", "json"],
                       capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == dumps(res.ume.to_dict()).strip()  # another process, the same bytes
    ume = json.loads(p.stdout)
    assert ume["model"] == "ume" and {(e["treatment"], e["versus"]) for e in ume["estimates"]} == {
        ("2", "1"), ("3", "1"), ("4", "1"), ("4", "3"), ("5", "4")}
    assert ume["diagnostics"]["seed"] == 5
    assert any("draw more" in w for w in ume["warnings"])  # 60 draws are too few: the warning says so
    c = res.to_dict()["comparison"]
    assert c["DIC_difference"] == pytest.approx(c["DIC_consistency"] - c["DIC_ume"])
    assert len(c["dev_dev"]) == 7  # contrast-level data: one point per study
    assert c["dev_dev"][0]["consistency"] == pytest.approx(res.consistency.residual_deviance[0]["resdev"], rel=1e-9)
