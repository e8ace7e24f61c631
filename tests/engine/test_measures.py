"""Measures added in issue 12 (HR, GEN on the log scale, ROM, IRD, PR, PLO, PFT, COR, ZCOR) and the
undefined Hedges' g, against metafor 3.8.1's escalc + rma (tests/fixtures/metafor/measures.R), 1e-6."""

import json

import pytest

from hatmeta.api import pool_table
from hatmeta.io.trial_table import read_table

from ..conftest import FIXTURES
from ..validation.test_metafor import close

CASES = json.loads((FIXTURES / "metafor" / "measures.json").read_text())["cases"]
DATA = FIXTURES / "data"


def run(case, pi="z"):
    opts = case["options"]
    table = read_table(DATA / case["data"], measure=case["measure"])
    return pool_table(table, case["measure"], method=case["method"], ci=case["ci"], pi=pi,
                      input_level=opts["input_level"], scale=opts.get("scale"))


@pytest.mark.parametrize("case", [pytest.param(c, id=c["id"]) for c in CASES])
def test_measure_agrees_with_metafor(case):
    res = run(case)
    d = res.to_dict()
    exp = case["expected"]
    assert d["k"] == exp["k"]
    for key in ("estimate", "se", "ci_low", "ci_high", "p", "tau2", "q"):
        close(d[key], exp[key], key)
    close(d["z" if res.df is None else "t"], exp["stat"], "stat")
    close(d["pi_low"], exp["pi_z_low"], "pi_low")
    close(d["pi_high"], exp["pi_z_high"], "pi_high")
    yi = [y for y in exp["yi"] if y is not None]
    vi = [v for v in exp["vi"] if v is not None]
    assert [s["yi"] for s in d["studies"]] == pytest.approx(yi, rel=1e-10, abs=1e-14)
    assert [s["vi"] for s in d["studies"]] == pytest.approx(vi, rel=1e-10)
    if "natural" in exp:
        for key, value in exp["natural"].items():
            close(d["natural"][key], value, f"natural {key}")
    expected_scale = {"PLO": "logit", "PFT": "freeman-tukey", "ZCOR": "fisher-z", "HR": "log", "ROM": "log",
                      "GEN": "log"}.get(case["measure"], "identity")
    assert d["scale"] == expected_scale


def test_undefined_hedges_g_is_left_out_and_named():
    res = run(next(c for c in CASES if c["measure"] == "SMD"))
    assert "Tiny" not in [s.study for s in res.studies]
    assert any("Tiny" in n and "Hedges' g undefined" in n for n in res.notes)
    assert "Tiny" in res.summary()


def test_continuity_correction_for_zero_and_all_events_is_noted():
    res = run(next(c for c in CASES if c["id"].startswith("prop_zero_PLO")))
    note = next(n for n in res.notes if "0.5 added" in n)
    assert "Study A" in note and "Study C" in note and "Study F" in note and "Study B" not in note
    pft = run(next(c for c in CASES if c["id"].startswith("prop_zero_PFT")))
    assert not any("added" in n for n in pft.notes)  # no correction for PFT (metafor: add = 0)


def test_hr_refuses_a_non_positive_ratio(write_csv):
    from hatmeta.errors import InputError

    path = write_csv([["study", "estimate", "ci_low", "ci_high"], ["a", "0.8", "0", "1.2"], ["b", "1", "0.5", "2"]])
    with pytest.raises(InputError, match="positive"):
        pool_table(read_table(path, measure="HR"), "HR")


def test_gen_on_the_log_scale_tests_against_one():
    """A ratio given as estimate + CI pooled with GEN --scale log: log scale, null at 1, PI positive."""
    case = next(c for c in CASES if c["measure"] == "GEN" and c["method"] == "REML" and c["ci"] == "wald")
    res = run(case, pi="t")
    assert res.scale == "log" and res.natural(res.pi_low) > 0
    linear = pool_table(read_table(DATA / case["data"], measure="GEN"), "GEN")
    assert linear.scale == "identity" and linear.estimate != pytest.approx(res.estimate)


def test_by_json_lines_carry_natural_like_a_single_fit(write_csv):
    import subprocess
    import sys

    from hatmeta.io.trial_table import table_from_rows

    rows = [["g", "study", "events", "n"], ["a", "s1", "3", "20"], ["a", "s2", "5", "30"], ["a", "s3", "0", "15"],
            ["b", "s1", "10", "40"], ["b", "s2", "12", "35"], ["b", "s3", "9", "30"]]
    p = subprocess.run([sys.executable, "-m", "hatmeta.cli", "pool", "--data", str(write_csv(rows)), "--measure", "PFT",
                        "--by", "g", "--format", "json"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    lines = [json.loads(x) for x in p.stdout.splitlines()]
    alone = pool_table(table_from_rows([rows[0]] + rows[1:4]), "PFT").to_dict()
    # Written numbers carry 10 significant digits (the output-precision policy, hatmeta/precision.py).
    assert lines[0]["natural"] == pytest.approx(alone["natural"], rel=1e-9)
    assert lines[0]["studies"][0]["events"] == 3  # counts stay integers


def test_hr_from_log_yi_se_is_pooled_on_the_log_scale(write_csv):
    rows = [["study", "yi", "se"], ["a", "-0.2", "0.1"], ["b", "-0.35", "0.15"], ["c", "0.05", "0.2"]]
    hr = pool_table(read_table(write_csv(rows), measure="HR"), "HR")
    gen = pool_table(read_table(write_csv(rows), measure="GEN"), "GEN", scale="log")
    assert hr.scale == gen.scale == "log"
    assert hr.estimate == pytest.approx(gen.estimate, rel=1e-12)
    assert hr.natural(hr.estimate) == pytest.approx(2.718281828459045 ** hr.estimate)


def test_rom_needs_positive_means(write_csv):
    from hatmeta.errors import InputError

    rows = [["study", "mean_treat", "sd_treat", "n_treat", "mean_ctrl", "sd_ctrl", "n_ctrl"],
            ["a", "10", "2", "20", "12", "2", "20"], ["b", "-1", "2", "20", "12", "2", "20"]]
    with pytest.raises(InputError, match="positive means") as err:
        pool_table(read_table(write_csv(rows), measure="ROM"), "ROM")
    assert err.value.line == 3


def test_input_level_without_a_ci_table_is_refused():
    from hatmeta.errors import InputError

    with pytest.raises(InputError, match="--input-level applies"):
        pool_table(read_table(DATA / "bcg.csv", measure="RR"), "RR", input_level=0.9)


def test_by_json_line_with_natural_is_the_groups_own_json():
    """The --by line of a proportion measure (with its back-transformed block) is, byte for byte, the
    writer's JSON of the group's own result (studies listed with their inputs, effect and weight)."""
    from hatmeta.api import pool_by
    from hatmeta.io.trial_table import table_from_rows
    from hatmeta.precision import dumps

    rows = [["g", "study", "events", "n"], ["a", "s1", "3", "20"], ["a", "s2", "5", "30"], ["a", "s3", "0", "15"],
            ["b", "s1", "10", "40"], ["b", "s2", "12", "35"], ["b", "s3", "9", "30"]]
    batch = pool_by(table_from_rows(rows), "g", "PFT")
    for line, res in zip(batch.json_lines(), batch):
        expected = res.to_dict()
        keys = set(json.loads(line)["studies"][0])
        expected["studies"] = [{k: v for k, v in s.items() if k in keys} for s in expected["studies"]]
        assert "natural" in expected and line == dumps(expected, indent=False)
