"""RevMan 5 exactly (--preset revman5), RevMan Web's defaults (--preset revman-web), and RevMan 5 files.

References: tests/fixtures/revman/revman5.json (R meta 8.2-1 with settings.meta("RevMan5"), and the
RevMan 5 MH risk-difference formula where meta parts from RevMan; generate.R beside it), RevMan's own
stored totals in R meta's Fleiss1993.rm5 / Fleiss1993_CR.csv / Fleiss1993.zip, and
tests/fixtures/revman/revman_web.json (metafor 3.8 rma(method="REML", test="knha"), generate_web.R).
"""

import csv
import io
import json
import math
import subprocess
import sys
import zipfile

import pytest

from hatmeta.api import pool_table
from hatmeta.errors import InputError
from hatmeta.io.revman import outcome_table, read_rm5
from hatmeta.io.trial_table import read_table

from ..conftest import FIXTURES, ROOT

RM = FIXTURES / "revman"
FLEISS = RM / "Fleiss1993.rm5"
REL = 1e-9


def _data(name):
    return FIXTURES / name if name.startswith("revman/") else FIXTURES / "data" / name


def _cases(name):
    return [pytest.param(c, id=c["id"]) for c in json.loads((RM / name).read_text())["cases"]]


def approx(x, rel=REL, abs_=1e-12):
    return pytest.approx(x, rel=rel, abs=abs_)


@pytest.mark.parametrize("case", _cases("revman5.json"))
def test_revman5_preset_equals_meta_revman5_settings(case):
    """Overall, per subgroup and the test for subgroup differences, every data type, measure, method
    and model: R meta's RevMan 5 reproduction (or the RevMan MH RD formula) to 1e-9 relative."""
    table = read_table(_data(case["data"]), measure=case["measure"])
    res = pool_table(table, case["measure"], method=case["method"], preset="revman5", subgroup=case["subgroup"])
    exp = case["expected"]
    for key in ("estimate", "se", "ci_low", "ci_high", "p", "q", "q_p", "i2", "tau2"):
        assert getattr(res, key) == approx(exp[key]), key
    assert res.stat == approx(exp["z"])
    assert res.q_df == exp["q_df"]
    kept = [i for i, v in enumerate(exp["vi"]) if v is not None and math.isfinite(v)]
    ys = [s.yi for s in res.studies]
    assert ys == approx([exp["yi"][i] for i in kept])
    assert [s.vi for s in res.studies] == approx([exp["vi"][i] for i in kept])
    assert [s.weight for s in res.studies] == approx([exp["weights"][i] for i in kept])
    if case["subgroup"]:
        got = {g.group: g for g in res.subgroups}
        for e in exp["subgroups"]:
            g = got[e["group"]]
            assert g.k == e["k"]
            for key in ("estimate", "se", "q", "i2", "tau2"):
                assert getattr(g, key) == approx(e[key]), (e["group"], key)
        assert res.subgroup_test.q == approx(exp["subgroup_test"]["q"])
        assert res.subgroup_test.df == exp["subgroup_test"]["df"]
        assert res.subgroup_test.p == approx(exp["subgroup_test"]["p"])


def test_revman_is_an_alias_of_revman5():
    table = read_table(FIXTURES / "data" / "bcg.csv", measure="RR")
    a = pool_table(table, "RR", preset="revman").to_dict()
    b = pool_table(table, "RR", preset="revman5").to_dict()
    assert a["method"] == b["method"] == "MH-DL"
    keys = ("estimate", "se", "tau2", "q", "i2")
    assert {k: a[k] for k in keys} == {k: b[k] for k in keys}
    assert any("alias of revman5" in n for n in a["notes"])


def test_mh_risk_difference_without_events_is_an_error_not_a_traceback(write_csv):
    path = write_csv([["study", "events_treat", "n_treat", "events_ctrl", "n_ctrl"], ["A", 0, 10, 0, 12],
                      ["B", 0, 20, 0, 19]])
    with pytest.raises(InputError, match="no events"):
        pool_table(read_table(path, measure="RD"), "RD", method="MH")
    proc = subprocess.run([sys.executable, "-m", "hatmeta.cli", "pool", "--data", str(path), "--measure", "RD",
                           "--method", "MH"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    # RevMan 5 pools it: RD 0 with the variance of the 0.5-corrected cells
    res = pool_table(read_table(path, measure="RD"), "RD", method="MH", preset="revman5")
    assert res.estimate == 0.0 and res.se > 0


def test_revman5_refuses_what_revman_5_cannot_do():
    table = read_table(FIXTURES / "data" / "bcg.csv", measure="RR")
    with pytest.raises(InputError, match="Wald"):
        pool_table(table, "RR", preset="revman5", ci="hksj")
    with pytest.raises(InputError, match="--method"):
        pool_table(table, "RR", preset="revman5", method="REML-X")
    with pytest.raises(InputError, match="Peto"):
        pool_table(table, "RR", preset="revman5", method="PETO")
    with pytest.raises(InputError, match="--cc"):
        pool_table(table, "RR", preset="revman5", cc=0.25)
    help_text = _cli("pool", "--help").stdout
    assert "alias of revman5" in " ".join(help_text.split())


# ---------------------------------------------------------------- RevMan 5 files


def test_revman_lists_the_outcomes_of_fleiss1993():
    info = read_rm5(FLEISS).describe()
    (comp,) = info["comparisons"]
    assert comp["id"] == "CMP-001" and comp["name"] == "Examples from Fleiss (1993)"
    o1, o2 = comp["outcomes"]
    assert (o1["id"], o1["data_type"], o1["measure"], o1["method"], o1["model"], o1["k"], o1["subgroups"]) == \
        ("CMP-001.01", "dichotomous", "OR", "MH", "fixed", 7, [])
    assert (o2["id"], o2["data_type"], o2["measure"], o2["k"], o2["pooled_by_revman"]) == \
        ("CMP-001.02", "continuous", "SMD", 5, False)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "hatmeta.cli", *args], capture_output=True, text=True, cwd=ROOT)


def test_cli_revman_json_and_pool_outcome_reproduce_revman_stored_totals():
    proc = _cli("revman", str(FLEISS), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert [o["id"] for o in json.loads(proc.stdout)["comparisons"][0]["outcomes"]] == ["CMP-001.01", "CMP-001.02"]
    proc = _cli("pool", "--data", str(FLEISS), "--outcome", "CMP-001.01", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert d["method"] == "MH" and d["k"] == 7 and d["revman"]["agrees"] is True
    assert d["studies"][0]["study"] == "MRC-1" and d["studies"][0]["revman_id"] == "STD-MRC_x002d_1"
    # RevMan's stored doubles (Fleiss1993.rm5, CMP-001.01), against hatmeta's unrounded numbers below
    res = _pool_fleiss("CMP-001.01")
    assert math.exp(res.estimate) == approx(0.8968655609130709, rel=1e-12)
    assert math.exp(res.ci_low) == approx(0.8405144008917793, rel=1e-12)
    assert math.exp(res.ci_high) == approx(0.9569947088336491, rel=1e-12)
    assert abs(res.stat) == approx(3.287633061337987, rel=1e-12)
    assert res.p == approx(0.0010103343130005407, rel=1e-10)
    assert res.q == approx(9.946055983220074, rel=1e-12)
    # RevMan's chi-square P is its own approximation, good to about 6 digits (Q itself to 16)
    assert res.q_p == approx(0.1269422521561745, rel=1e-6)
    assert res.i2 == approx(39.67458045558399, rel=1e-12)
    assert res.tau2 == 0.0
    assert [s.weight for s in res.studies][:2] == approx([3.176490004091248, 3.1016891143394365], rel=1e-12)


def _pool_fleiss(oid, measure=None, method=None):
    from hatmeta.commands.revman import pool_rm5

    if measure is None:
        return pool_rm5(str(FLEISS), oid, None, {})
    review = read_rm5(FLEISS)
    table, _, _ = outcome_table(review, review.outcome(oid))
    return pool_table(table, measure, method=method, preset="revman5")


def test_fleiss1993_csv_export_reproduced_to_its_8_digits():
    """RevMan's CSV export holds outcome 1 (OR, M-H, Fixed) and outcome 2 as MD (IV, Fixed), to 8 significant
    digits or 8 decimals."""
    rows = list(csv.DictReader(io.StringIO((RM / "Fleiss1993_CR.csv").read_text(encoding="utf-8"))))
    totals = {r["Outcome Number"]: r for r in rows if r["Data Type"]}
    for oid, res in (("1", _pool_fleiss("CMP-001.01")), ("2", _pool_fleiss("CMP-001.02", "MD", "FE"))):
        t = totals[oid]
        nat = math.exp if oid == "1" else (lambda x: x)
        for key, col in (("estimate", "Effect Estimate"), ("ci_low", "CI Start"), ("ci_high", "CI End")):
            assert nat(getattr(res, key)) == approx(float(t[col]), rel=5e-8, abs_=5e-9), (oid, key)
        assert res.q == approx(float(t["Q"]), rel=5e-8, abs_=5e-9)
        assert res.q_p == approx(float(t["P(Q)"]), rel=1e-6)  # RevMan's chi-square P: ~6 digits
        assert res.i2 == approx(float(t["I²(Q)"]), rel=5e-8, abs_=5e-9)
        assert abs(res.stat) == approx(float(t["Z"]), rel=5e-8, abs_=5e-9)
        assert res.p == approx(float(t["P(Z)"]), rel=5e-8, abs_=5e-9)  # 8 decimals
        studies = {r["Name"]: r for r in rows
                   if r["Outcome Number"] == oid and not r["Data Type"] and r["Year of study"]}
        for s in res.studies:
            r = studies[s.study]
            assert s.weight == approx(float(r["Weight"]), rel=5e-8, abs_=5e-9)
            assert nat(s.yi) == approx(float(r["Effect Estimate"]), rel=5e-8, abs_=5e-9)
            assert math.sqrt(s.vi) == approx(float(r["SE"]), rel=5e-8, abs_=5e-9)


def test_fleiss1993_data_package_reproduced_to_its_6_digits():
    with zipfile.ZipFile(RM / "Fleiss1993.zip") as z:
        inner = next(n for n in z.namelist() if n.endswith("-data.zip"))
        with zipfile.ZipFile(io.BytesIO(z.read(inner))) as data:
            name = next(n for n in data.namelist() if n.endswith("overall-estimates-and-settings.csv"))
            overall = next(iter(csv.DictReader(io.StringIO(data.read(name).decode("utf-8-sig")))))
            name = next(n for n in data.namelist() if n.endswith("data-rows.csv"))
            rows = [r for r in csv.DictReader(io.StringIO(data.read(name).decode("utf-8-sig")))
                    if r["Analysis number"] == "1"]
    res = _pool_fleiss("CMP-001.01")
    assert overall["Statistical method"] == "MH" and overall["Effect measure"] == "Odds Ratio"
    for key, col in (("estimate", "Mean"), ("ci_low", "CI start"), ("ci_high", "CI end")):
        assert math.exp(getattr(res, key)) == approx(float(overall[col]), rel=1e-6)
    assert res.q == approx(float(overall["Heterogeneity Chi²"]), rel=1e-6)
    assert res.i2 == approx(float(overall["Heterogeneity I²"]), rel=1e-6)
    assert abs(res.stat) == approx(float(overall["Effect Z"]), rel=1e-6)
    w = {s.study: s.weight for s in res.studies}
    for r in rows:
        assert w[r["Study"]] == approx(float(r["Weight"]), rel=1e-6)


def test_outcome_revman_did_not_pool_is_named():
    res = _pool_fleiss("CMP-001.02")
    assert res.extra["revman"]["agrees"] is None
    assert any("stored no totals" in n for n in res.notes)
    assert res.measure == "SMD" and res.k == 5


@pytest.mark.parametrize("text, message", [
    ("", "not a RevMan 5 file"),
    ("<COCHRANE_REVIEW><ANALYSES_AND_DATA>", "truncated"),
    ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><COCHRANE_REVIEW/>', "entit"),
    ("<OTHER/>", "COCHRANE_REVIEW"),
])
def test_bad_rm5_files_give_one_line_exit_2(tmp_path, text, message):
    path = tmp_path / "bad.rm5"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_rm5(path)
    proc = _cli("revman", str(path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_truncated_fleiss_file_exits_2(tmp_path):
    path = tmp_path / "cut.rm5"
    path.write_bytes(FLEISS.read_bytes()[:9000])
    proc = _cli("pool", "--data", str(path), "--outcome", "CMP-001.01")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "truncated" in proc.stderr


def test_unknown_outcome_is_named(tmp_path):
    proc = _cli("pool", "--data", str(FLEISS), "--outcome", "CMP-009.01")
    assert proc.returncode == 2 and "CMP-001.01, CMP-001.02" in proc.stderr
    proc = _cli("pool", "retention", "--outcome", "CMP-001.01")
    assert proc.returncode == 2 and "--outcome" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


EDGE = RM / "edge_cases.rm5"


def test_edge_case_file_subgroups_reproduce_stored_totals_with_names_kept():
    """Subgroups, footnotes, non-ASCII names (ISO-8859-1 file), a study RevMan marked not estimable:
    the stored totals (R meta's RevMan 5 numbers, make_edge_cases.py) are reproduced."""
    from hatmeta.commands.revman import pool_rm5

    res = pool_rm5(str(EDGE), "CMP-001.01", None, {})
    block = res.extra["revman"]
    assert block["agrees"] is True
    assert [t["total"] for t in block["totals"]] == ["overall", "before 2000", "2000 on"]
    assert block["subgroup_test"]["agrees"] is True
    assert res.method == "MH-DL" and res.k == 17
    assert "Bäch" in res.studies[0].study and res.studies[0].label == "Bäch 1996"
    assert any("footnote (George-Ødegård 1997)" in n and "½" in n for n in res.notes)
    assert [a["study"] for a in res.not_estimable] == ["Zero", "Yucel"]
    info = read_rm5(EDGE).describe()
    assert info["title"].endswith("(Ünïcode title)")
    assert info["comparisons"][0]["name"] == "Catheters versus standard care"  # markup inside the name


def test_edge_case_outcomes_without_data_or_totals_are_named():
    from hatmeta.commands.revman import pool_rm5

    with pytest.raises(InputError, match=r"CMP-001\.02.*no study data"):
        pool_rm5(str(EDGE), "CMP-001.02", None, {})
    res = pool_rm5(str(EDGE), "CMP-001.03", None, {})
    assert res.extra["revman"]["agrees"] is None and res.method == "FE" and res.measure == "MD"
    hr = pool_rm5(str(EDGE), "CMP-001.04", None, {})
    assert hr.measure == "HR" and hr.method == "DL" and [s.yi for s in hr.studies] == approx([-0.3, -0.1, -0.5])
    oe = pool_rm5(str(EDGE), "CMP-001.05", None, {})
    # Peto's total sum(O - E) / sum(V) and SE 1 / sqrt(sum V)
    assert oe.estimate == approx((-2.1 - 0.8) / 6.5) and oe.se == approx(1 / math.sqrt(6.5))
    with pytest.raises(InputError, match="stored settings"):
        pool_rm5(str(EDGE), "CMP-001.01", None, {"moderators": ("x",)})
    with pytest.raises(InputError, match="choose one with --outcome"):
        pool_rm5(str(EDGE), None, None, {})


def test_reading_is_fast_for_a_200_study_review(tmp_path):
    """Reading and pooling every outcome of a 200-study review: timed in benchmarks, here only that it
    works and gives one row per study (no timing in unit tests)."""
    rows = "".join(f'<DICH_DATA EVENTS_1="{i % 7}" TOTAL_1="{50 + i}" EVENTS_2="{(i + 3) % 9}" TOTAL_2="{60 + i}" '
                   f'STUDY_ID="STD-{i}"/>' for i in range(200))
    studies = "".join(f'<STUDY ID="STD-{i}" NAME="Study {i}" YEAR="{1990 + i % 30}"/>' for i in range(200))
    text = (f'<COCHRANE_REVIEW><STUDIES>{studies}</STUDIES><ANALYSES_AND_DATA><COMPARISON ID="CMP-001"><NAME>c</NAME>'
            f'<DICH_OUTCOME ID="CMP-001.01" EFFECT_MEASURE="RR" METHOD="MH" RANDOM="YES"><NAME>o</NAME>{rows}'
            '</DICH_OUTCOME></COMPARISON></ANALYSES_AND_DATA></COCHRANE_REVIEW>')
    path = tmp_path / "big.rm5"
    path.write_text(text)
    from hatmeta.commands.revman import pool_rm5

    res = pool_rm5(str(path), "CMP-001.01", None, {})
    assert len(res.studies) + len(res.not_estimable) == 200


@pytest.mark.parametrize("case", _cases("revman_web.json"))
def test_revman_web_preset_equals_metafor_reml_knha(case):
    """metafor rma(method = REML or DL, test = "knha"): estimate, HKSJ CI, t, tau^2 and its Q-profile
    CI, the prediction interval of predict() (t on k - 1 df), I^2 and H^2 from tau^2, to 1e-8."""
    table = read_table(FIXTURES / "data" / case["data"], measure=case["measure"])
    method = None if case["method"] == "REML" else case["method"]
    res = pool_table(table, case["measure"], preset="revman-web", **({"method": method} if method else {}))
    exp = case["expected"]
    d = res.to_dict()
    assert d["ci_method"] == "hksj" and d["df"] == exp["df"]
    for key in ("estimate", "se", "ci_low", "ci_high", "p", "tau2", "tau2_ci_low", "tau2_ci_high", "pi_low",
                "pi_high", "i2", "h2", "q", "q_p", "t"):
        if key == "tau2_ci_high" and exp[key] == approx(max(100, 10 * exp["tau2"]), rel=1e-12):
            # metafor's confint stops its search at max(100, 10 tau^2) and reports that limit
            # (tests/fixtures/metafor/NOTES.md); hatmeta searches on, so its bound lies beyond
            assert d[key] > exp[key]
            continue
        assert d[key] == approx(exp[key], rel=1e-8), key


def test_cli_revman_web_on_bcg():
    proc = _cli("pool", "--data", str(FIXTURES / "data" / "bcg.csv"), "--measure", "RR", "--preset", "revman-web",
                "--format", "json")
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    exp = json.loads((RM / "revman_web.json").read_text())["cases"][0]["expected"]
    assert d["method"] == "REML" and d["pi_low"] == approx(exp["pi_low"], rel=1e-8)
    text = _cli("pool", "--data", str(FIXTURES / "data" / "bcg.csv"), "--measure", "RR",
                "--preset", "revman-web").stdout
    assert "Prediction interval (95%, t, 12 df)" in text and "I^2 (tau^2 / (tau^2 + typical vi))" in text


@pytest.mark.parametrize("name, precision", [("Fleiss1993.zip", "6 decimals"), ("Fleiss1993_CR.csv", "8 decimals")])
def test_data_package_and_csv_export_pool_and_agree_with_their_stored_totals(name, precision):
    """The version 1 data package (a zip in a zip) and RevMan 5's analyses CSV give the same outcomes
    as the .rm5; pooled, every stored total and study value agrees to the precision the source keeps."""
    for oid in ("CMP-001.01", "CMP-001.02"):
        proc = _cli("pool", "--data", str(RM / name), "--outcome", oid, "--format", "json")
        assert proc.returncode == 0, proc.stderr
        d = json.loads(proc.stdout)
        block = d["revman"]
        assert block["stored_precision"] == precision
        if oid == "CMP-001.02" and name.endswith(".zip"):
            assert block["agrees"] is None and d["measure"] == "SMD"  # RevMan wrote zeros: not pooled
            continue
        assert block["agrees"] is True, block.get("note")
        assert len(block["studies"]) == d["k"]
    res = _pool_fleiss("CMP-001.01")
    from hatmeta.commands.revman import pool_rm5

    other = pool_rm5(str(RM / name), "CMP-001.01", None, {})
    # the same rows (in another order: sums differ in the last bit), the same numbers
    assert other.estimate == approx(res.estimate, rel=1e-13) and other.q == approx(res.q, rel=1e-13)


def test_data_package_keeps_risk_of_bias_and_reads_a_folder(tmp_path):
    with zipfile.ZipFile(RM / "Fleiss1993.zip") as z:
        inner = next(n for n in z.namelist() if n.endswith("-data.zip"))
        with zipfile.ZipFile(io.BytesIO(z.read(inner))) as data:
            data.extractall(tmp_path / "pkg")
    proc = _cli("pool", "--data", str(tmp_path / "pkg"), "--outcome", "CMP-001.01", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert d["revman"]["agrees"] is True
    assert d["studies"][0]["risk_of_bias"] == {"Allocation concealment?": "Not applicable"}
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    proc = _cli("revman", str(bad))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


@pytest.mark.parametrize("data, measure, method, subgroup", [
    ("bcg.csv", "RR", None, "alloc"), ("bcg.csv", "OR", "MH", None), ("bcg.csv", "RD", "IV-DL", "alloc"),
    ("revman/normand1999_groups.csv", "SMD", "FE", "group"), ("bcg_yi_se.csv", "RR", "IV-DL", None),
    ("revman/nielweise2007_groups.csv", "OR", "PETO", None)])
def test_revman_export_round_trip_gives_identical_numbers(tmp_path, data, measure, method, subgroup):
    """Write a data package (revman-export), read it back and pool: the same numbers (inputs written in
    full), and the totals it wrote (10 significant digits) are reproduced; the same bytes twice."""
    out = tmp_path / "pkg.zip"
    args = ["revman-export", "--data", str(_data(data)), "--measure", measure, "-o", str(out)]
    args += ["--method", method] if method else []
    args += ["--subgroup", subgroup] if subgroup else []
    proc = _cli(*args)
    assert proc.returncode == 0, proc.stderr
    first = out.read_bytes()
    assert _cli(*args).returncode == 0 and out.read_bytes() == first
    from hatmeta.commands.revman import pool_rm5

    back = pool_rm5(str(out), "CMP-001.01", None, {})
    direct = pool_table(read_table(_data(data), measure=measure), measure, method=method, preset="revman5",
                        subgroup=subgroup)
    block = back.extra["revman"]
    assert block["agrees"] is True, block.get("note")
    assert block["stored_precision"] == "10 significant digits"  # results written through hatmeta.precision
    for key in ("estimate", "se", "ci_low", "ci_high", "q", "i2", "tau2", "p"):
        assert getattr(back, key) == approx(getattr(direct, key), rel=1e-13), key
    assert back.method == direct.method and back.k == direct.k
    if subgroup:
        assert back.subgroup_test.q == approx(direct.subgroup_test.q, rel=1e-12)


def test_the_outcome_listing_is_read_at_80_columns():
    proc = _cli("revman", str(EDGE))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert max(map(len, lines)) <= 80
    assert "      MH, random, k = 19; subgroups: before 2000, 2000 on" in lines  # continuations indented
