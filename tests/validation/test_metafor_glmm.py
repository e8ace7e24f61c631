"""Binomial/Poisson GLMMs (metafor's rma.glmm UM.FS, UM.RS, CM.EL) against the exact maximum
likelihood computed independently in R (tests/fixtures/glmm/generate.R: integrate(), exact sums,
optim + Newton polish), against rma.glmm's own (approximate) fits, and against the numbers metafor's
test suite prints (test_analysis_example_stijnen2010.r, test_analysis_example_vanhouwelingen1993.r)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from hatmeta import api
from hatmeta.errors import InputError
from hatmeta.fit.glmm import fit_glmm
from hatmeta.io.trial_table import table_from_rows

FIX = Path(__file__).parents[1] / "fixtures" / "glmm"
DATA = Path(__file__).parents[1] / "fixtures" / "data"
CASES = sorted(FIX.glob("*.json"))


def _load(path):
    d = json.loads(path.read_text())
    x1, n1, x2, n2 = (np.asarray(d[k], float) for k in ("x1", "n1", "x2", "n2"))
    keep = ~(((x1 == 0) & (x2 == 0)) | ((d["measure"] == "OR") & (x1 == n1) & (x2 == n2)))
    return d, (x1[keep], n1[keep], x2[keep], n2[keep])


def _rel(a, b, floor=1e-8):
    return abs(a - b) / max(abs(b), floor)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_exact_ml_matches_direct_integration_in_r(path):
    d, arms = _load(path)
    assert d["exact"], "fixture has no exact fits"
    for model, ref in d["exact"].items():
        f = fit_glmm(model, d["measure"], *arms)
        assert f.converged
        for name in ("theta", "se", "tau2", "loglik", "sigma2", "beta0"):
            if name in ref:
                got = getattr(f, name)
                assert _rel(got, ref[name]) < 1e-5, (path.stem, model, name, got, ref[name])


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_rma_glmm_agrees_to_its_own_accuracy(path):
    """rma.glmm fits UM.FS and UM.RS with glmer (7-point quadrature or Laplace): within 1% of the
    exact maximum here (log OR, SE; tau^2 within 0.02 absolute). CM.EL uses integrate(): closer."""
    d, arms = _load(path)
    for model, mf in d["metafor"].items():
        if "theta" not in mf or model not in d["exact"]:
            continue
        ex = d["exact"][model]
        tol = 2e-4 if model == "CM.EL" else 1e-2
        assert abs(mf["theta"] - ex["theta"]) < tol * max(1, abs(ex["theta"])) * 3, (model, mf, ex)
        assert _rel(mf["se"], ex["se"]) < tol * 3, (model, mf, ex)
        assert abs(mf["tau2"] - ex["tau2"]) < (2e-3 if model == "CM.EL" else 0.02), (model, mf, ex)


def _pool(path, method, measure="OR", **kw):
    from hatmeta.io.trial_table import read_table

    return api.pool_table(read_table(str(path), measure=measure), measure, method=method, **kw)


def test_stijnen2010_printed_numbers_cm_el():
    """metafor tests/testthat/test_analysis_example_stijnen2010.r, CM.EL on dat.nielweise2007
    (Stijnen et al. 2010, Table III): -1.3532, se 0.3511, tau 0.8327, OR 0.2584 [0.1299, 0.5142]."""
    r = _pool(DATA / "nielweise2007.csv", "glmm-exact")
    assert r.method == "GLMM-EXACT"
    assert r.estimate == pytest.approx(-1.3532, abs=5e-5)
    # metafor's SE comes from a finite-difference Hessian of its integrate() likelihood: 0.35107;
    # the exact value (R fixture, Richardson-extrapolated Hessian) is 0.351040.
    assert r.se == pytest.approx(0.3511, abs=1e-4)
    assert r.tau == pytest.approx(0.8327, abs=5e-5)
    assert math.exp(r.estimate) == pytest.approx(0.2584, abs=5e-5)
    assert math.exp(r.ci_low) == pytest.approx(0.1299, abs=5e-5)
    assert math.exp(r.ci_high) == pytest.approx(0.5142, abs=5e-5)
    assert any("Yucel 2004" in n for n in r.notes)  # the double-zero study is named


def test_vanhouwelingen1993_printed_numbers_cm_el():
    """metafor test_analysis_example_vanhouwelingen1993.r (dat.collins1985a, arm 1 = control)."""
    d, arms = _load(FIX / "collins1985a.json")
    f = fit_glmm("CM.EL", "OR", *arms)
    assert f.theta == pytest.approx(0.1744, abs=5e-5)
    assert f.se == pytest.approx(0.1364, abs=5e-5)
    assert f.theta - 1.959964 * f.se == pytest.approx(-0.0929, abs=5e-5)
    assert f.theta + 1.959964 * f.se == pytest.approx(0.4417, abs=5e-5)
    assert f.loglik == pytest.approx(-52.99009, abs=5e-6)
    assert f.tau2 == pytest.approx(0.1192, abs=5e-5)


def test_stijnen2010_irr_cm_el():
    """Stijnen et al. 2010 Table VIII via metafor's test: IRR CM.EL on dat.nielweise2008."""
    d, arms = _load(FIX / "nielweise2008.json")
    f = fit_glmm("CM.EL", "IRR", *arms)
    assert f.theta == pytest.approx(-0.4762, abs=5e-5)
    assert f.se == pytest.approx(0.2377, abs=5e-5)
    assert math.sqrt(f.tau2) == pytest.approx(0.3501, abs=5e-5)


def _table(rows, layout="binary"):
    head = (["study", "events_treat", "n_treat", "events_ctrl", "n_ctrl"] if layout == "binary"
            else ["study", "events_treat", "time_treat", "events_ctrl", "time_ctrl"])
    return table_from_rows([head] + [[str(x) for x in r] for r in rows])


def test_tau2_zero_boundary_gives_the_common_effect_fit():
    t = _table([["A", 10, 100, 20, 100], ["B", 11, 100, 21, 100], ["C", 9, 100, 19, 100]])
    for m in ("GLMM-FS", "GLMM-EXACT", "GLMM-RS"):
        r = api.pool_table(t, "OR", method=m)
        assert r.tau2 == 0.0
        assert r.se == pytest.approx(r.extra["glmm"]["se_tau2_0"], rel=1e-9)
        assert any("boundary" in n for n in r.notes)


def test_no_treatment_events_gives_a_one_sided_profile_interval_not_a_failure():
    t = _table([["A", 0, 50, 3, 50], ["B", 0, 40, 2, 45], ["C", 0, 60, 0, 60], ["D", 0, 30, 4, 30]])
    for m in ("GLMM-FS", "GLMM-EXACT"):  # (UM.RS: same code path, slower; run in the benchmark)
        r = api.pool_table(t, "OR", method=m)
        assert r.estimate == -math.inf and r.ci_low == -math.inf
        assert math.isfinite(r.ci_high) and 0 < r.p < 1
        assert any("profile-likelihood" in n for n in r.notes)
        assert any("C: no events in both arms" in n for n in r.notes)
        d = r.to_dict()
        assert d["estimate"] is None and d["ci_high"] == pytest.approx(r.ci_high)
    # The bound moves the right way with more evidence: more control events, lower upper limit.
    more = _table([["A", 0, 50, 9, 50], ["B", 0, 40, 8, 45], ["D", 0, 30, 9, 30]])
    assert (api.pool_table(more, "OR", method="GLMM-EXACT").ci_high
            < api.pool_table(t, "OR", method="GLMM-EXACT").ci_high)


def test_glmm_needs_counts():
    t = table_from_rows([["study", "yi", "vi"], ["A", "0.1", "0.2"], ["B", "0.3", "0.1"]])
    with pytest.raises(InputError, match="arm counts"):
        api.pool_table(t, "OR", method="GLMM-FS")
    with pytest.raises(InputError, match="Wald"):
        _pool(DATA / "nielweise2007.csv", "GLMM-FS", ci="hksj")
    with pytest.raises(InputError, match="leave-one-out"):
        _pool(DATA / "nielweise2007.csv", "GLMM-FS", leave_one_out=True)


def test_irr_fs_and_rs_run_on_rates():
    d, _ = _load(FIX / "nielweise2008.json")
    rows = [[f"{s} ({i})", int(a), t1, int(c), t2]
            for i, (s, a, t1, c, t2) in enumerate(zip(d["study"], d["x1"], d["n1"], d["x2"], d["n2"]))]
    t = _table(rows, layout="rates")
    for m in ("glmm-fs", "GLMM-RS", "Glmm-Exact"):
        r = api.pool_table(t, "IRR", method=m)
        assert math.isfinite(r.estimate) and r.se > 0 and r.measure == "IRR"
        ref = d["exact"].get({"glmm-fs": "UM.FS", "GLMM-RS": "UM.RS", "Glmm-Exact": "CM.EL"}[m])
        if ref:
            assert r.estimate == pytest.approx(ref["theta"], rel=1e-5)


def test_simulated_sparse_datasets_all_get_an_answer():
    """A fast sample of the robustness check (benchmarks/bench_glmm.py runs 2,000): event rates
    0.5-5%, 4-10 studies; every fit gives a finite estimate or a named infinite one with a finite bound."""
    rng = np.random.default_rng(20261130)
    answered = 0
    n = 25
    for _ in range(n):
        k = int(rng.integers(4, 11))
        p0 = rng.uniform(0.005, 0.05)
        n1 = rng.integers(30, 300, k)
        n2 = rng.integers(30, 300, k)
        lor = np.log(rng.uniform(0.5, 2)) + rng.normal(0, 0.5, k)
        p1 = 1 / (1 + np.exp(-(np.log(p0 / (1 - p0)) + lor)))
        a, c = rng.binomial(n1, p1), rng.binomial(n2, p0)
        keep = ~((a == 0) & (c == 0))
        if not keep.any():
            answered += 1  # no events at all: escalc stops with a one-line error (tested elsewhere)
            continue
        for model in ("UM.FS", "CM.EL"):
            f = fit_glmm(model, "OR", a[keep], n1[keep], c[keep], n2[keep])
            ok = (math.isfinite(f.theta) and math.isfinite(f.se) and f.tau2 >= 0) or (
                f.separation is not None and math.isfinite(f.ci_bound))
            assert ok, (model, a, n1, c, n2, f)
        answered += 1
    assert answered == n


def test_cli_method_and_compare_methods(tmp_path):
    import subprocess
    import sys

    class _Out:
        def __init__(self, p):
            self.exit_code, self.output = p.returncode, p.stdout + p.stderr

    class runner:
        @staticmethod
        def invoke(_, args):
            return _Out(subprocess.run([sys.executable, "-m", "hatmeta.cli", *args], capture_output=True, text=True))

    main = None
    out = runner.invoke(main, ["pool", "--data", str(DATA / "nielweise2007.csv"), "--measure", "OR",
                               "--method", "glmm-fs", "--format", "json"])
    assert out.exit_code == 0, out.output
    d = json.loads(out.output)
    for key in ("estimate", "se", "ci_low", "ci_high", "tau2", "method", "glmm", "sparse_data"):
        assert key in d
    assert d["method"] == "GLMM-FS" and d["glmm"]["model"] == "UM.FS"
    assert d["sparse_data"]["double_zero"] == 1 and d["sparse_data"]["studies_with_zero_cell"] == 6
    assert [c["study"] for c in d["sparse_data"]["continuity"]][:2] == ["Bach 1996", "Raad 1997"]
    png = tmp_path / "m.png"
    out = runner.invoke(main, ["pool", "--data", str(DATA / "nielweise2007.csv"), "--measure", "OR",
                               "--compare-methods", "--methods-plot", str(png)])
    assert out.exit_code == 0, out.output
    assert png.stat().st_size > 1000
    text = out.output
    assert "Methods compared" in text and "zero cell" in text
    for label in ("Mantel-Haenszel", "Peto", "UM.FS", "UM.RS", "CM.EL", "REML"):
        assert label in text
    out = runner.invoke(main, ["pool", "--data", str(DATA / "nielweise2007.csv"), "--measure", "OR",
                               "--compare-methods", "--format", "json"])
    rows = json.loads(out.output)["compare_methods"]
    assert [r["method"] for r in rows] == ["FE", "REML", "MH", "PETO", "GLMM-FS", "GLMM-RS", "GLMM-EXACT"]
    exact = next(r for r in rows if r["method"] == "GLMM-EXACT")
    assert exact["estimate"] == pytest.approx(-1.3531581, abs=1e-6)
    out = runner.invoke(main, ["pool", "--data", str(DATA / "nielweise2007.csv"), "--measure", "OR",
                               "--methods-plot", str(png)])
    assert out.exit_code == 2 and "--compare-methods" in out.output


def test_methods_plot_accepts_an_axis():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hatmeta.render.plots.methods import methods_plot

    r = _pool(DATA / "nielweise2007.csv", "REML", compare_methods=True)
    fig, ax = plt.subplots()
    assert methods_plot(r, ax=ax) is fig
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == 7 and labels[0].startswith("GLMM, conditional")
    plt.close(fig)


def test_advice_follows_the_data():
    from hatmeta.fit.effects import escalc
    from hatmeta.methods.sparse import advise, is_sparse

    balanced_rare = _table([["A", 1, 500, 3, 500], ["B", 0, 400, 2, 400], ["C", 2, 600, 4, 600]])
    es = escalc(balanced_rare, "OR")
    adv = advise(balanced_rare, es)
    assert "PETO" in adv.suits and adv.event_rate_treat < 1
    assert adv.continuity[0]["study"] == "B" and adv.continuity[0]["cells_used"] == [0.5, 400.5, 2.5, 398.5]
    unbalanced = _table([["A", 1, 900, 3, 100], ["B", 0, 400, 2, 400]])
    adv = advise(unbalanced, escalc(unbalanced, "OR"))
    assert "PETO" in adv.avoid and adv.unbalanced == 1
    common = _table([["A", 30, 100, 40, 100], ["B", 25, 100, 35, 100]])
    assert not is_sparse(common)


def test_analysis_spec_can_ask_for_the_methods_side_by_side(tmp_path):
    from hatmeta.review.spec import read_spec

    text = (Path(__file__).parents[2] / "analyses" / "retention.toml").read_text()
    assert "[model]" in text
    good = tmp_path / "retention.toml"
    good.write_text(text.replace("[model]", "[model]\ncompare_methods = true", 1))
    assert read_spec(good).compare_methods is True
    assert read_spec(Path(__file__).parents[2] / "analyses" / "retention.toml").compare_methods is False
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("[model]", "[model]\ncompare_methods = \"yes\"", 1))
    with pytest.raises(InputError, match="true or false"):
        read_spec(bad)
    glmm = tmp_path / "glmm.toml"
    glmm.write_text(text.replace('method = "REML"', 'method = "glmm-exact"'))
    assert read_spec(glmm).method == "GLMM-EXACT"


def test_by_groups_fit_a_glmm_per_group():
    rows = [["A", 0, 116, 3, 117, "x"], ["B", 1, 44, 3, 35, "x"], ["C", 2, 208, 9, 195, "x"],
            ["D", 5, 151, 6, 157, "y"], ["E", 1, 98, 4, 139, "y"], ["F", 1, 97, 19, 103, "y"]]
    head = ["study", "events_treat", "n_treat", "events_ctrl", "n_ctrl", "grp"]
    t = table_from_rows([head] + [[str(x) for x in r] for r in rows])
    res = list(api.pool_by(t, "grp", "OR", method="glmm-fs"))
    assert [r.method for r in res] == ["GLMM-FS", "GLMM-FS"]
    for r, idx in zip(res, ([0, 1, 2], [3, 4, 5])):
        sub = table_from_rows([head] + [[str(x) for x in rows[i]] for i in idx])
        assert r.estimate == pytest.approx(api.pool_table(sub, "OR", method="GLMM-FS").estimate, rel=1e-9)


def test_forest_footer_names_the_glmm_heterogeneity_test():
    from hatmeta.render.plots.forest import footer_lines

    r = _pool(DATA / "nielweise2007.csv", "GLMM-EXACT")
    lines = footer_lines(r)
    assert any("LR test of Tau² = 0: 3.46" in line for line in lines), lines
    assert not any("nan" in line for line in lines)


@pytest.mark.parametrize("method", ["GLMM-EXACT", "GLMM-FS", "GLMM-RS"])
def test_glmm_text_gives_the_likelihood_ratio_test_not_a_nan_q(method):
    """A GLMM has no Cochran's Q: the text names its heterogeneity test (LR for tau² = 0), as the forest
    plot's footer does, instead of 'Q = nan, df = 16 (P = NA)'."""
    import subprocess
    import sys
    from pathlib import Path

    data = Path(__file__).parents[1] / "fixtures" / "data" / "nielweise2007.csv"
    out = subprocess.run([sys.executable, "-m", "hatmeta.cli", "pool", "--data", str(data), "--measure", "OR",
                          "--method", method], capture_output=True, text=True, check=True).stdout
    assert "Q = nan" not in out and "(P = NA)" not in out and "LR test of tau² = 0:" in out
