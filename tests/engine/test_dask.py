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
    pooled = out[out["row"] == "pooled"]
    assert len(pooled) == 30 and pooled["estimate"].notna().sum() == 29
    assert pooled.loc[pooled["group"] == "g2", "k"].item() == 0  # its good rows are not pooled either
    assert f"1 of 30 groups failed: g2: {path}:15: column 'vi': must be greater than 0, got 0" in p.stderr


def test_partition_columns_path_equals_the_row_reader(monkeypatch):
    """The Arrow path of a partition (integer keys, names repeated across groups) gives the row reader's
    frame; a float key column goes to the row reader (its text would differ)."""
    from hatmeta.fit import distributed as dist

    pdf = _rows(groups=50)
    pdf["group"] = np.repeat(np.arange(50, dtype=np.int64), 6)
    opts = dict(method="REML", ci="hksj", pi="t", level=0.95, cc=0.5)
    batch = dist._fit_columns(pdf.copy(), "group", "GEN", opts, "<DataFrame>")
    assert batch is not None
    fast = batch.to_frame().astype({"k": "int64"})[dist._columns("hksj")]
    assert fast["group"].tolist()[:3] == ["0", "1", "2"]
    monkeypatch.setattr(dist, "_fit_columns", lambda *a: None)
    slow = dist._fit_partition(pdf.copy(), "group", "GEN", opts)
    pd.testing.assert_frame_equal(fast.reset_index(drop=True), slow.reset_index(drop=True))
    monkeypatch.undo()
    assert dist._fit_columns(pdf.assign(group=pdf["group"] + 0.5), "group", "GEN", opts, "<DataFrame>") is None


def test_blocks_by_dask_give_the_in_memory_bytes_in_order_of_first_appearance(cluster):
    """Rows of each group scattered over 6 partitions: hashed so that each group is whole in one, the
    groups come back in order of first appearance, each written by the in-memory writer."""
    from hatmeta.fit.batch import pool_groups
    from hatmeta.fit.distributed import blocks_by_dask
    from hatmeta.render.batch_csv import batch_csv_chunks
    from hatmeta.render.batch_parts import csv_part

    pdf = _rows(groups=300).sample(frac=1.0, random_state=1).reset_index(drop=True)
    pdf["_line"] = np.arange(2, len(pdf) + 2)
    report = {}
    got = b"".join(blocks_by_dask(dd.from_pandas(pdf, npartitions=6), "group", "GEN", cluster, csv_part,
                                  method="REML", ci="hksj", report=report))
    table = table_from_frame(pdf.drop(columns="_line"), measure="GEN")
    want = "".join(batch_csv_chunks(pool_groups(table, "group", "GEN", method="REML", ci="hksj"), header=False))
    assert got == want.encode()
    assert report == {"groups": 300, "failed": []}
    assert got.split(b",", 1)[0] == pdf["group"][0].encode()  # the first row's group comes first
