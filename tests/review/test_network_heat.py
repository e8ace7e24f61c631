"""The HAT retention network's page and the net heat plot: netheat draws none for it (only the
heroin-vs-oral-methadone design can be detached: NAOMI's and RIOTT's designs are the only sources of
hydromorphone and injectable methadone), so the page says so, with each design's share of Q."""


def test_the_hat_network_page_says_why_it_has_no_net_heat_plot(tmp_path):
    from hatmeta.review.network import pool_network
    from hatmeta.review.network_heat import heat_section

    res, _ = pool_network("retention-network")
    drawn: list = []
    html = heat_section(res, tmp_path, "retention-network", lambda *a: drawn.append(a), lambda p: "<svg/>", [])
    assert res.Q_between_df > 0  # there is inconsistency between designs ...
    assert not drawn and "No net heat plot: fewer than two designs can be shown" in html  # ... but nothing to draw
    assert "oral methadone:injectable hydromorphone:supervised injected heroin" in html
    assert "splits the network" in html and "Q_r = " in html


def test_a_network_with_a_heat_plot_gets_the_figure_on_its_page(tmp_path):
    from pathlib import Path

    from hatmeta.methods.network import nma
    from hatmeta.review.network_heat import heat_section

    fix = Path(__file__).parents[1] / "fixtures" / "netmeta"
    res = nma(fix / "smokingcessation.csv", "OR", reference="A")
    drawn: list = []
    html = heat_section(res, tmp_path, "smoking", lambda fig, out, stem, files: drawn.append(stem),
                        lambda p: f"<svg src='{p.name}'/>", [])
    assert drawn == ["smoking-heat"] and "smoking-heat.svg" in html and "No net heat plot" not in html
