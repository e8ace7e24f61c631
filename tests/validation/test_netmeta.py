"""Network meta-analysis against netmeta 3.3 (fixtures from tests/fixtures/netmeta/generate.R).

Estimates, SEs, CIs, tau^2, I^2, the Q decomposition and P-scores to 1e-6, netsplit to 1e-5; REML
at the maximum of the restricted likelihood (shown higher than netmeta's stopping point); the
vignette's printed Stowe2010 numbers; refusals with file, line and column.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from hatmeta.errors import InputError
from hatmeta.fit.network import fit_network, pairwise, tau2_reml
from hatmeta.io.network_table import read_network
from hatmeta.methods.network import nma

FIX = Path(__file__).parents[1] / "fixtures" / "netmeta"
CASES = ["smokingcessation", "smokingcessation_rr", "senn2013", "woods2010", "woods2010_rd", "stowe2010",
         "stowe2010_smd", "dong2013", "dong2013_rr", "dong2013_rd"]
TOL = 1e-6
TOL_SPLIT = 1e-5


def ref(name):
    return json.loads((FIX / f"{name}.json").read_text())


def close(a, b, tol=TOL):
    if b is None:
        return a is None or (isinstance(a, float) and not math.isfinite(a))
    return a is not None and abs(a - b) <= tol * max(1.0, abs(b))


def run(name, model="random", **kw):
    r = ref(name)
    return r, nma(FIX / r["csv"], r["measure"], r["reference"], common=model == "common", **kw)


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("model", ["common", "random"])
def test_estimates_and_league_match_netmeta(name, model):
    r, res = run(name, model)
    assert list(res.treatments) == r["treatments"]
    assert res.k == r["k"] and res.n_comparisons == r["m"]
    want = {e["treatment"]: e for e in r[model]["estimates"]}
    got = {e["treatment"]: e for e in res.estimates}
    assert set(got) == set(want)
    for t, e in want.items():
        for key in ("estimate", "se", "ci_low", "ci_high") + (("pi_low", "pi_high") if model == "random" else ()):
            assert close(got[t][key], e[key]), (t, key, got[t][key], e[key])
    for a in r["treatments"]:
        for b in r["treatments"]:
            assert close(res.league[a][b], r[model]["league"][a][b]), (a, b)
            assert close(res.league_se[a][b], r[model]["league_se"][a][b]), (a, b)


@pytest.mark.parametrize("name", CASES)
def test_heterogeneity_and_q_decomposition_match_netmeta(name):
    r, res = run(name)
    assert close(res.tau2, r["tau2"])
    assert close(res.I2, r["I2"]) and close(res.I2_low, r["I2_low"]) and close(res.I2_high, r["I2_high"])
    assert close(res.Q, r["Q"]) and res.Q_df == r["Q_df"] and close(res.Q_p, r["Q_p"])
    assert close(res.Q_within, r["Q_within"]) and res.Q_within_df == r["Q_within_df"]
    assert close(res.Q_between, r["Q_between"]) and res.Q_between_df == r["Q_between_df"]
    assert close(res.Q_between_p, r["Q_between_p"])
    dbt, want = res.design_by_treatment, r["design_by_treatment"]
    assert close(dbt["Q"], want["Q"]) and dbt["df"] == want["df"] and close(dbt["p"], want["p"])
    assert close(dbt["tau2_within"], want["tau2_within"])
    per = {frozenset(d["design"].split(":")): d for d in res.designs}  # netmeta orients some labels differently
    for d in r["Q_design"]:
        if d["df"] is None:  # netmeta lists designs it cannot test with NA
            continue
        got = per[frozenset(d["design"].split(":"))]
        assert close(got["Q"], d["Q"]) and got["df"] == d["df"], d


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("model", ["common", "random"])
def test_p_scores_match_netrank_both_directions(name, model):
    r = ref(name)
    low = nma(FIX / r["csv"], r["measure"], r["reference"], common=model == "common")
    high = nma(FIX / r["csv"], r["measure"], r["reference"], common=model == "common", benefit="higher")
    for t in r["treatments"]:
        assert close(low.p_scores[t], r[model]["p_scores"][t]), t
        assert close(high.p_scores[t], r[model]["p_scores_higher"][t]), t
    # P-scores of the two directions are complements. netmeta's rankogram SUCRA (20,000 draws) samples
    # treatments independently with variances fitted to the comparisons' (samples_netmeta), an
    # approximation of the joint distribution: it lands near the exact SUCRA, not on it.
    for t in r["treatments"]:
        assert abs(low.p_scores[t] + high.p_scores[t] - 1) < 1e-12
        assert abs(low.sucra[t] - r[model]["sucra_simulated"][t]) < 0.03, t


@pytest.mark.parametrize("name", ["smokingcessation", "senn2013", "dong2013"])
def test_sucra_is_the_p_score_of_the_joint_normal(name):
    """SUCRA from draws of the joint normal distribution of the estimates (full covariance) equals the
    P-score up to Monte Carlo error (Rücker & Schwarzer 2015): hatmeta reports it computed exactly."""
    import numpy as np

    r, res = run(name)
    g = res.fit.random
    n = len(res.treatments)
    ref_i = res.treatments.index(res.reference)
    keep = [i for i in range(n) if i != ref_i]
    mean = g.te[keep, ref_i]
    Lp = g.Lplus  # cov(x_a - x_r, x_b - x_r) = L+_ab - L+_ar - L+_rb + L+_rr
    cov = (Lp - Lp[:, [ref_i]] - Lp[[ref_i], :] + Lp[ref_i, ref_i])[np.ix_(keep, keep)]
    draws = np.zeros((200_000, n))
    draws[:, keep] = np.random.default_rng(7).multivariate_normal(mean, cov, size=200_000)
    rank = draws.argsort(axis=1).argsort(axis=1) + 1  # 1 = lowest = best (benefit lower)
    sucra = (n - rank.mean(axis=0)) / (n - 1)
    for i, t in enumerate(res.treatments):
        assert abs(sucra[i] - res.sucra[t]) < 0.004, t


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("model", ["common", "random"])
def test_netsplit_matches_netmeta(name, model):
    r, res = run(name, model)
    want = r[model]["netsplit"]
    assert [s["comparison"] for s in res.netsplit] == [s["comparison"] for s in want]
    for got, w in zip(res.netsplit, want):
        assert got["k"] == w["k"], w["comparison"]
        for key in ("prop_direct", "direct", "direct_se", "indirect", "indirect_se", "diff", "diff_se", "z", "p"):
            assert close(got[key], w[key], TOL_SPLIT), (w["comparison"], key, got[key], w[key])


@pytest.mark.parametrize("name", [c for c in CASES if "reml" in ref(c)])
def test_reml_reaches_the_maximum_netmeta_stops_short_of(name):
    r = ref(name)
    comp = pairwise(read_network(FIX / r["csv"]), r["measure"])
    fit = fit_network(comp, r["reference"], method="REML")
    reml = r["reml"]
    _, model = tau2_reml(fit.network, fit.common.w, fit.treatments.index(r["reference"]))
    ll = model.reml_loglik
    # Our likelihood is metafor's up to a constant: the differences between two tau^2 agree.
    assert abs((ll(reml["tau2"]) - ll(reml["tau2_netmeta"])) - (reml["loglik"] - reml["loglik_netmeta"])) < 1e-9
    # The solution is at least as high as netmeta's stopping point and as rma.mv at tight control.
    assert ll(fit.tau2) >= ll(reml["tau2_netmeta"]) - 1e-12
    assert ll(fit.tau2) >= ll(reml["tau2"]) - 1e-12
    assert close(fit.tau2, reml["tau2"])
    res = nma(FIX / r["csv"], r["measure"], r["reference"], method="REML")
    want = {e["treatment"]: e for e in reml["random"]["estimates"]}
    for e in res.estimates:
        for key in ("estimate", "se", "ci_low", "ci_high"):
            assert close(e[key], want[e["treatment"]][key]), (e["treatment"], key)


def test_reml_smokingcessation_is_higher_than_netmeta_stop():
    """The issue's case: netmeta's nlminb stops about 1e-6 short of the REML tau^2 on smokingcessation."""
    r = ref("smokingcessation")
    fit = fit_network(pairwise(read_network(FIX / r["csv"]), "OR"), "A", method="REML")
    _, model = tau2_reml(fit.network, fit.common.w, 0)
    assert 1e-7 < abs(fit.tau2 - r["reml"]["tau2_netmeta"]) < 1e-5
    assert model.reml_loglik(fit.tau2) > model.reml_loglik(r["reml"]["tau2_netmeta"])
    # At the solution the restricted score is zero (to rounding); at netmeta's stop it is not.
    assert abs(model.reml_score(fit.tau2)) < 1e-10 < abs(model.reml_score(r["reml"]["tau2_netmeta"]))


def test_stowe2010_vignette_numbers():
    """netmeta's vignette (Stowe2010, MD, random effects): COMTI -0.95 [-1.27; -0.63] vs placebo,
    tau^2 0.1518, I^2 43.9%, Q 48.15 on 27 df."""
    res = nma(FIX / "stowe2010.csv", "MD", "Placebo")
    comti = next(e for e in res.estimates if e["treatment"] == "COMTI")
    assert (round(comti["estimate"], 2), round(comti["ci_low"], 2), round(comti["ci_high"], 2)) == (-0.95, -1.27, -0.63)
    assert round(res.tau2, 4) == 0.1518
    assert round(res.I2, 1) == 43.9
    assert round(res.Q, 2) == 48.15 and res.Q_df == 27


def test_dong2013_studies_without_events_are_named():
    r, res = run("dong2013")
    dropped = dict(res.dropped)
    assert set(dropped) == {"id 5", "id 25"}  # two-arm studies without events in both arms (netmeta drops them too)
    assert "no events in both arms" in dropped["id 5"]
    out = res.to_dict()
    assert {d["study"] for d in out["dropped"]} == {"id 5", "id 25"}
    assert any("id 5" in n for n in out["notes"]) and any("added to every cell" in n for n in out["notes"])
    # Participants per treatment count the studies analysed only; the increment note names none left out.
    import csv

    rows = list(csv.DictReader(open(FIX / r["csv"])))
    want: dict = {}
    for row in rows:
        if row["study"] not in ("id 5", "id 25"):
            want[row["treatment"]] = want.get(row["treatment"], 0) + int(row["n"])
    assert res.participants == want
    increment = next(n for n in out["notes"] if "added to every cell" in n)
    assert "id 5," not in increment and "id 25" not in increment


def test_dong2013_multiarm_study_with_two_empty_arms_is_refused_like_netmeta():
    with pytest.raises(InputError) as exc:
        nma(FIX / "dong2013.csv", "OR", "Placebo")
    msg = str(exc.value)
    assert "dong2013.csv:68" in msg and "'id 33'" in msg and "column 'events'" in msg


def test_disconnected_network_names_its_parts():
    data = {"study": ["s1", "s1", "s2", "s2"], "treatment": ["A", "B", "C", "D"],
            "events": [3, 5, 2, 4], "n": [20, 20, 20, 20]}
    with pytest.raises(InputError) as exc:
        nma(data, "OR", "A")
    assert "{A, B}" in str(exc.value) and "{C, D}" in str(exc.value)


@pytest.mark.parametrize("text, where", [
    ("study,treatment,events,n\ns1,A,3,20\ns1,B,x,20\n", ":3: column 'events': not a number"),
    ("study,treatment,events,n\ns1,A,3,20\ns1,B,NA,20\n", ":3: column 'events': missing value (NA): every row"),
    ("study,treatment,events,n\ns1,A,3,20\ns1,B,30,20\n", ":3: column 'events': events (30) exceed n (20)"),
    ("study,treatment,events,n\ns1,A,3,20\ns1,A,4,20\n", ":3: column 'treatment': study 's1' has treatment 'A' twice"),
    ("study,treatment,events,n\ns1,A,3,20\ns2,B,4,20\ns2,A,4,20\n", ":2: column 'treatment': study 's1' has one arm"),
    ("study,treatment,n\ns1,A,20\n", ":1: column 'events': missing column(s) events"),
    ("study,treat1,treat2,yi,se\ns1,A,B,0.1,0.2\ns1,A,C,0.2,0.2\n", ":2: column 'treat1': study 's1' has 2"),
    ("study,treat1,treat2,yi,se\ns1,A,B,0.1,0.2\ns1,A,C,0.2,0.2\ns1,B,C,0.5,0.2\n", "column 'yi': the effects of"),
    ("study,treatment,mean,sd,n\ns1,A,1,0,20\ns1,B,2,1,20\n", ":2: column 'sd': must be greater than 0"),
])
def test_bad_input_is_one_line_with_line_and_column(tmp_path, text, where):
    f = tmp_path / "net.csv"
    f.write_text(text)
    measure = "MD" if "mean" in text else ("GEN" if "yi" in text else "OR")
    with pytest.raises(InputError) as exc:
        nma(f, measure, "A")
    assert where in str(exc.value) and "\n" not in str(exc.value)


def test_r_csv_with_quoted_names_and_commas(tmp_path):
    f = tmp_path / "net.csv"
    f.write_text('"study","treatment","events","n"\n"Smith, 2001","drug, high dose",3,20\n'
                 '"Smith, 2001","placebo",5,20\n'
                 '"Jones","drug, high dose",4,30\n"Jones","placebo",9,31\n')
    res = nma(f, "OR", "placebo")
    assert res.treatments == ("drug, high dose", "placebo") and res.studies == ("Smith, 2001", "Jones")


def test_measure_must_fit_the_layout():
    with pytest.raises(InputError, match="option '--measure'"):
        nma(FIX / "stowe2010.csv", "OR", "Placebo")


def test_result_python_surface():
    r, res = run("smokingcessation")
    d = res.to_dict()
    for key in ("treatments", "reference", "model", "estimates", "tau2", "I2", "Q", "Q_df", "Q_within", "Q_between",
                "p_scores", "league", "netsplit"):
        assert key in d
    assert d["model"] == "random" and d["reference"] == "A"
    assert set(d["estimates"][0]) >= {"treatment", "estimate", "se", "ci_low", "ci_high"}
    assert set(d["netsplit"][0]) >= {"comparison", "direct", "indirect", "p"}
    frame = res.to_frame()
    assert list(frame["treatment"]) == ["A", "B", "C", "D"]
    assert math.isclose(frame.set_index("treatment").loc["D", "estimate_natural"], math.exp(d["league"]["D"]["A"]))
    league = res.league_frame().set_index(["row", "column"])
    assert len(league) == 12 and math.isclose(league.loc[("B", "C"), "estimate"], d["league"]["B"]["C"])
    text = res.summary()
    assert "ROW treatment versus the COLUMN treatment" in text and "row vs column" in text
    assert "OR below 1 favours the row treatment" in text
    assert "<table>" in res._repr_html_() and "row vs column" in res._repr_html_()


def test_json_is_reproducible_and_rounded():
    from hatmeta.precision import dumps

    a = dumps(nma(FIX / "senn2013.csv", "MD", "plac").to_dict())
    b = dumps(nma(FIX / "senn2013.csv", "MD", "plac").to_dict())
    assert a == b
    assert json.loads(a)["tau2"] == float(format(ref("senn2013")["tau2"], ".10g"))


def test_cli_smokingcessation_json_matches_netmeta(capsys):
    from hatmeta.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["nma", "--data", str(FIX / "smokingcessation.csv"), "--measure", "OR", "--reference", "A",
              "--format", "json"])
    assert exc.value.code == 0
    out = json.loads(capsys.readouterr().out)
    r = ref("smokingcessation")
    for e in out["estimates"]:
        w = next(x for x in r["random"]["estimates"] if x["treatment"] == e["treatment"])
        assert close(e["estimate"], w["estimate"]) and close(e["se"], w["se"])
    assert close(out["tau2"], r["tau2"]) and close(out["Q_within"], r["Q_within"])
    assert close(out["Q_between"], r["Q_between"])
    for t, p in r["random"]["p_scores"].items():
        assert close(out["p_scores"][t], p)


def test_cli_bad_reference_exits_2(capsys):
    from hatmeta.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["nma", "--data", str(FIX / "smokingcessation.csv"), "--measure", "OR", "--reference", "Z"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "option '--reference'" in err and "A, B, C, D" in err


def test_network_graph_draws_every_comparison_with_width_by_studies():
    from hatmeta.render.plots.network import network_graph

    res = nma(FIX / "dong2013_fit.csv", "OR", "Placebo")
    fig = network_graph(res)
    ax = fig.axes[0]
    edges = {ln.get_gid(): ln.get_linewidth() for ln in ax.lines if (ln.get_gid() or "").startswith("edge ")}
    assert len(edges) == len(res.comparisons)
    k = {f"edge {c['treat1']} vs {c['treat2']}": c["studies"] for c in res.comparisons}
    most, fewest = max(k, key=k.get), min(k, key=k.get)
    assert edges[most] > edges[fewest]
    sizes = ax.collections[0].get_sizes()
    trts = list(res.treatments)
    assert sizes[trts.index("Placebo")] == sizes.max()  # most participants
    assert any(t.get_text() == str(k[most]) for t in ax.texts)


def test_network_forest_one_row_per_treatment_on_log_axis():
    from hatmeta.render.plots.network import network_forest

    res = nma(FIX / "smokingcessation.csv", "OR", "A")
    ax = network_forest(res).axes[0]
    assert ax.get_xscale() == "log"
    assert sorted(t.get_text() for t in ax.get_yticklabels()) == ["B", "C", "D"]


def test_reml_contrast_level_multiarm_uses_the_models_covariance():
    """Senn2013 (contrast-level, one three-arm study): REML agrees with rma.mv given the multi-arm
    covariance the graph-theoretical model uses; netmeta's own REML call gives those contrasts a
    diagonal V, and its tau^2 has the lower likelihood under the model that is fitted."""
    r = ref("senn2013_reml")
    fit = fit_network(pairwise(read_network(FIX / r["csv"]), "MD"), "plac", method="REML")
    _, model = tau2_reml(fit.network, fit.common.w, fit.treatments.index("plac"))
    assert close(fit.tau2, r["tau2"])
    assert abs(fit.tau2 - r["tau2_netmeta"]) > 1e-4
    assert model.reml_loglik(fit.tau2) >= model.reml_loglik(r["tau2"]) - 1e-12
    assert model.reml_loglik(fit.tau2) > model.reml_loglik(r["tau2_netmeta"]) + 1e-4
    res = nma(FIX / r["csv"], "MD", "plac", method="REML")
    want = {e["treatment"]: e for e in r["random"]["estimates"]}
    for e in res.estimates:
        assert close(e["estimate"], want[e["treatment"]]["estimate"]) and close(e["se"], want[e["treatment"]]["se"])


def test_multiarm_weights_equal_the_arm_level_covariance():
    """For a study whose comparison variances come from arm variances a_i (v_ij = a_i + a_j), netmeta's
    multiarm() weights are the exact GLS weights: w_ij = a_k / (a_1 a_2 + a_1 a_3 + a_2 a_3) for three arms."""
    import numpy as np

    from hatmeta.fit.network import multiarm_weights

    a = np.array([0.3, 0.5, 0.9])
    i, j = np.array([0, 0, 1]), np.array([1, 2, 2])
    w = multiarm_weights(a[i] + a[j], i, j, 3)
    s = a[0] * a[1] + a[0] * a[2] + a[1] * a[2]
    assert np.allclose(w, [a[2] / s, a[1] / s, a[0] / s], rtol=1e-13)


def test_small_negative_multiarm_weights_are_zeroed_and_named():
    # Four arms whose comparison variances are far from any set of arm variances: netmeta's multiarm()
    # gives one edge a tiny negative weight and sets it to 0; hatmeta does the same and says so.
    import numpy as np

    from hatmeta.fit.network import multiarm_weights

    i, j = np.array([0, 0, 0, 1, 1, 2]), np.array([1, 2, 3, 2, 3, 3])
    r = np.array([0.2, 0.2, 0.2, 0.2, 0.2, 0.4002])
    hit = []
    w = multiarm_weights(r, i, j, 4, zeroed=hit)
    raw = multiarm_weights(r, i, j, 4, zero_small=False)
    assert raw[0] < 0 and w[0] == 0 and hit == [1]  # -0.005 of a total of ~25: under 0.1%, set to 0
    assert w[5] == raw[5] < 0  # a large negative weight is kept, as netmeta keeps it
    pairs = ["AB", "AC", "AD", "BC", "BD", "CD"]
    data = {"study": ["four"] * 6 + ["two"], "treat1": [p[0] for p in pairs] + ["A"],
            "treat2": [p[1] for p in pairs] + ["B"], "yi": [0.0] * 6 + [0.1], "se": list(np.sqrt(r)) + [0.3]}
    res = nma(data, "GEN", "A")
    assert any("set to 0" in n and "four" in n for n in res.notes)


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("model", ["common", "random"])
def test_comparison_adjusted_funnel_data_match_netmeta(name, model):
    from hatmeta.methods.network import comparison_adjusted

    r, res = run(name, model)
    rows = comparison_adjusted(res.fit, list(reversed(res.treatments)), model)
    want = r["funnel"][model]
    assert ([(x["study"], x["treat1"], x["treat2"]) for x in rows]
            == [(x["study"], x["treat1"], x["treat2"]) for x in want])
    for got, w in zip(rows, want):
        for key in ("te", "te_direct", "te_adj", "se"):
            assert close(got[key], w[key]), (w["study"], key)


def test_comparison_adjusted_funnel_plot_and_order_check():
    from hatmeta.render.plots.network import comparison_adjusted_funnel

    res = nma(FIX / "smokingcessation.csv", "OR", "A")
    ax = comparison_adjusted_funnel(res, ["D", "C", "B", "A"]).axes[0]
    points = [ln for ln in ax.lines if (ln.get_gid() or "").startswith("comparison ")]
    assert sum(len(ln.get_xdata()) for ln in points) == res.n_comparisons
    with pytest.raises(InputError, match="every treatment once"):
        comparison_adjusted_funnel(res, ["D", "C", "B"])


@pytest.mark.parametrize("model", ["common", "random"])
def test_league_direct_is_netmeta_direct_estimate(model):
    # netsplit's direct estimate, where netmeta reports one, is the direct league cell (row vs column).
    r, res = run("smokingcessation", model)
    for s in r[model]["netsplit"]:
        a, b = s["comparison"].split(":")
        if s["k"] == 0:
            assert res.league_direct[a][b] is None
        elif s["direct"] is not None:
            assert close(res.league_direct[a][b], s["direct"]) and close(res.league_direct[b][a], -s["direct"])


@pytest.mark.parametrize("method", ["DL", "REML"])
def test_two_treatment_network_is_the_pairwise_meta_analysis(method):
    """With two treatments and two-arm studies the network model is the pairwise random-effects model:
    the same estimate, SE and tau^2 as hatmeta's (metafor-validated) rma on the same studies."""
    import csv

    import hatmeta

    rows = [r for r in csv.DictReader(open(FIX / "dong2013.csv"))]
    by: dict = {}
    for r in rows:
        by.setdefault(r["study"], {})[r["treatment"]] = (int(r["events"]), int(r["n"]))
    keep = {s: a for s, a in by.items() if set(a) == {"TIO-HH", "Placebo"}}
    arms = {"study": [], "treatment": [], "events": [], "n": []}
    pairs = {"study": [], "events_treat": [], "n_treat": [], "events_ctrl": [], "n_ctrl": []}
    for s, a in keep.items():
        for t in ("TIO-HH", "Placebo"):
            arms["study"].append(s)
            arms["treatment"].append(t)
            arms["events"].append(a[t][0])
            arms["n"].append(a[t][1])
        pairs["study"].append(s)
        pairs["events_treat"].append(a["TIO-HH"][0])
        pairs["n_treat"].append(a["TIO-HH"][1])
        pairs["events_ctrl"].append(a["Placebo"][0])
        pairs["n_ctrl"].append(a["Placebo"][1])
    net = nma(arms, "OR", "Placebo", method=method)
    pw = hatmeta.rma(hatmeta.escalc(pairs, "OR"), method=method)
    e = net.estimates[0]
    assert abs(e["estimate"] - pw.estimate) < 1e-9 and abs(e["se"] - pw.se) < 1e-9
    assert abs(net.tau2 - pw.tau2) < 1e-9 and abs(net.Q - pw.q) < 1e-9
    assert {s for s, _ in net.dropped} == {s for s, _ in hatmeta.escalc(pairs, "OR").dropped}


def test_row_order_and_reference_do_not_change_the_network():
    import random

    r = ref("smokingcessation")
    rows = list(open(FIX / r["csv"]).read().splitlines())
    head, body = rows[0], rows[1:]
    random.Random(3).shuffle(body)
    data_a = nma(FIX / r["csv"], "OR", "A")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "shuffled.csv"
        f.write_text("\n".join([head] + body) + "\n")
        data_b = nma(f, "OR", "C")
    for a in data_a.treatments:
        for b in data_a.treatments:
            assert abs(data_a.league[a][b] - data_b.league[a][b]) < 1e-12
            assert abs(data_a.league_se[a][b] - data_b.league_se[a][b]) < 1e-12
    assert abs(data_a.tau2 - data_b.tau2) < 1e-12 and abs(data_a.Q_between - data_b.Q_between) < 1e-9
    assert data_a.p_scores == pytest.approx(data_b.p_scores, abs=1e-12)
