"""The net heat plot's result, text, figure and command (hatmeta.methods.netheat; the numbers are
checked against netmeta in tests/validation/test_netmeta_netheat.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hatmeta.methods.netheat import _hclust_complete, netheat
from hatmeta.methods.network import nma

FIX = Path(__file__).parents[1] / "fixtures" / "netmeta"
ROOT = Path(__file__).parents[2]


def smoking(common=False):
    return nma(FIX / "smokingcessation.csv", "OR", reference="A", common=common)


def test_complete_linkage_heights_are_scipys_on_distinct_distances():
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import squareform

    rng = np.random.default_rng(20261207)
    for n in (2, 3, 7, 12):
        pts = rng.normal(size=(n, 3))
        D = np.abs(pts[:, None, :] - pts[None, :, :]).sum(axis=2)
        merge, order = _hclust_complete(D)
        ref = linkage(squareform(D, checks=False), method="complete")
        heights = []
        members = {-(i + 1): [i] for i in range(n)}
        for step, (a, b) in enumerate(merge, start=1):
            ma, mb = members[a], members[b]
            heights.append(max(D[i, j] for i in ma for j in mb))
            members[step] = ma + mb
        assert heights == pytest.approx(sorted(ref[:, 2]))
        assert sorted(order) == list(range(n))


def test_the_model_reported_decides_the_heat_plot_and_random_uses_the_full_models_tau2():
    from hatmeta.methods.network import decomp_design

    rnd, com = netheat(smoking()), netheat(smoking(common=True))
    assert rnd.model == "random" and com.model == "common" and com.tau2 == 0
    assert rnd.tau2 == pytest.approx(decomp_design(smoking().fit)["design_by_treatment"]["tau2_within"])
    assert rnd.tau2 != pytest.approx(smoking().tau2)  # not the consistency model's tau^2
    given = netheat(smoking(), tau2=0.25)
    assert given.tau2 == 0.25 and given.tau2_source == "given"
    assert not np.allclose(given.heat, rnd.heat)


def test_result_contract_json_frame_text_and_html():
    h = netheat(smoking())
    d = json.loads(json.dumps(h.to_dict()))
    assert d["available"] and d["order"] == list(h.labels)
    assert set(d["heat"]) == set(h.labels) and set(d["heat"][h.labels[0]]) == set(h.labels)
    diag = [d["heat"][lab][lab] for lab in h.labels]
    q = {r["label"]: r["q_inc"] for r in d["rows"]}
    assert diag == pytest.approx([q[lab] for lab in h.labels], abs=1e-9)  # the diagonal: own share
    f = h.to_frame()
    assert len(f) == len(h.labels) ** 2 and list(f.columns) == ["row", "column", "heat", "contribution"]
    text = h.summary()
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "Rows and columns, in the plot's order" in text and "A:D_A:C:D" in text
    assert "<pre>" in h._repr_html_()
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        h.model = "x"  # type: ignore[misc]  # frozen


def test_a_network_without_a_heat_plot_says_why_in_text_and_json():
    res = nma(FIX / "heat_hatlike.csv", "OR", reference="A")
    h = netheat(res)
    assert not h.available and "fewer than two designs" in h.reason
    left = [r for r in h.rows if not r["shown"]]
    assert {r["design"] for r in left} == {"A:B:C", "A:B:D"} and all("splits the network" in r["reason"] for r in left)
    assert "No net heat plot" in h.summary() and h.to_dict()["reason"] == h.reason
    assert all(len(line) <= 80 for line in h.summary().splitlines())
    star = netheat(nma(FIX / "heat_star.csv", "OR", reference="A"))
    assert not star.available and "no loop" in star.reason


def test_the_figure_draws_a_cell_per_pair_in_netheats_order(tmp_path):
    from hatmeta.render.plots import save
    from hatmeta.render.plots.netheat import netheat_plot

    h = netheat(smoking())
    fig = netheat_plot(h)
    cells = [p.get_gid() for p in fig.axes[0].patches if p.get_gid()]
    assert len(cells) == len(h.labels) ** 2 and cells[0] == f"cell {h.labels[0]} | {h.labels[0]}"
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == list(h.labels)
    a, b = save(fig, tmp_path / "a.png"), save(netheat_plot(h), tmp_path / "b.png")
    assert a.read_bytes() == b.read_bytes()  # reproducible
    from hatmeta.errors import InputError

    with pytest.raises(InputError, match="no net heat plot"):
        netheat_plot(netheat(nma(FIX / "heat_hatlike.csv", "OR", reference="A")))


def test_hatmeta_nma_heat_writes_the_plot_or_refuses_in_one_line(tmp_path):
    out = tmp_path / "heat.png"
    p = subprocess.run([sys.executable, "-m", "hatmeta.cli", "nma", "--data", str(FIX / "senn2013.csv"), "--measure",
                        "MD", "--reference", "plac", "--common", "--heat", str(out)], cwd=ROOT, capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "left out plac:benf, plac:migl, plac:sita, plac:vild" in p.stderr  # named, not silent
    bad = subprocess.run([sys.executable, "-m", "hatmeta.cli", "nma", "--data", str(FIX / "heat_hatlike.csv"),
                          "--measure", "OR", "--reference", "A", "--heat", str(tmp_path / "x.png")], cwd=ROOT,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stdout == "" and bad.stderr.count("\n") == 1
    assert "--heat" in bad.stderr and "fewer than two designs" in bad.stderr
    assert not (tmp_path / "x.png").exists()
