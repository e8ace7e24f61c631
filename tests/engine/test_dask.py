"""`--by` on a Dask LocalCluster (2 workers) gives the in-memory numbers; a bad row fails its group."""

import numpy as np
import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")

from hatmeta.api import pool_by  # noqa: E402
from hatmeta.io.trial_table import table_from_frame  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as lc, distributed.Client(lc) as client:
        yield client


def _rows(groups=400, k=6, seed=4):
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.01, 0.5, groups * k)
    return pd.DataFrame({"group": [f"g{i // k}" for i in range(groups * k)],
                         "study": [f"s{i % k}" for i in range(groups * k)],
                         "yi": rng.normal(0.2, np.sqrt(v + 0.05)), "vi": v})


def test_dask_partitions_give_the_in_memory_numbers(cluster):
    pdf = _rows()
    got = pool_by(dd.from_pandas(pdf, npartitions=5), "group", "GEN", method="REML", ci="hksj").compute()
    want = pool_by(table_from_frame(pdf, measure="GEN"), "group", "GEN", method="REML", ci="hksj").to_frame()
    got = got.set_index("group").loc[want["group"]].reset_index()
    assert len(got) == len(want) == 400
    for c in want.columns:
        if want[c].dtype == float:
            np.testing.assert_array_equal(got[c].to_numpy(), want[c].to_numpy(), err_msg=c)  # identical
    assert (got["k"].to_numpy() == want["k"].to_numpy()).all()
    # collect: the same frame, fetched partition by partition
    from hatmeta.fit.distributed import collect

    lazy = pool_by(dd.from_pandas(pdf, npartitions=5), "group", "GEN", method="REML", ci="hksj")
    pd.testing.assert_frame_equal(collect(lazy, cluster).set_index("group").loc[want["group"]].reset_index(), got)


def test_cli_dask_isolates_a_bad_row(tmp_path):
    import subprocess
    import sys

    pdf = _rows(groups=30)
    pdf.loc[13, "vi"] = 0.0  # group g2, line 15 of the CSV
    path = tmp_path / "t.csv"
    pdf.to_csv(path, index=False)
    p = subprocess.run([sys.executable, "-m", "hatmeta.cli", "pool", "--data", str(path), "--measure", "GEN",
                        "--by", "group", "--dask", "local:2", "--format", "csv"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-500:]
    out = pd.read_csv(__import__("io").StringIO(p.stdout))
    assert len(out) == 30 and out["estimate"].notna().sum() == 29
    assert out.loc[out["group"] == "g2", "error"].item() == f"{path}:15: column 'vi': must be greater than 0, got 0"
    assert f"1 of 30 groups failed: g2: {path}:15:" in p.stderr


def test_partition_columns_path_equals_the_row_reader(monkeypatch):
    """The Arrow path of a partition (integer keys, names repeated across groups) gives the row reader's
    frame; a float key column goes to the row reader (its text would differ)."""
    from hatmeta.fit import distributed as dist

    pdf = _rows(groups=50)
    pdf["group"] = np.repeat(np.arange(50, dtype=np.int64), 6)
    opts = dict(method="REML", ci="hksj", pi="t", level=0.95, cc=0.5)
    fast = dist._fit_columns(pdf.copy(), "group", "GEN", opts, "<DataFrame>")
    assert fast is not None and fast["group"].tolist()[:3] == ["0", "1", "2"]
    monkeypatch.setattr(dist, "_fit_columns", lambda *a: None)
    slow = dist._fit_partition(pdf.copy(), "group", "GEN", opts)
    pd.testing.assert_frame_equal(fast.reset_index(drop=True), slow.reset_index(drop=True))
    monkeypatch.undo()
    assert dist._fit_columns(pdf.assign(group=pdf["group"] + 0.5), "group", "GEN", opts, "<DataFrame>") is None


def test_iter_by_dask_gives_whole_groups_in_key_order(cluster):
    """Range partitions on the key text: several partitions, each group once, all in key order, and
    the in-memory numbers."""
    from hatmeta.fit.distributed import iter_by_dask

    pdf = _rows(groups=300)
    frames = list(iter_by_dask(dd.from_pandas(pdf, npartitions=6), "group", "GEN", cluster, method="REML",
                               ci="hksj", every=7))
    assert sum(len(f) > 0 for f in frames) > 1
    got = pd.concat(frames, ignore_index=True)
    assert got["group"].tolist() == sorted(pdf["group"].unique())
    want = pool_by(table_from_frame(pdf, measure="GEN"), "group", "GEN", method="REML", ci="hksj").to_frame()
    want = want.set_index("group").loc[got["group"]].reset_index()
    for c in want.columns:
        if want[c].dtype == float:
            np.testing.assert_array_equal(got[c].to_numpy(), want[c].to_numpy(), err_msg=c)


def test_in_order_yields_frames_in_order_whatever_order_they_finish(cluster):
    from hatmeta.fit.distributed import _in_order

    def frame(i, wait=0.0):  # defined here: sent to the workers by value
        import time

        import numpy as np
        import pandas as pd

        time.sleep(wait)
        return pd.DataFrame({"group": [f"g{i}"], "k": np.array([i], dtype="int64"), "estimate": [i / 3],
                             "error": [None if i % 2 else f"bad {i}"]})

    futures = [cluster.submit(frame, i, 0.4 * (4 - i), pure=False) for i in range(4)]  # the first is done last
    got = list(_in_order(futures))
    assert len(got) == 4
    for i, f in enumerate(got):
        pd.testing.assert_frame_equal(f, frame(i))
