"""`pool --by`: one output, whatever the engine. In memory, streamed (--batch-rows) and on Dask
(--dask) write the same bytes for the same table: study rows and pooled rows (CSV), JSON lines and
text; failed groups, notes, quoting and the order of the groups' first appearance included."""

import subprocess
import sys

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")
distributed = pytest.importorskip("distributed")
pytest.importorskip("dask.dataframe")

ODD = 'a "quoted", name\nover two lines'  # quoted by csv.writer, a newline inside a cell


def _table(groups=48, seed=3):
    """Count rows of groups of 1, 2, 5 and 7 studies whose names repeat within a group (labelled
    s0 (1), s0 (2): a note), a bad row (events above n: its group fails), a double-zero study (dropped:
    a note), a zero cell (the increment: a note), a group name to quote and one spreadsheets would
    read as a formula."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(groups):
        name = ODD if g == 5 else "=1+2" if g == 9 else f"g{g}"
        for s in range(int([1, 2, 5, 7][g % 4])):
            rows.append({"trial": name, "study": f"s{s % 3}", "ai": int(rng.integers(1, 20)), "n1i": 40,
                         "ci": int(rng.integers(1, 20)), "n2i": 40})
    df = pd.DataFrame(rows)
    df.loc[7, "ai"] = 50
    df.loc[20, ["ai", "ci"]] = 0
    df.loc[30, "ai"] = 0
    return df


def _parquet_folder(df, folder, files=4):
    """``df`` as a folder of Parquet files, split mid-group: one Dask partition per file."""
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(df)), files)):
        df.iloc[part].to_parquet(folder / f"part{i}.parquet", index=False)
    return folder


def _pool(data, fmt, *extra):
    """stdout (bytes) and the 'groups failed' line of `hatmeta pool --data DATA --by trial` run in this
    process (the CLI path, without an interpreter's start per run)."""
    import inspect

    from click.testing import CliRunner

    from hatmeta.cli import cli

    # click < 8.2 mixes stderr into stdout unless told not to; 8.2 removed the option (always separate)
    separate = {"mix_stderr": False} if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters else {}
    r = CliRunner(**separate).invoke(cli, ["pool", "--data", str(data), "--measure", "RR", "--by", "trial",
                                           "--format", fmt, *extra])
    assert r.exit_code == 0, (r.stderr[-800:], r.exception)
    return r.stdout_bytes, [line for line in r.stderr.splitlines() if "groups failed" in line]


@pytest.fixture(scope="module")
def scheduler():
    """A 2-worker cluster of threads in this process, for the CLI's --dask ADDRESS (a LocalCluster of
    processes per run costs seconds)."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as lc:
        yield lc.scheduler_address


@pytest.mark.parametrize("fmt", ["csv", "json", "text"])
def test_in_memory_streamed_and_dask_write_the_same_bytes(tmp_path, scheduler, fmt):
    folder = _parquet_folder(_table(), tmp_path / "parts")
    want, want_failed = _pool(folder, fmt)
    assert want_failed == ["1 of 48 groups failed: g2: " + f"{folder}:8: column 'events_treat': events (50) "
                           "exceed n_treat (40)"]
    if fmt == "csv":  # the study rows and the pooled rows, with the row column
        lines = want.decode().splitlines()
        assert lines[0].startswith("group,row,study,")
        assert sum(line.split(",")[1] == "pooled" for line in lines[1:] if "," in line) >= 48
        assert b'"a ""quoted"", name\nover two lines"' in want and b"'=1+2" in want
    if fmt == "json":
        assert b"dropped" in want and b"added to every cell" in want and b"s0 (2)" in want
    assert _pool(folder, fmt, "--batch-rows", "9") == (want, want_failed)
    assert _pool(folder, fmt, "--dask", scheduler) == (want, want_failed)


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_dask_keeps_the_order_of_first_appearance_of_scattered_groups(tmp_path, scheduler, fmt):
    """Rows of a group scattered over the partitions (which streaming cannot take): the groups in
    order of first appearance and each group's studies in input order, as in memory; a CSV's lines."""
    df = _table().sample(frac=1.0, random_state=5).reset_index(drop=True)
    folder = _parquet_folder(df, tmp_path / "parts", files=5)
    want = _pool(folder, fmt)
    assert want[1] and want[1][0].startswith("1 of 48 groups failed: g2: ")
    assert _pool(folder, fmt, "--dask", scheduler) == want
    csv_path = tmp_path / "t.csv"
    df.to_csv(csv_path, index=False)
    want = _pool(csv_path, fmt)
    assert _pool(csv_path, fmt, "--dask", scheduler) == want


def test_dask_local_cluster_writes_the_streamed_bytes(tmp_path):
    """The command as run, --dask local:N (its own LocalCluster of worker processes) end to end."""
    folder = _parquet_folder(_table(groups=12), tmp_path / "parts", files=2)

    def run(*extra):
        p = subprocess.run([sys.executable, "-m", "hatmeta.cli", "pool", "--data", str(folder), "--measure", "RR",
                            "--by", "trial", "--format", "csv", *extra], capture_output=True)
        assert p.returncode == 0, p.stderr.decode()[-800:]
        return p.stdout, [line for line in p.stderr.decode().splitlines() if "groups failed" in line]

    want = run("--batch-rows", "5")
    assert want[1] and b",pooled," in want[0]
    assert run("--dask", "local:1") == want
