"""Small-study tests, PET-PEESE, trim-and-fill, the selection model and influence diagnostics against
R (tests/fixtures/pubbias/generate.R: metafor 3.8.1, and R's meta code path for Peters and Harbord):
1e-6 relative, 1e-4 for the selection model."""

import json
import math

import numpy as np
import pytest

from hatmeta.api import pool_table
from hatmeta.errors import InputError
from hatmeta.io.trial_table import read_table

from ..conftest import FIXTURES

CASES = json.loads((FIXTURES / "pubbias" / "pubbias.json").read_text())["cases"]
REL, ABS = 1e-6, 1e-9


def ids(cases):
    return [pytest.param(c, id=c["id"]) for c in cases]


def pool(case, **options):
    table = read_table(FIXTURES / case["data"], measure=case["measure"])
    return pool_table(table, case["measure"], **options)


def close(actual, expected, key, rel=REL, abs_=ABS):
    assert actual == pytest.approx(expected, rel=rel, abs=abs_), key


@pytest.mark.parametrize("case", ids(CASES))
def test_small_study_tests(case):
    tests = [t for t in ("egger", "peters", "harbord", "begg") if t in case]
    d = pool(case, method="REML", small_study=tests).to_dict()
    for t in tests:
        close(d[t]["statistic"], case[t]["statistic"], f"{t} statistic")
        close(d[t]["p"], case[t]["p"], f"{t} p")
        if "df" in case[t]:
            assert d[t]["df"] == case[t]["df"]
        else:
            assert "df" not in d[t]


@pytest.mark.parametrize("case", ids([c for c in CASES if "peters_meta" in c]))
def test_peters_and_harbord_against_r_meta(case):
    """R's meta 6.5-0 metabias(method.bias = "Peters" / "Harbord") itself."""
    d = pool(case, method="REML", small_study=["peters", "harbord"]).to_dict()
    for t in ("peters", "harbord"):
        exp = case[f"{t}_meta"]
        close(d[t]["statistic"], exp["statistic"], t)
        close(d[t]["p"], exp["p"], f"{t} p")
        assert d[t]["df"] == exp["df"]


@pytest.mark.parametrize("case", ids(CASES))
def test_pet_peese(case):
    d = pool(case, pet_peese=True).to_dict()["pet_peese"]
    for key in ("pet", "peese"):
        for field in ("estimate", "ci_low", "ci_high"):
            close(d[key][field], case["pet_peese"][key][field], f"{key} {field}")
    close(d["pet"]["p"], case["pet_peese"]["pet"]["p"], "pet p")
    assert d["chosen"] == ("peese" if d["pet"]["p"] < 0.05 else "pet")


@pytest.mark.parametrize("method", ["REML", "DL", "PM"])
@pytest.mark.parametrize("estimator", ["L0", "R0"])
@pytest.mark.parametrize("case", ids(CASES))
def test_trim_fill(case, estimator, method):
    exp = case[f"trim_fill_{method}"][estimator]
    d = pool(case, method=method, trim_fill=True, trim_fill_estimator=estimator).to_dict()["trim_fill"]
    assert d["k0"] == exp["k0"] and d["side"] == exp["side"]
    for key in ("estimate", "se", "ci_low", "ci_high", "tau2"):
        close(d[key], exp[key], key)
    assert np.allclose(d["filled_yi"], exp["filled_yi"], rtol=REL, atol=ABS)
    assert np.allclose(d["filled_vi"], exp["filled_vi"], rtol=REL, atol=ABS)


SELECTION = [(c, alt) for c in CASES for alt in ("greater", "less") if f"selection_model_{alt}" in c]


@pytest.mark.parametrize("case,alternative", [pytest.param(c, a, id=f"{c['id']}-{a}") for c, a in SELECTION])
def test_selection_model(case, alternative):
    exp = case[f"selection_model_{alternative}"]
    d = pool(case, method="REML", selection_model="step", steps=(0.025,),
             benefit="lower" if alternative == "less" else "higher").to_dict()["selection_model"]
    assert d["alternative"] == alternative
    if exp["delta"] > 99 or exp["tau2"] < 1e-6:
        # delta at metafor's bound of 100 (no study in an interval) or tau^2 at 0: the likelihood is flat
        # there, so only the mean and the LRT are identified; hatmeta says so in the notes.
        close(d["estimate"], exp["estimate"], "estimate", rel=1e-4)
        close(d["lrt_p"], exp["lrt_p"], "lrt_p", rel=1e-4)
        assert d["notes"]
        return
    for key in ("estimate", "se", "ci_low", "ci_high", "tau2", "lrt_p"):
        close(d[key], exp[key], key, rel=1e-4)
    close(d["delta"][0], exp["delta"], "delta", rel=1e-4)


@pytest.mark.parametrize("method", ["REML", "DL", "PM"])
@pytest.mark.parametrize("case", ids(CASES))
def test_influence(case, method):
    d = pool(case, method=method, influence=True).to_dict()
    exp = case[f"influence_{method}"]
    rows = d["influence"]
    assert [r["study"] for r in rows] == [s["study"] for s in d["studies"]]
    for key, values in exp.items():
        got = [r[key] for r in rows]
        assert np.allclose(got, values, rtol=REL, atol=ABS), key
    het = case[f"heterogeneity_ci_{method}"]
    for key in ("i2_ci_low", "i2_ci_high", "h2_ci_low", "h2_ci_high"):
        close(d[key], het[key], key)


@pytest.mark.parametrize("case", ids(CASES))
def test_influence_knapp_hartung(case):
    rows = pool(case, method="REML", ci="hksj", influence=True).to_dict()["influence"]
    for key, values in case["influence_REML_knha"].items():
        assert np.allclose([r[key] for r in rows], values, rtol=REL, atol=ABS), key


def test_q_profile_published_example():
    """metafor's test_analysis_example_viechtbauer2007a.r (Viechtbauer 2007, Table II): dat.collins1985b,
    DL, Q-profile CI for tau^2 of .0723 to 2.2027."""
    case = next(c for c in CASES if c["id"] == "collins1985b")
    d = pool(case, method="DL", influence=True).to_dict()
    assert d["tau2_ci_low"] == pytest.approx(0.0723, abs=5e-5)
    assert d["tau2_ci_high"] == pytest.approx(2.2027, abs=5e-5)
    s2 = d["tau2_ci_low"] / (d["h2_ci_low"] - 1)  # H^2 = (tau^2 + s^2) / s^2
    assert d["i2_ci_low"] == pytest.approx(100 * d["tau2_ci_low"] / (d["tau2_ci_low"] + s2))


def test_metafor_published_example():
    """metafor's own tests (test_misc_pub_bias.r, test_misc_influence.r) on dat.egger2001 and dat.bcg."""
    egger = next(c for c in CASES if c["id"] == "egger2001")
    d = pool(egger, small_study=["begg"]).to_dict()
    assert d["begg"]["statistic"] == pytest.approx(0.15)
    assert d["begg"]["p"] == pytest.approx(0.4503, abs=5e-5)
    bcg = next(c for c in CASES if c["id"] == "bcg_rr")
    first = pool(bcg, influence=True).to_dict()["influence"][0]
    assert first["rstudent"] == pytest.approx(-0.218142474344442, rel=1e-6)
    assert first["cov_ratio"] == pytest.approx(1.11644891104804, rel=1e-6)


def test_warnings_below_ten_studies(write_csv):
    rows = [["study", "yi", "vi"]] + [[f"s{i}", 0.1 * i - 0.3, 0.02 + 0.03 * i] for i in range(6)]
    table = read_table(write_csv(rows), measure="GEN")
    res = pool_table(table, "GEN", small_study=["begg"], trim_fill=True, pet_peese=True)
    d = res.to_dict()
    for key in ("begg", "trim_fill", "pet_peese"):
        assert "only 6 studies" in d[key]["warning"]
    assert sum("only 6 studies" in n for n in d["notes"]) == 3
    assert "only 6 studies" in res.summary()


def test_peters_and_harbord_need_counts(write_csv):
    rows = [["study", "yi", "vi"]] + [[f"s{i}", 0.1 * i, 0.05 + 0.01 * i] for i in range(5)]
    table = read_table(write_csv(rows), measure="GEN")
    for test in ("peters", "harbord"):
        with pytest.raises(InputError, match="binary counts"):
            pool_table(table, "GEN", small_study=[test])


def test_kendall_matches_scipy():
    from scipy.stats import kendalltau

    from hatmeta.methods.publication_bias import kendall

    rng = np.random.default_rng(3)
    x, y = rng.normal(size=12), rng.normal(size=12)
    tau, p = kendall(x, y)
    ref = kendalltau(x, y, method="exact")
    assert tau == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue, rel=1e-10)
    x[3] = x[4]  # a tie: normal approximation with tie-corrected variance
    tau, p = kendall(x, y)
    ref = kendalltau(x, y, method="asymptotic")
    assert tau == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue, rel=1e-10)


def test_influence_vectorised_over_groups_equals_single_fits():
    from hatmeta.methods.influence import influence_arrays

    rng = np.random.default_rng(11)
    sizes = [4, 7, 5]
    y = rng.normal(0.2, 0.4, sum(sizes))
    v = rng.uniform(0.01, 0.2, sum(sizes))
    together = influence_arrays(y, v, sizes)
    start = 0
    for k in sizes:
        alone = influence_arrays(y[start:start + k], v[start:start + k], [k])
        for key in ("rstudent", "cooks_distance", "tau2_deleted", "q_deleted"):
            assert np.allclose(together[key][start:start + k], alone[key], rtol=1e-9, atol=1e-12)
        start += k


def test_cli_options(tmp_path):
    from click.testing import CliRunner

    from hatmeta.cli import cli

    data = str(FIXTURES / "pubbias" / "egger2001.csv")
    r = CliRunner().invoke(cli, ["pool", "--data", data, "--measure", "OR", "--small-study", "peters",
                                 "--small-study", "begg", "--trim-fill", "--trim-fill-estimator", "R0",
                                 "--influence", "--both-models", "--format", "json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert {"peters", "begg", "trim_fill", "influence", "common_effect", "random_effects", "i2_ci_low"} <= set(d)
    assert d["trim_fill"]["estimator"] == "R0"
    assert d["common_effect"]["method"] == "FE" and d["random_effects"]["method"] == "REML"
    assert math.isfinite(d["h2_ci_high"])


def test_by_groups_match_single_fits():
    """--by: the vectorised tests and influence rows equal each group pooled on its own."""
    from hatmeta.api import robustness_by

    table = read_table(FIXTURES / "data" / "by_groups.csv", measure="GEN")
    keys = table.column("group")
    groups = list(dict.fromkeys(keys))[:25]
    rows = [i for i, g in enumerate(keys) if g in groups]
    table = table.subset(rows)
    got = robustness_by(table, "group", "GEN", small_study=["egger", "begg"], influence=True, pet_peese=True)
    assert len(got) == len(groups)
    for j, g in enumerate(groups):
        sub = table.subset([i for i, x in enumerate(table.column("group")) if x == g])
        d = pool_table(sub, "GEN", small_study=["egger", "begg"], influence=sub.k >= 3, pet_peese=True).to_dict()
        assert got[j]["pet_peese"]["chosen"] == d["pet_peese"]["chosen"]
        for key in ("estimate", "ci_low", "ci_high"):
            close(got[j]["pet_peese"][key], d["pet_peese"][key], f"{g} pet_peese {key}", rel=1e-9)
            close(got[j]["pet_peese"]["peese"][key], d["pet_peese"]["peese"][key], f"{g} peese {key}", rel=1e-9)
        for t in ("egger", "begg"):
            close(got[j][t]["statistic"], d[t]["statistic"], f"{g} {t}", rel=1e-9)
            close(got[j][t]["p"], d[t]["p"], f"{g} {t} p", rel=1e-9)
        assert [r["study"] for r in got[j]["influence"]] == [r["study"] for r in d["influence"]]
        for a, b in zip(got[j]["influence"], d["influence"]):
            for key in ("rstudent", "cooks_distance", "tau2_deleted", "q_deleted"):
                close(a[key], b[key], f"{g} {key}", rel=1e-8)


def test_cli_by_json_lines_carry_the_tests():
    from click.testing import CliRunner

    from hatmeta.cli import cli

    data = str(FIXTURES / "data" / "by_groups.csv")
    r = CliRunner().invoke(cli, ["pool", "--data", data, "--measure", "GEN", "--by", "group", "--small-study",
                                 "egger", "--influence", "--format", "json"])
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.output.splitlines()]
    assert len(lines) == 200
    assert all("egger" in d and len(d["influence"]) == d["k"] for d in lines)
    r = CliRunner().invoke(cli, ["pool", "--data", data, "--measure", "GEN", "--by", "group", "--small-study",
                                 "egger", "--format", "csv"])
    assert r.exit_code != 0


def test_analysis_spec_asks_for_robustness_and_the_report_shows_it(tmp_path):
    """[robustness] in an analysis spec: pool_analysis runs the analyses and the report section shows
    them with their warnings, plus a Baujat plot."""
    from hatmeta.review.api import pool_analysis
    from hatmeta.review.report import _section, render_analysis

    specs = FIXTURES / "evidence" / "analyses"
    data = FIXTURES / "evidence" / "valid"
    (tmp_path / "analyses").mkdir()
    text = (specs / "retention.toml").read_text()
    text += ('\n[robustness]\nsmall_study = ["begg"]\ntrim_fill = true\ninfluence = true\n'
             'selection_model = "step"\nsteps = [0.025]\n')
    (tmp_path / "analyses" / "retention.toml").write_text(text)
    res, an = pool_analysis("retention", data_dir=data, analyses_dir=tmp_path / "analyses")
    d = res.to_dict()
    assert {"begg", "trim_fill", "influence", "selection_model", "i2_ci_low"} <= set(d)
    # Three trials are too few for a selection model: a note, not a refusal of the analysis.
    assert res.k == 3 and "needs more than 3 studies" in d["selection_model"]["error"]
    assert any(n.startswith("selection model not computed") for n in d["notes"])
    with pytest.raises(InputError):  # asked for explicitly, it is an error as with --data
        pool_analysis("retention", data_dir=data, analyses_dir=tmp_path / "analyses", selection_model="step")
    r = render_analysis("retention", tmp_path / "out", data_dir=data, analyses_dir=tmp_path / "analyses")
    assert (tmp_path / "out" / "figures" / "retention-baujat.svg").exists()
    page = _section(r, tmp_path / "out")
    assert "Trim-and-fill" in page and "Influence diagnostics" in page and "Selection model not computed" in page
    assert f"only {res.k} studies" in page


def test_bad_robustness_spec(tmp_path):
    from hatmeta.review import read_spec

    text = (FIXTURES / "evidence" / "analyses" / "retention.toml").read_text()
    path = tmp_path / "retention.toml"
    path.write_text(text + '\n[robustness]\nsmall_study = ["eggers"]\n')
    with pytest.raises(InputError, match=r"robustness\.small_study"):
        read_spec(path)


def test_peters_and_harbord_leave_out_studies_without_events(write_csv):
    """With RD a double-zero study stays in the analysis; it carries no information for Peters' and
    Harbord's tests, which leave it out and say so (R: the same regtest calls without that row give
    t = -3.463568 and -5.358771 on 3 df)."""
    rows = [["study", "events_treat", "n_treat", "events_ctrl", "n_ctrl"], ["a", 0, 50, 0, 50],
            ["b", 3, 60, 8, 61], ["c", 5, 100, 9, 98], ["d", 1, 40, 4, 41], ["e", 10, 200, 16, 190],
            ["f", 2, 30, 6, 33]]
    table = read_table(write_csv(rows), measure="RD")
    d = pool_table(table, "RD", small_study=["peters", "harbord"]).to_dict()
    assert d["peters"]["statistic"] == pytest.approx(-3.463568, abs=1e-6) and d["peters"]["df"] == 3
    assert d["harbord"]["statistic"] == pytest.approx(-5.358771, abs=1e-6) and d["harbord"]["df"] == 3
    assert d["peters"]["k"] == 5
    assert any("leaves out studies with no events" in n and n.endswith(": a") for n in d["notes"])


def test_selection_model_metafor_published_example():
    """metafor's tests/testthat/test_misc_selmodel.r: dat.hackshaw1998, steps 0.05, 0.10, 0.50, 1."""
    case = next(c for c in CASES if c["id"] == "hackshaw1998")
    d = pool(case, selection_model="step", steps=(0.05, 0.10, 0.50), benefit="higher").to_dict()["selection_model"]
    assert d["delta"] == pytest.approx([2.422079, 0.977543, 0.396713], rel=1e-5)
    assert d["delta_se"] == pytest.approx([1.66085, 0.820387, 0.469235], rel=1e-5)
    assert d["lrt"] == pytest.approx(7.066137, rel=1e-6) and d["lrt_df"] == 3
    assert d["tau2"] == pytest.approx(0.03071325, rel=1e-5)
    assert d["studies_per_interval"] == [7, 8, 16, 6]


def test_csv_output_refuses_analyses_it_cannot_show():
    from hatmeta.cli import main

    data = str(FIXTURES / "pubbias" / "egger2001.csv")
    with pytest.raises(SystemExit) as exc:
        main(["pool", "--data", data, "--measure", "OR", "--trim-fill", "--format", "csv"])
    assert exc.value.code == 2


def test_kendall_large_n_uses_the_normal_approximation():
    """Above 170 values R's exact p is NaN (n! overflows): the normal approximation, as scipy's."""
    from scipy.stats import kendalltau

    from hatmeta.methods.publication_bias import kendall

    rng = np.random.default_rng(5)
    for n in (171, 400):
        x, y = rng.normal(size=n), rng.normal(size=n)
        tau, p = kendall(x, y)
        ref = kendalltau(x, y, method="asymptotic")
        assert tau == pytest.approx(ref.statistic, rel=1e-12) and p == pytest.approx(ref.pvalue, rel=1e-9)


def test_influence_in_chunks_equals_one_pass(monkeypatch):
    from hatmeta.methods import influence as inf

    rng = np.random.default_rng(2)
    sizes = [30, 4, 12]
    y = rng.normal(0, 0.5, sum(sizes))
    v = rng.uniform(0.02, 0.3, sum(sizes))
    whole = inf.influence_arrays(y, v, sizes, ci="hksj")
    monkeypatch.setattr(inf, "CHUNK_ROWS", 50)
    chunked = inf.influence_arrays(y, v, sizes, ci="hksj")
    for key in inf.FIELDS:
        assert np.allclose(whole[key], chunked[key], rtol=1e-12, atol=1e-14), key


def _random_meta(seed, k):
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.01, 0.5, k)
    return rng.normal(0.2, np.sqrt(v + rng.choice([0.0, 0.05, 0.3]))), v


@pytest.mark.parametrize("seed", range(8))
def test_influence_follows_the_studies_when_reordered(seed):
    from hatmeta.methods.influence import FIELDS, influence_arrays

    y, v = _random_meta(seed, 5 + seed)
    perm = np.random.default_rng(100 + seed).permutation(len(y))
    a, b = influence_arrays(y, v, [len(y)]), influence_arrays(y[perm], v[perm], [len(y)])
    for key in FIELDS:
        assert np.allclose(a[key][perm], b[key], rtol=1e-8, atol=1e-10), key


@pytest.mark.parametrize("seed", range(8))
def test_trim_fill_and_tests_mirror_with_the_effects(seed):
    """Negating every effect mirrors the funnel: trim-and-fill fills the other side with the same k0
    and the negated estimate; Egger's and Begg's statistics change sign."""
    from dataclasses import replace

    from hatmeta.fit.effects import escalc
    from hatmeta.methods import publication_bias as pb

    y, v = _random_meta(seed, 8 + seed)
    es = escalc(read_table(FIXTURES / "pubbias" / "hackshaw1998.csv", measure="GEN"), "GEN").subset(range(len(y)))
    es = replace(es, yi=y, vi=v)
    neg = replace(es, yi=-y)
    for est in ("L0", "R0"):
        a, b = pb.trim_fill(es, estimator=est), pb.trim_fill(neg, estimator=est)
        assert a.k0 == b.k0 and a.side != b.side
        assert a.estimate == pytest.approx(-b.estimate, rel=1e-9, abs=1e-12)
    for t in ("egger", "begg"):
        assert pb.small_study_test(es, t).statistic == pytest.approx(-pb.small_study_test(neg, t).statistic,
                                                                      rel=1e-9, abs=1e-12)


def test_trim_fill_with_equal_variances_is_a_one_line_error(write_csv):
    """Equal variances leave the side-deciding slope undefined (metafor stops on an NA there): one line
    naming the option and the reason, exit 2, no traceback."""
    import subprocess
    import sys

    path = write_csv([["study", "yi", "vi"], ["a", "0.1", "0.04"], ["b", "0.3", "0.04"], ["c", "0.2", "0.04"],
                      ["d", "0.5", "0.04"]])
    p = subprocess.run([sys.executable, "-m", "hatmeta.cli", "pool", "--data", str(path), "--measure", "GEN",
                        "--trim-fill"], capture_output=True, text=True)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines() == ["error: option '--trim-fill': no side to fill can be chosen: the "
                                             "studies' variances do not vary, so the slope of the effects on "
                                             "their standard errors is not defined"]
