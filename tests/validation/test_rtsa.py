"""Trial sequential analysis: agreement with R's RTSA 0.2.2 (tests/fixtures/tsa/rtsa.json, made by
generate.R beside it), the command line, and properties of the boundaries."""

import json
import math

import numpy as np
import pytest

from hatmeta.cli import main
from hatmeta.io.trial_table import read_table
from hatmeta.methods.tsa import alpha_bounds, power, required_information, spend, tsa_table

from ..conftest import FIXTURES

CASES = json.loads((FIXTURES / "tsa" / "rtsa.json").read_text())
REL = 1e-4  # the brief's tolerance; most numbers agree to 1e-7


def _table(case, write_csv):
    d = case["data"]
    if case["outcome"] == "MD":
        rows = [["study", "mean_treat", "sd_treat", "n_treat", "mean_ctrl", "sd_ctrl", "n_ctrl"]]
        rows += [[r["study"], r["mI"], r["sdI"], r["nI"], r["mC"], r["sdC"], r["nC"]] for r in d]
    else:
        rows = [["study", "events_treat", "n_treat", "events_ctrl", "n_ctrl"]]
        rows += [[r["study"], r["eI"], r["nI"], r["eC"], r["nC"]] for r in d]
    return read_table(write_csv(rows), measure=case["outcome"])


def _run(case, write_csv, **extra):
    table = _table(case, write_csv)
    opts = dict(benefit=case["benefit"], alpha=case["alpha"], power=1 - case["beta"], sides=case["side"],
                spending={"esOF": "obf", "esPoc": "pocock"}[case["es_alpha"]])
    if case.get("weights", "IV") != "IV":  # IV cases run with hatmeta's default weights
        opts["weights"] = case["weights"]
    if case["outcome"] == "MD":
        opts.update(md=case["mc"], sd=case["sd_mc"])
    else:
        mc, pc = case["mc"], case["pC"]
        if case["outcome"] == "OR":  # RTSA's OR effect: pI = invlogit(logit(pC) + log(mc)) (ris.R)
            pi = 1 / (1 + math.exp(-(math.log(pc / (1 - pc)) + math.log(mc))))
            mc = pi / pc
        opts.update(rrr=abs(1 - mc), control_risk=pc)
    opts.update(extra)
    return tsa_table(table, case["outcome"], **opts)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_agrees_with_rtsa(case, write_csv):
    fut = case.get("futility", "none") != "none"
    res = _run(case, write_csv, futility=fut)
    assert res.diversity == pytest.approx(case["diversity"], rel=1e-7, abs=1e-12)
    assert res.required_information_size_fixed == case["ris_fixed"]
    assert res.required_information_size == case["ris"]
    # RTSA finds the one-sided root with uniroot's default tolerance (1.2e-4); hatmeta's is tight
    assert res.inflation_factor == pytest.approx(case["root"], rel=1e-7 if case["side"] == 2 else REL)
    assert res.required_information_size_inflated == case["ris_inflated"]
    assert [t.z for t in res.trials] == pytest.approx(case["z_random"], rel=1e-7)
    sign = -1 if case["benefit"] == "lower" else 1
    for t, up, timing in zip(res.trials, case["upper"], case["sma_timing"]):
        assert t.information / res.required_information_size == pytest.approx(timing, rel=1e-9)
        if up is None:  # RTSA takes no look here: too little new information, or past the RIS
            assert not t.look
        elif up >= 20:  # RTSA's stand-in for no boundary (nothing spent yet)
            assert t.look and t.boundary_benefit is None
        else:
            assert t.boundary_benefit == pytest.approx(sign * up, rel=REL)
            assert sign * t.boundary_benefit == pytest.approx(up, rel=1e-6 if case["side"] == 2 else REL)
            if case["side"] == 2:
                assert t.boundary_harm == pytest.approx(-sign * up, rel=REL)
            else:
                assert t.boundary_harm is None
    if case["final_upper"] is not None:
        assert res.final_boundary == pytest.approx(case["final_upper"], rel=1e-6 if case["side"] == 2 else REL)
    if case["adjusted_ci"][0] is not None:
        nat = [res.natural(res.adjusted_ci_low), res.natural(res.adjusted_ci_high)]
        assert nat == pytest.approx(case["adjusted_ci"], rel=1e-6 if case["side"] == 2 else REL)
    if fut:  # non-binding beta-spending futility boundaries (RTSA: esOF beta spending)
        expected = case["fut_upper"] if case["side"] == 2 else case["fut_lower"]
        for t, f, up in zip(res.trials, expected, case["upper"]):
            if f is None or abs(f) >= 20:
                assert t.futility is None or (up is None and not t.look)
            else:
                assert sign * t.futility == pytest.approx(f, rel=REL, abs=1e-6)
                assert sign * t.futility == pytest.approx(f, rel=1e-6 if case["side"] == 2 else REL, abs=1e-8)
        assert all("futility" in row for row in res.to_dict()["trials"])
    else:
        assert all("futility" not in row for row in res.to_dict()["trials"])
    assert res.conclusion == case["conclusion"]
    if case["crossed_at"] is not None:
        assert res.crossed_at == res.trials[case["crossed_at"] - 1].study
    assert res.more_needed == (0 if res.conclusion != "inconclusive"
                               else res.required_information_size_inflated - res.accrued_information)


def test_fixtures_cover_crossing_and_not():
    assert {c["conclusion"] for c in CASES} >= {"benefit", "inconclusive"}
    assert len({c["name"].split("_")[0] for c in CASES}) >= 3


def test_default_control_risk_is_the_pooled_control_proportion(write_csv):
    case = CASES[0]
    res = _run(case, write_csv, control_risk=None)
    assert res.control_risk == pytest.approx(case["pC"], rel=1e-12)
    assert "pooled control-arm proportion" in res.control_risk_source


def test_last_z_is_hatmetas_dl_pool(write_csv):
    from hatmeta.api import pool_table

    case = CASES[0]
    table = _table(case, write_csv)
    res = _run(case, write_csv)
    pooled = pool_table(table, "RR", method="DL")
    assert res.estimate == pytest.approx(pooled.estimate, rel=1e-10)
    assert res.se == pytest.approx(pooled.se, rel=1e-10)
    assert res.tau2 == pytest.approx(pooled.tau2, rel=1e-10)


def test_no_inflate_spends_over_the_ris(write_csv):
    res = _run(CASES[0], write_csv, inflate=False)
    assert res.inflation_factor is None and res.required_information_size_inflated is None
    # alpha is spent over fractions of the RIS itself: the final boundary is at the RIS, a little
    # above 1.96 after interim looks, and below the inflated design's at the same information
    assert 1.96 < res.final_boundary < 2.0
    inflated = _run(CASES[0], write_csv)
    assert [t.boundary_benefit for t in res.trials if t.boundary_benefit] != \
        [t.boundary_benefit for t in inflated.trials if t.boundary_benefit]


def test_boundaries_keep_alpha_and_power():
    """The O'Brien-Fleming boundaries spend exactly alpha under H0 (Jennison & Turnbull's check)."""
    t = np.array([0.2, 0.45, 0.7, 1.0])
    for kind in ("obf", "pocock"):
        zb = alpha_bounds(t, t, 0.025, 2, kind)
        assert power(zb, -zb, t, 0.0) == pytest.approx(0.025, abs=2e-8)
        assert np.all(np.diff(zb) < 0) if kind == "obf" else True
    # one look: the conventional boundary and the fixed-design power
    zb = alpha_bounds(np.array([1.0]), np.array([1.0]), 0.025, 2)
    assert zb[0] == pytest.approx(1.959964, abs=1e-6)
    theta = 1.959964 + 0.841621
    assert power(zb, -zb, np.array([1.0]), theta) == pytest.approx(0.8, abs=1e-5)
    assert spend(0.025, [1.0])[0] == pytest.approx(0.025)


def test_ris_formula():
    # 4 (z_.975 + z_.8)^2 p(1-p)/d^2 with pC = 0.1, pI = 0.08: 2 * 7.849 * 2 * 0.0819 / 0.0004
    nf, ris = required_information(0.05, 0.2, 2, 0.5, control_risk=0.1, rrr=0.2)
    assert nf == math.ceil(4 * (1.959964 + 0.841621) ** 2 * 0.09 * 0.91 / 0.02**2)
    assert ris == math.ceil(nf / 0.5)


def test_cli_retention_and_mortality(capsys):
    with pytest.raises(SystemExit) as e:
        main(["tsa", "retention", "--format", "json"])
    assert e.value.code == 0
    out = json.loads(capsys.readouterr().out)["tsa"]
    for key in ("required_information_size", "required_information_size_inflated", "diversity",
                "accrued_information", "trials", "adjusted_ci_low", "adjusted_ci_high", "conclusion",
                "more_needed"):
        assert key in out
    assert out["conclusion"] in ("benefit", "harm", "futility", "inconclusive")
    assert out["accrued_information"] > 0 and out["required_information_size"] > 0
    assert set(out["trials"][0]) >= {"study", "information", "z", "boundary_benefit", "boundary_harm"}
    with pytest.raises(SystemExit) as e:
        main(["tsa", "mortality"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "No information has accrued" in text and "29,400" in text


def test_cli_bad_input(capsys, write_csv):
    path = write_csv([["study", "events_treat", "n_treat", "events_ctrl", "n_ctrl"], ["a", 1, 10, 2, 10]])
    with pytest.raises(SystemExit) as e:
        main(["tsa", "--data", str(path), "--measure", "RR"])
    assert e.value.code == 2
    assert "--rrr" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["tsa", "--data", str(path), "--measure", "RR", "--rrr", "0.2", "--control-risk", "0.9",
              "--rri", "0.1"])
    assert e.value.code == 2


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_plot_is_byte_stable_and_shows_boundaries(tmp_path, write_csv, fmt):
    from hatmeta.render.plots.style import save
    from hatmeta.render.plots.tsa import tsa_plot

    case = next(c for c in CASES if c["name"] == "coronary")
    res = _run(case, write_csv)
    paths = [save(tsa_plot(res, title="coronary"), tmp_path / f"a{i}.{fmt}") for i in range(2)]
    assert paths[0].read_bytes() == paths[1].read_bytes()
    fig = tsa_plot(res)
    lines = {line.get_gid(): line for line in fig.axes[0].get_lines() if line.get_gid()}
    assert {"boundary-benefit", "boundary-harm", "z-curve", "ris", "ris-inflated"} <= set(lines)
    # the z-curve lies beyond the benefit boundary at the trial where the numbers say it crosses
    bx, by = lines["boundary-benefit"].get_data()
    zx, zy = lines["z-curve"].get_data()
    crossed = next(t for t in res.trials if t.study == res.crossed_at)
    i = list(zx).index(crossed.information)
    final = by[-1]
    assert zy[i] < final < 0 and abs(final) == pytest.approx(res.final_boundary)
    # and not at the looks before it
    for t in res.trials:
        if t.information < crossed.information and t.boundary_benefit is not None:
            assert t.z > t.boundary_benefit


def test_plot_on_given_axes_and_without_trials():
    from hatmeta.methods.tsa import tsa
    from hatmeta.render.plots.style import pyplot
    from hatmeta.render.plots.tsa import tsa_plot

    res = tsa([], [], [], [], measure="RR", scale="log", rrr=0.3, control_risk=0.01, d2=0.0)
    assert res.accrued_information == 0 and res.required_information_size > 0
    plt = pyplot()
    fig, ax = plt.subplots()
    assert tsa_plot(res, ax=ax) is fig
    plt.close(fig)


def test_plan_next_vectorised_dl_matches_hatmeta_and_is_seeded():
    from hatmeta.fit import core
    from hatmeta.methods.tsa_plan import _dl, simulate

    rng = np.random.default_rng(3)
    y = rng.normal(0, 0.4, (5, 7))
    v = rng.uniform(0.01, 0.2, (5, 7))
    est, se = _dl(y, v)
    for i in range(5):
        f = core.fit(core.Groups.single(y[i], v[i]), method="DL", tau2_ci=False)
        assert est[i] == pytest.approx(float(np.ravel(f.estimate)[0]), rel=1e-10)
        assert se[i] == pytest.approx(float(np.ravel(f.se)[0]), rel=1e-10)
    yi, vi = np.log([0.8, 0.9, 0.85]), np.array([0.04, 0.05, 0.06])  # z about -1.3: not yet significant
    a = simulate(yi, vi, "RR", control_risk=0.2, sizes=[50, 500, 5000], draws=2000, seed=7)
    b = simulate(yi, vi, "RR", control_risk=0.2, sizes=[50, 500, 5000], draws=2000, seed=7)
    assert all(np.array_equal(x, z) for x, z in zip(a, b))
    # homogeneous trials favouring the intervention: power grows with the new trial's size
    assert a[0][0] < a[0][1] < a[0][2] and a[0][2] > 0.5
    assert np.all(a[1] < a[2])


def test_cli_plan_next(capsys, write_csv):
    case = next(c for c in CASES if c["name"] == "perioOxy")
    path = write_csv([["study", "events_treat", "n_treat", "events_ctrl", "n_ctrl"]]
                     + [[r["study"], r["eI"], r["nI"], r["eC"], r["nC"]] for r in case["data"]])
    args = ["tsa", "--data", str(path), "--measure", "RR", "--rrr", "0.2", "--plan-next", "--control-risk", "0.13",
            "--sizes", "100,1000", "--draws", "500", "--format", "json"]
    outs = []
    for _ in range(2):
        with pytest.raises(SystemExit):
            main(args)
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1]
    plan = json.loads(outs[0])["tsa"]["plan_next"]
    assert plan["sizes"] == [100, 1000] and len(plan["power"]) == 2 and plan["control_risk"] == 0.13
    with pytest.raises(SystemExit) as e:
        main(["tsa", "mortality", "--plan-next"])
    assert e.value.code == 2


def test_api_tsa_analysis_reads_the_spec_and_takes_overrides():
    from hatmeta.review.api import tsa_analysis

    res, spec, table = tsa_analysis("retention")
    assert spec.name == "retention" and table.k == len(res.trials)
    assert res.anticipated_effect == pytest.approx(-0.2)  # [tsa] rri = 0.2: an increase
    assert res.control_risk_source.startswith("pooled control-arm proportion")
    more, _, _ = tsa_analysis("retention", rri=0.3, power=0.9, spending="pocock")
    assert more.required_information_size < res.required_information_size and more.spending == "pocock"
    none, _, nothing = tsa_analysis("mortality")
    assert nothing is None and none.accrued_information == 0 and none.conclusion == "inconclusive"


def test_render_tsa_for_the_report(tmp_path):
    from hatmeta.review.report import _figure, render_tsa

    files, section = render_tsa("retention", tmp_path, figure=_figure)
    assert {p.name for p in files} == {"retention-tsa.png", "retention-tsa.svg", "retention-tsa.pdf",
                                       "retention-tsa.data.json", "retention-tsa.json"}
    assert "Required information size" in section and "<svg" in section
    assert render_tsa("sae", tmp_path) is None  # no [tsa] table in its spec


def test_futility_with_a_single_look_falls_back_and_says_so(write_csv):
    case = next(c for c in CASES if c["name"] == "coronary")
    res = _run(case, write_csv, rrr=0.6, futility=True)  # RIS below the first trial: one look only
    assert not res.futility and any("single look" in n for n in res.notes)
    assert res.conclusion == "benefit"
