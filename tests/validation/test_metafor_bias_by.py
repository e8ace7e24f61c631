"""``--by`` with ``--trim-fill`` and ``--selection-model``: every group equals the single-fit path on its
own rows (1e-10), and metafor's trimfill() / selmodel() run per group (tests/fixtures/bias_by/generate.R:
1e-6 relative, 1e-4 for the selection model, as tests/validation/test_metafor_pubbias.py); groups too small or where a
method fails get null numbers and the reason; the CLI's JSON lines and text carry the blocks."""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from hatmeta.api import pool_table, robustness_by
from hatmeta.cli import cli
from hatmeta.errors import InputError
from hatmeta.io.trial_table import read_table

from ..conftest import FIXTURES

FIXTURE = json.loads((FIXTURES / "bias_by" / "bias_by.json").read_text())
GROUPS_CSV = FIXTURES / "bias_by" / "groups.csv"
NUMBERS_TF = ("estimate", "se", "ci_low", "ci_high", "p", "tau2", "p_k0")
NUMBERS_SEL = ("estimate", "se", "ci_low", "ci_high", "p", "tau2", "lrt", "lrt_p")


def write_groups(path, groups):
    """groups: {name: (yi, vi)} -> a yi/vi CSV with a group column."""
    lines = ["study,yi,vi,group"]
    for g, (y, v) in groups.items():
        lines += [f"{g}-s{i:02d},{float(a)!r},{float(b)!r},{g}" for i, (a, b) in enumerate(zip(y, v), 1)]
    path.write_text("\n".join(lines) + "\n")
    return path


def simulated(seed=3, G=30):
    """Funnels with non-significant studies partly suppressed (so studies are missing on one side),
    3 to 15 studies per group, both signs of the mean."""
    rng = np.random.default_rng(seed)
    out = {}
    for j in range(G):
        k = int(rng.integers(3, 16))
        mu = 0.3 if j % 2 else -0.3
        y, v = [], []
        while len(y) < k:
            se = rng.uniform(0.05, 0.5)
            x = rng.normal(mu, math.sqrt(se**2 + 0.02))
            if abs(x / se) > 1.96 or rng.uniform() < 0.4:
                y.append(x)
                v.append(se**2)
        out[f"g{j:02d}"] = (y, v)
    return out


@pytest.fixture(scope="module")
def sim_table(tmp_path_factory):
    path = write_groups(tmp_path_factory.mktemp("by_bias") / "sim.csv", simulated())
    return read_table(path, measure="GEN")


def rows_of(table, group):
    return table.subset([i for i, x in enumerate(table.column("group")) if x == group])


def same(a, b, key, tol=1e-10):
    if b is None:
        assert a is None, key
        return
    assert a is not None and abs(a - b) <= tol * max(1.0, abs(b)), (key, a, b)


@pytest.mark.parametrize("method,estimator", [("REML", "L0"), ("REML", "R0"), ("DL", "R0"), ("FE", "L0"),
                                              ("PM", "L0"), ("ML", "R0"), ("HE", "L0"), ("SJ", "R0"),
                                              ("EB", "L0"), ("MH", "L0")])
def test_trim_fill_by_equals_the_single_fit(sim_table, method, estimator):
    table = sim_table
    if method == "MH":  # a common-effect model with no inverse-variance refit: FE refits and a note
        method_by, method_single = "MH", "FE"
    else:
        method_by = method_single = method
    got = robustness_by(table, "group", "GEN", trim_fill=True, method=method_by, trim_fill_estimator=estimator)
    groups = list(dict.fromkeys(table.column("group")))
    assert len(got) == len(groups)
    filled = 0
    for g, d in zip(groups, got):
        tf = d["trim_fill"]
        try:
            exp = pool_table(rows_of(table, g), "GEN", method=method_single, trim_fill=True,
                             trim_fill_estimator=estimator).to_dict()["trim_fill"]
        except InputError as exc:  # refused alone (k0 cycling, too few studies): nulls and the same reason
            assert tf["estimate"] is None and exc.message in tf["warning"], (g, tf)
            continue
        for key in ("k0", "side", "estimator", "k", "method", "warning"):
            assert tf[key] == exp[key], (g, key)
        if method == "MH":
            assert tf["notes"] and "common-effect" in tf["notes"][0]
        else:
            assert tf["notes"] == exp["notes"]
        for key in NUMBERS_TF:
            same(tf[key], exp[key], f"{g} {key}")
        assert len(tf["filled_yi"]) == tf["k0"] == len(exp["filled_yi"])
        for a, b in zip(tf["filled_yi"] + tf["filled_vi"], exp["filled_yi"] + exp["filled_vi"]):
            same(a, b, f"{g} filled")
        filled += tf["k0"] > 0
    assert filled >= 3  # the comparison covers filled studies, not only k0 = 0


@pytest.mark.parametrize("steps,benefit", [((0.025,), "lower"), ((0.025, 0.5), "higher")])
def test_selection_model_by_equals_the_single_fit(sim_table, steps, benefit):
    big = [g for g in dict.fromkeys(sim_table.column("group")) if rows_of(sim_table, g).k >= 10][:6]
    sub = sim_table.subset([i for i, x in enumerate(sim_table.column("group")) if x in big])
    got = robustness_by(sub, "group", "GEN", selection_model="step", steps=steps, benefit=benefit)
    assert len(got) == len(big) >= 4
    for g, d in zip(big, got):
        sel = d["selection_model"]
        exp = pool_table(rows_of(sim_table, g), "GEN", selection_model="step", steps=steps,
                         benefit=benefit).to_dict()["selection_model"]
        assert set(sel) == set(exp)
        for key in ("alternative", "lrt_df", "k", "steps", "studies_per_interval", "warning", "notes"):
            assert sel[key] == exp[key], (g, key)
        for key in NUMBERS_SEL:
            same(sel[key], exp[key], f"{g} {key}")
        for a, b in zip(sel["delta"] + sel["delta_se"], exp["delta"] + exp["delta_se"]):
            same(a, b, f"{g} delta")


def close(actual, expected, key, rel):
    assert actual == pytest.approx(expected, rel=rel, abs=1e-9), key


@pytest.mark.parametrize("method", ["REML", "DL", "FE"])
@pytest.mark.parametrize("estimator", ["L0", "R0"])
def test_trim_fill_by_against_metafor(method, estimator):
    table = read_table(GROUPS_CSV, measure="GEN")
    got = robustness_by(table, "group", "GEN", trim_fill=True, method=method, trim_fill_estimator=estimator)
    assert len(got) == len(FIXTURE["groups"]) >= 3
    for d, case in zip(got, FIXTURE["groups"]):
        exp, tf = case[f"trim_fill_{method}"][estimator], d["trim_fill"]
        assert (tf["k0"], tf["side"]) == (exp["k0"], exp["side"]), case["group"]
        for key in ("estimate", "se", "ci_low", "ci_high", "p", "tau2"):
            close(tf[key], exp[key], f"{case['group']} {key}", 1e-6)
        assert np.allclose(tf["filled_yi"], exp["filled_yi"], rtol=1e-6, atol=1e-9)
        assert np.allclose(tf["filled_vi"], exp["filled_vi"], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name,steps,benefit", [("less_0.025", (0.025,), "lower"),
                                                ("greater_0.025_0.5", (0.025, 0.5), "higher")])
def test_selection_model_by_against_metafor(name, steps, benefit):
    table = read_table(GROUPS_CSV, measure="GEN")
    got = robustness_by(table, "group", "GEN", selection_model="step", steps=steps, benefit=benefit)
    compared = 0
    for d, case in zip(got, FIXTURE["groups"]):
        exp, sel = case.get(f"selection_model_{name}"), d["selection_model"]
        if exp is None:  # metafor refused this group (an empty p-value interval); hatmeta fits it with a note
            assert sel["notes"]
            continue
        assert sel["alternative"] == exp["alternative"]
        close(sel["estimate"], exp["estimate"], f"{case['group']} estimate", 1e-4)
        close(sel["lrt_p"], exp["lrt_p"], f"{case['group']} lrt_p", 1e-4)
        compared += 1
        if max(exp["delta"]) > 99 or exp["tau2"] < 1e-6:
            # delta at metafor's bound of 100 or tau^2 at 0: only the mean and the LRT are identified.
            assert sel["notes"]
            continue
        for key in ("se", "ci_low", "ci_high", "tau2"):
            close(sel[key], exp[key], f"{case['group']} {key}", 1e-4)
        assert np.allclose(sel["delta"], exp["delta"], rtol=1e-4)
    assert compared >= 3


def small_and_failing(tmp_path):
    rng = np.random.default_rng(7)
    big = simulated(seed=11, G=1)["g00"]
    while len(big[0]) < 12:
        big = (big[0] * 2, big[1] * 2)
    return write_groups(tmp_path / "small.csv", {
        "two": ([0.1, 0.4], [0.04, 0.09]),                        # too small for both methods
        "three": ([0.1, 0.4, -0.2], [0.04, 0.09, 0.02]),          # trim-and-fill yes; selection model no
        "flat": (list(rng.normal(0, 0.2, 6)), [0.04] * 6),        # equal variances: no side to fill
        "ok": (big[0][:12], big[1][:12]),
    })


def test_small_and_failing_groups_get_nulls_and_the_reason(tmp_path, monkeypatch):
    table = read_table(small_and_failing(tmp_path), measure="GEN")
    got = dict(zip(["two", "three", "flat", "ok"],
                   robustness_by(table, "group", "GEN", trim_fill=True, selection_model="step")))
    tf, sel = got["two"]["trim_fill"], got["two"]["selection_model"]
    assert tf["estimate"] is None and tf["k0"] is None and tf["k"] == 2
    assert "needs at least 3 studies, found 2" in tf["warning"] and tf["notes"] == [tf["warning"]]
    assert sel["estimate"] is None and "needs more than 3 studies, found 2" in sel["warning"]
    with pytest.raises(InputError):  # the single fit refuses the same group
        pool_table(rows_of(table, "two"), "GEN", trim_fill=True)
    assert got["three"]["trim_fill"]["estimate"] is not None
    sel = got["three"]["selection_model"]
    assert sel["estimate"] is None and sel["lrt_df"] == 1 and sel["steps"] == [0.025, 1.0]
    assert "needs more than 3 studies, found 3" in sel["warning"]
    tf = got["flat"]["trim_fill"]
    assert tf["estimate"] is None and "variances do not vary" in tf["warning"]
    assert got["ok"]["trim_fill"]["estimate"] is not None and got["ok"]["selection_model"]["estimate"] is not None
    assert set(got["two"]["trim_fill"]) == set(got["ok"]["trim_fill"])  # the same keys, nulls or not
    assert set(got["two"]["selection_model"]) == set(got["ok"]["selection_model"])

    # A fit that breaks (not a refusal) fails its group only, with the error named.
    from hatmeta.methods import publication_bias as pb

    real = pb.selection_model

    def broken(es, **kw):
        if es.k == 12:
            raise np.linalg.LinAlgError("Singular matrix")
        return real(es, **kw)

    monkeypatch.setattr(pb, "selection_model", broken)
    got = robustness_by(table, "group", "GEN", selection_model="step")
    assert "could not be fitted: LinAlgError: Singular matrix" in got[3]["selection_model"]["warning"]
    assert got[2]["selection_model"]["estimate"] is not None


def test_cli_by_json_lines_and_text_carry_the_blocks(tmp_path):
    path = str(small_and_failing(tmp_path))
    run = CliRunner().invoke
    r = run(cli, ["pool", "--data", path, "--measure", "GEN", "--by", "group", "--trim-fill", "--trim-fill-estimator",
                  "R0", "--selection-model", "step", "--steps", "0.025,0.5", "--benefit", "higher", "--format", "json"])
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.output.splitlines()]
    assert [d["group"] for d in lines] == ["two", "three", "flat", "ok"]
    assert all("trim_fill" in d and "selection_model" in d for d in lines)
    assert lines[0]["trim_fill"]["estimate"] is None and lines[0]["notes"] == []  # the group's own notes intact
    # The group's blocks are the single fit's JSON blocks on its rows, byte for byte after the output policy.
    sub = tmp_path / "ok.csv"
    sub.write_text("\n".join(x for x in open(path).read().splitlines() if x.startswith("study") or x.endswith(",ok")))
    r1 = run(cli, ["pool", "--data", str(sub), "--measure", "GEN", "--trim-fill", "--trim-fill-estimator", "R0",
                   "--selection-model", "step", "--steps", "0.025,0.5", "--benefit", "higher", "--format", "json"])
    assert r1.exit_code == 0, r1.output
    single = json.loads(r1.output)
    assert lines[3]["trim_fill"] == single["trim_fill"]
    assert lines[3]["selection_model"] == single["selection_model"]
    assert lines[3]["trim_fill"]["estimator"] == "R0" and lines[3]["selection_model"]["alternative"] == "greater"

    r = run(cli, ["pool", "--data", path, "--measure", "GEN", "--by", "group", "--trim-fill", "--selection-model",
                  "step"])
    assert r.exit_code == 0, r.output
    assert r.output.count("Trim-and-fill") == 4 and "Trim-and-fill: not computed (trim-and-fill needs at least 3" \
        in r.output
    assert "Step-function selection model (cut-points 0.025, alternative less): estimate" in r.output
    assert "Step-function selection model: not computed (selection model not fitted" in r.output
    from hatmeta.cli import main

    for extra in (["--format", "csv"], ["--batch-rows", "10"]):  # CSV holds no blocks; streaming has none
        with pytest.raises(SystemExit) as exc:
            main(["pool", "--data", path, "--measure", "GEN", "--by", "group", "--trim-fill", *extra])
        assert exc.value.code == 2


def test_rows_of_groups_interleaved_give_the_same_blocks(sim_table):
    """Groups whose rows are not contiguous: each group's block as with its rows together."""
    order = np.random.default_rng(5).permutation(sim_table.k)
    shuffled = sim_table.subset(order)
    a = robustness_by(sim_table, "group", "GEN", trim_fill=True, trim_fill_estimator="R0")
    b = robustness_by(shuffled, "group", "GEN", trim_fill=True, trim_fill_estimator="R0")
    first = list(dict.fromkeys(sim_table.column("group")))
    by_name = dict(zip(dict.fromkeys(shuffled.column("group")), b))
    for g, d in zip(first, a):
        e = by_name[g]["trim_fill"]
        assert (e["k0"], e["side"]) == (d["trim_fill"]["k0"], d["trim_fill"]["side"]), g
        for key in NUMBERS_TF:
            same(e[key], d["trim_fill"][key], f"{g} {key}", tol=1e-12)


def test_dask_refuses_the_per_group_analyses_rather_than_dropping_them(tmp_path):
    from hatmeta.cli import main

    path = str(small_and_failing(tmp_path))
    for extra in (["--trim-fill"], ["--selection-model", "step"], ["--small-study", "egger"]):
        with pytest.raises(SystemExit) as exc:
            main(["pool", "--data", path, "--measure", "GEN", "--by", "group", "--dask", "local:1", *extra])
        assert exc.value.code == 2


@pytest.mark.parametrize("side", ["left", "right"])
def test_trim_fill_side_given_equals_the_single_fit(sim_table, side):
    from hatmeta.fit.effects import escalc
    from hatmeta.methods import publication_bias as pb

    got = robustness_by(sim_table, "group", "GEN", trim_fill=True, trim_fill_side=side, trim_fill_estimator="R0")
    for g, d in zip(dict.fromkeys(sim_table.column("group")), got):
        tf = d["trim_fill"]
        try:
            exp = pb.trim_fill(escalc(rows_of(sim_table, g), "GEN"), side=side, estimator="R0").to_dict()
        except InputError as exc:
            assert tf["estimate"] is None and exc.message in tf["warning"]
            continue
        assert (tf["side"], tf["k0"]) == (side, exp["k0"])
        for key in NUMBERS_TF:
            same(tf[key], exp[key], f"{g} {key}")


def test_trimming_to_a_single_study_uses_its_own_effect():
    """k = 3, HE, L0: trimming keeps one study, whose mean is its own effect (HE's tau^2 is 0/0 there);
    metafor's trimfill gives k0 = 2 and the refit below (tests/fixtures/bias_by/generate.R)."""
    from hatmeta.io.trial_table import table_from_frame

    case = FIXTURE["single_kept"]
    table = table_from_frame({"study": ["a", "b", "c"], "yi": case["yi"], "vi": case["vi"], "group": ["g"] * 3})
    single = pool_table(table, "GEN", method="HE", trim_fill=True, trim_fill_estimator="L0").to_dict()["trim_fill"]
    by = robustness_by(table, "group", "GEN", trim_fill=True, method="HE", trim_fill_estimator="L0")[0]["trim_fill"]
    for tf in (single, by):
        assert (tf["k0"], tf["side"]) == (case["k0"], case["side"])
        for key in ("estimate", "se", "tau2"):
            same(tf[key], case[key], key)
