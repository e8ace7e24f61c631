"""--by CSV written column-wise (render/batch_csv.py) is byte for byte the row-by-row ``to_csv``."""

import numpy as np
import pytest

from hatmeta.fit.batch import pool_groups
from hatmeta.io.trial_table import table_from_rows
from hatmeta.render import batch_csv as bc
from hatmeta.render.batch_csv import to_csv


def _rows(seed=7):
    rng = np.random.default_rng(seed)
    keys = ["a", "b,c", 'q"uote', "one", "d", "e", "tiny", "huge", "f"]
    sizes = [3, 4, 2, 1, 6, 5, 4, 3, 7]  # "one": too small for REML (NaN, a note), pooled row kept
    rows = [["study", "yi", "vi", "group"]]
    for key, k in zip(keys, sizes):
        for i in range(k):
            y, v = rng.normal(0.2, 0.5), rng.uniform(0.01, 0.5)
            if key == "tiny":  # written with an exponent by repr ("1e-05"), not by orjson
                y, v = y * 1e-6, v * 1e-10
            if key == "huge":
                y, v = y * 1e17, v * 1e30
            rows.append([f"s{i + 1}" if key != "f" else f"s,{i}", repr(y), repr(v), key])
    return rows


@pytest.mark.parametrize("method, ci", [("REML", "wald"), ("DL", "hksj"), ("FE", "wald")])
def test_batch_csv_is_the_row_by_row_csv(method, ci, monkeypatch):
    table = table_from_rows(_rows(), measure="GEN")
    res = pool_groups(table, "group", "GEN", method=method, ci=ci, failed={"e": "t.csv:9: column 'vi': bad"})
    want = to_csv(list(res))  # a list of MetaResult: the row-by-row writer
    assert "1e-" in want and '"b,c"' in want and '"q""uote"' in want and ",,," in want
    assert bc.batch_csv(res) == want
    monkeypatch.setattr(bc, "CHUNK", 2)  # blocks that end inside the run of groups
    assert "".join(bc.batch_csv_chunks(res)) == want
    assert to_csv(res) == want
    assert "".join(bc.batch_csv_chunks(res, header=False)) == want.split("\n", 1)[1]


def test_batch_csv_of_mantel_haenszel_groups():
    rows = [["study", "events_treat", "n_treat", "events_ctrl", "n_ctrl", "g"]]
    rng = np.random.default_rng(3)
    for j in range(6):
        for i in range(4):
            n1, n2 = rng.integers(20, 80, 2)
            rows.append([f"s{i}", str(rng.integers(0, 10)), str(n1), str(rng.integers(0, 10)), str(n2), f"g{j}"])
    res = pool_groups(table_from_rows(rows, measure="OR"), "g", "OR", method="MH")
    assert bc.batch_csv(res) == to_csv(list(res))


def test_cells_follow_the_output_policy():
    from hatmeta.render.batch_csv import _c

    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0, 1, 2000), rng.lognormal(0, 12, 2000) * rng.choice([-1, 1], 2000),
                        [0.0, -0.0, 1e-4, 9.99999999999e-5, 1e16, 9.9999999999e15, np.nan, np.inf, -np.inf, 5e-324]])
    assert bc._cells(x).tolist() == [_c(v) for v in x.tolist()]
