"""Text says what is drawn and found, not what is not: no 'Notes (0; ...)' header over nothing, a funnel
caption that names Egger's line only where it is drawn, and a trim-and-fill that fills nothing says so."""

import pytest

from hatmeta.api import pool_table
from hatmeta.io.trial_table import table_from_rows

SPARSE = [["study", "events_treat", "n_treat", "events_ctrl", "n_ctrl"], ["a", "1", "100", "3", "100"],
          ["b", "1", "50", "2", "50"], ["c", "2", "120", "4", "110"], ["d", "1", "90", "1", "95"]]
# Trim-and-fill (L0) finds nothing to fill here (k0 = 0): a draw from a symmetric funnel.
SYMMETRIC = [("-0.1617", "0.0673"), ("0.0077", "0.0343"), ("-0.2720", "0.0137"), ("-0.0235", "0.0115"),
             ("-0.3594", "0.0832"), ("-0.2223", "0.0921"), ("-0.1383", "0.0646"), ("-0.0870", "0.0757"),
             ("0.0999", "0.0589"), ("0.3199", "0.0942")]


@pytest.mark.parametrize("verbose", [False, True])
def test_no_notes_header_when_the_sparse_advice_was_the_only_note(verbose):
    res = pool_table(table_from_rows(SPARSE), "RR", method="MH")
    assert len(res.notes) == 1 and res.notes[0].startswith("sparse data")  # shown whole in its own block
    from hatmeta.summary import format_result

    text = format_result(res, verbose=verbose)
    assert "Notes (" not in text
    assert "Suited: MH" in text  # the advice, shown whole in its own block


def test_the_funnel_caption_names_eggers_line_only_when_it_is_drawn():
    from hatmeta.render.plots.funnel import MIN_K_LINE
    from hatmeta.review.report import funnel_caption

    assert "with Egger's regression line" in funnel_caption(MIN_K_LINE)
    few = funnel_caption(3)
    assert "with Egger's regression line" not in few and "not drawn" in few


def test_a_trim_and_fill_that_fills_nothing_says_so_on_the_funnel():
    import matplotlib.pyplot as plt

    from hatmeta.render.plots import funnel

    rows = [["study", "yi", "vi"]] + [[f"s{i}", y, v] for i, (y, v) in enumerate(SYMMETRIC)]
    res = pool_table(table_from_rows(rows), "GEN", trim_fill=True)
    filled = res.extra["trim_fill"]
    assert filled.k0 == 0
    fig = funnel(res, filled=filled)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("no studies filled" in t for t in legend), legend
    plt.close(fig)


def test_funnel_trim_fill_on_the_command_line_says_it_filled_nothing(tmp_path):
    from click.testing import CliRunner

    from hatmeta.cli import cli

    data = tmp_path / "symmetric.csv"
    data.write_text("study,yi,vi\n" + "".join(f"s{i},{y},{v}\n" for i, (y, v) in enumerate(SYMMETRIC)))
    out = CliRunner().invoke(cli, ["funnel", "--data", str(data), "--measure", "GEN", "--trim-fill",
                                    "--out", str(tmp_path / "f.png")])
    assert out.exit_code == 0, out.output
    assert "filled no studies" in out.output
