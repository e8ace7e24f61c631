"""TSA: RTSA's default Mantel-Haenszel weights (--weights MH) at the looks where tau^2 = 0, and a
text and plot that name the models, the trials and the arms as `hatmeta pool` does (issue 26, item 11).
Agreement of every number with RTSA 0.2.2, MH cases included, is in tests/validation/test_rtsa.py."""

import json
from typing import Any, ClassVar

import pytest

from hatmeta.cli import main
from hatmeta.errors import InputError

from .test_rtsa import CASES, _run

MH_CASES = [c for c in CASES if c.get("weights") == "MH"]


def _case(name):
    return next(c for c in CASES if c["name"] == name)


def test_fixtures_have_mh_cases_that_differ_from_iv_where_tau2_is_zero():
    # the MH cases must test something: RTSA's MH z differs from the IV one where tau^2 = 0
    # (magnesium: by 0.67 at the 13th trial, the figure in issue 26)
    names = {c["name"] for c in MH_CASES}
    assert {"magnesium_MH", "magnesium_OR_MH", "bcg_OR_MH", "perioOxy_MH", "coronary_MH"} <= names
    for name, least in (("magnesium", 0.6), ("bcg_OR", 0.05), ("coronary", 0.01), ("sim20_futility", 0.01)):
        iv, mh = _case(name), _case(name + "_MH")
        gap = max(abs(a - b) for a, b in zip(iv["z_random"], mh["z_random"]))
        assert gap > least, name


@pytest.mark.parametrize("name", ["magnesium", "bcg_OR", "coronary", "sim20_futility"])
def test_mh_weights_give_rtsas_default_z_and_iv_stays_the_default(name, write_csv):
    iv, mh = _case(name), _case(name + "_MH")
    default = _run(iv, write_csv)  # the case's weights: IV, the default
    assert default.weights == "IV"
    assert [t.z for t in default.trials] == pytest.approx(iv["z_random"], rel=1e-7)
    res = _run(mh, write_csv)
    assert res.weights == "MH" and res.to_dict()["weights"] == "MH"
    assert [t.z for t in res.trials] == pytest.approx(mh["z_random"], rel=1e-7)
    # where RTSA's random-effects z is its MH fixed-effect z (tau^2 = 0), hatmeta's is too
    same = [i for i, (zr, zf) in enumerate(zip(mh["z_random"], mh["z_fixed"])) if zr == zf]
    assert len(same) >= 2
    assert [res.trials[i].z for i in same] == pytest.approx([mh["z_fixed"][i] for i in same], rel=1e-7)


def test_mh_weights_on_a_mean_difference_fall_back_to_iv_and_say_so(write_csv):
    case = _case("eds_md_MH")
    res = _run(case, write_csv)
    assert res.weights == "IV"
    assert any("Mantel-Haenszel weights are for binary outcomes" in n for n in res.notes)
    assert [t.z for t in res.trials] == pytest.approx(case["z_random"], rel=1e-7)


def _csv(case, write_csv):
    return write_csv([["study", "events_treat", "n_treat", "events_ctrl", "n_ctrl"]]
                     + [[r["study"], r["eI"], r["nI"], r["eC"], r["nC"]] for r in case["data"]])


def _cli(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_cli_weights_option_and_bad_value(capsys, write_csv):
    case = _case("magnesium_MH")
    path = _csv(case, write_csv)
    args = ["tsa", "--data", str(path), "--measure", "RR", "--rrr", "0.2", "--format", "json"]
    code, out, _ = _cli(args + ["--weights", "MH"], capsys)
    assert code == 0
    got = json.loads(out)["tsa"]
    assert got["weights"] == "MH"
    assert [t["z"] for t in got["trials"]] == pytest.approx(case["z_random"], rel=1e-7)
    code, out, _ = _cli(args, capsys)
    assert json.loads(out)["tsa"]["weights"] == "IV"
    code, _, err = _cli(args + ["--weights", "XX"], capsys)
    assert code == 2 and "--weights" in err


def test_spec_key_weights(tmp_path):
    from hatmeta.methods.tsa import merge_settings
    from hatmeta.review.api import spec_settings

    class Spec:
        raw: ClassVar[dict[str, Any]] = {"tsa": {"rri": 0.2, "weights": "MH"}}
        path = tmp_path / "x.toml"

    settings = spec_settings(Spec)
    assert settings["weights"] == "MH"
    assert merge_settings(settings, {"weights": "IV"}, "higher", "RR")["weights"] == "IV"
    Spec.raw = {"tsa": {"rri": 0.2, "weights": "GLS"}}
    with pytest.raises(InputError) as e:
        spec_settings(Spec)
    assert e.value.column == "tsa.weights" and "IV or MH" in e.value.message


def test_json_keys_are_kept_and_added(capsys):
    code, out, _ = _cli(["tsa", "retention", "--format", "json"], capsys)
    got = json.loads(out)["tsa"]
    old = {"measure", "scale", "method", "benefit", "sides", "alpha", "beta", "power", "spending", "inflate",
           "anticipated_effect", "control_risk", "control_risk_source", "sd", "diversity", "diversity_source",
           "required_information_size_fixed", "required_information_size", "inflation_factor",
           "required_information_size_inflated", "accrued_information", "trials", "estimate", "se", "tau2",
           "ci_low", "ci_high", "adjusted_ci_low", "adjusted_ci_high", "conclusion", "crossed_at", "more_needed",
           "sentence", "final_boundary", "futility", "notes"}
    assert old <= set(got)
    assert {"weights", "arms", "study_labels", "pool_model"} <= set(got)
    assert got["arms"] == ["HAT", "methadone"]
    # ids stay ids in JSON (crossed_at, trials' study); the labels are beside them
    assert got["crossed_at"] == "haasen2007" and got["study_labels"]["haasen2007"] == "Haasen 2007 (Germany)"


def test_text_says_why_the_pooled_estimate_differs_from_pool(capsys):
    code, out, _ = _cli(["tsa", "retention"], capsys)
    assert code == 0
    flat = " ".join(out.split())
    assert "The TSA pools by DerSimonian-Laird random effects with a Wald (normal) CI, as the TSA program" in flat
    assert "hatmeta pool uses REML random effects with a Hartung-Knapp-Sidik-Jonkman (t) CI" in flat
    assert "so its estimate and CI differ" in flat
    code, out, _ = _cli(["tsa", "retention", "--weights", "MH"], capsys)
    assert "Mantel-Haenszel where tau2 = 0" in " ".join(out.split())


def test_text_for_data_names_pools_default_model(capsys, write_csv):
    path = _csv(_case("perioOxy"), write_csv)
    code, out, _ = _cli(["tsa", "--data", str(path), "--measure", "RR", "--rrr", "0.2"], capsys)
    flat = " ".join(out.split())
    assert code == 0 and "hatmeta pool uses REML random effects with a Wald (normal) CI by default" in flat
    assert "lower values favour experimental (vs control)" in out and "intervention" not in out


def test_text_names_trials_as_pool_does(capsys):
    code, out, _ = _cli(["tsa", "retention"], capsys)
    _, pooled, _ = _cli(["pool", "retention", "-v"], capsys)
    assert "omitted Hartnoll 1980 (UK)" in out and "hartnoll1980" not in out
    assert "Hartnoll 1980 (UK)" in pooled
    for trial in ("Haasen 2007 (Germany)", "Oviedo-Joekes 2009 (Canada)", "Strang 2010 (UK)"):
        assert trial in out and trial in pooled
    for tid in ("haasen2007", "naomi2009", "riott2010"):
        assert tid not in out
    assert "higher values favour HAT (vs methadone)" in out


def _favours(fig):
    return sorted(t.get_text() for t in fig.axes[0].texts if t.get_text().startswith("favours"))


def test_plot_names_the_arms_from_the_spec_and_neutral_ones_for_data(write_csv):
    from hatmeta.render.plots.tsa import tsa_plot
    from hatmeta.review.api import tsa_analysis

    res, _, _ = tsa_analysis("retention")
    assert _favours(tsa_plot(res)) == ["favours HAT", "favours methadone"]
    data = _run(_case("perioOxy"), write_csv)
    assert _favours(tsa_plot(data)) == ["favours control", "favours experimental"]


def test_cli_plot_svg_names_the_arms(tmp_path, capsys):
    svg = tmp_path / "t.svg"
    code, _, _ = _cli(["tsa", "retention", "--plot", str(svg)], capsys)
    text = svg.read_text()
    assert code == 0 and "intervention" not in text
    assert "favours HAT" in text and "favours methadone" in text
