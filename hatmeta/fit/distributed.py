"""``--by`` on a Dask cluster: one vectorised fit per partition, groups never split.

``pool_by_dask(ddf, by, measure, ...)`` takes a ``dask.dataframe.DataFrame`` of study rows (the
columns of a trial table) and returns a Dask DataFrame with one row per group: the columns of
``BatchResult.to_frame()`` (group, k, measure, method, the pooled numbers on the analysis scale,
df with HKSJ, notes, error). The rows are first shuffled on the group column (Dask's hash shuffle),
so every group lies whole in one partition; each partition is then pooled by the same vectorised
engine as in memory (``batch.pool_groups``), as independent work on any worker.

``blocks_by_dask`` (what ``--dask`` uses) writes what ``--by`` writes in memory and streamed, byte
for byte: each partition's BatchResult goes through the same writer on its worker (CSV, JSON lines,
text: ``render.batch_parts``), and the client puts the groups in the order of their first
appearance (their first ``_line``), each group's studies in input order. The rows are hashed on
the key's text into as many partitions as there are input partitions; a worker sends back a
partition's text as soon as it is done and keeps nothing, the client keeps it in a temporary file
(the whole output, on the client's disk, until every partition is in) and two integers per group,
then merges the files by first line.

Memory: keep partitions at or below ~10^6 rows (``dd.read_parquet`` makes one per file, or
``repartition``); benchmarks/README.md has the figures (``bench_pool.py scale``). Fetch a
``pool_by_dask`` result with ``collect(result, client)``, not ``result.compute()``, which first
gathers every partition into one on a single worker (11.4 GB at 2x10^7 groups, and the worker was
restarted); ``collect`` still holds every group in the client (~0.3 KB each: 6.3 GB at 2x10^7 groups).

Numbers equal the in-memory fit's. (One caveat at the last bit: a group of 8 or more studies that
is alone in its size class within a partition is summed by NumPy's pairwise loop rather than row by
row; the two roundings can differ by ~1e-16 relative.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .batch import SCALARS, pool_groups

if TYPE_CHECKING:
    import pandas as pd


def _columns(ci):
    return ["group", "k", "measure", "method", *SCALARS, *(["df"] if ci == "hksj" else []), "notes", "error"]


def _meta(ci):
    import pandas as pd

    cols = {}
    for c in _columns(ci):
        if c == "k":
            cols[c] = pd.Series([], dtype="int64")
        elif c in SCALARS or c == "df":
            cols[c] = pd.Series([], dtype="float64")
        else:
            cols[c] = pd.Series([], dtype="object")
    return pd.DataFrame(cols)


def _fit_partition(pdf, by, measure, options, path: str = "<DataFrame>"):
    """Pool the groups of one pandas partition (whole groups) into a frame of one row per group. A bad
    row fails its own group (``error``), named by its line when the rows carry ``_line``."""
    ci = options.get("ci", "wald")
    batch, _ = _pool_partition(pdf, by, measure, options, path)
    if batch is None:
        return _meta(ci)
    frame = batch.to_frame()
    frame["k"] = frame["k"].astype("int64")
    return frame[_columns(ci)]


def _pool_partition(pdf, by, measure, options, path: str = "<DataFrame>"):
    """(BatchResult, first line of each of its groups) of one pandas partition (whole groups); (None,
    no lines) for a partition without rows. With a column ``_line`` (the row's line in ``path``) the
    rows are taken in that order, so that the groups come in the order of their first appearance and
    each group's studies in input order, as in memory and streamed, and a bad row is named by its
    line; the first lines are then those lines (without, the rows' positions from 1)."""
    import numpy as np

    from ..io.lenient import table_by
    from ..io.trial_table import _cell_text

    if len(pdf) == 0:
        return None, np.zeros(0, dtype=np.int64)
    pdf = pdf.reset_index(drop=True)
    if "_line" in pdf.columns:
        pdf = pdf.sort_values("_line", kind="stable").reset_index(drop=True)
        lines = pdf.pop("_line").to_numpy(dtype=np.int64)
    else:
        lines = np.arange(1, len(pdf) + 1, dtype=np.int64)
    batch = _fit_columns(pdf, by, measure, options, path)
    if batch is None:
        names = [str(c) for c in pdf.columns]
        rows = [names] + [[_cell_text(x) for x in row] for row in zip(*(pdf[c].tolist() for c in pdf.columns))]
        got = table_by(rows, by, path=path, measure=measure, first_line=0)
        failed: dict[object, str] = {}
        for i in sorted(got.errors):  # the partition's row i is line lines[i] of the input
            msg = got.errors[i].replace(f"{path}:{i + 1}:", f"{path}:{int(lines[i])}:", 1)
            failed.setdefault(got.keys[i], msg)
        batch = pool_groups(got.table, by, measure, failed=failed, group_keys=got.keys, **options)
    return batch, _first_lines(pdf, by, lines, len(batch.groups))


def _first_lines(pdf, by, lines, n_groups):
    """The line of each group's first row, in the order of first appearance (the BatchResult's order),
    from the key text as the readers see it (stripped)."""
    import numpy as np
    import pandas as pd

    from ..io.trial_table import _cell_text

    col = next(c for c in pdf.columns if str(c).strip().lower() == by.strip().lower())
    s = pdf[col]
    if s.dtype.kind in "iu" or pd.api.types.is_string_dtype(s.dtype):
        text = s.astype(str).str.strip() if s.dtype.kind not in "iu" else s.astype(str)
        codes, uniques = pd.factorize(text, use_na_sentinel=False)
    else:
        codes, uniques = pd.factorize(pd.Series([_cell_text(x).strip() for x in s.tolist()]), use_na_sentinel=False)
    if len(uniques) != n_groups:  # missing keys as the readers see them ("" for None, NaN and pandas' NA)
        codes, uniques = pd.factorize(pd.Series([_cell_text(x).strip() if x is not pd.NA else ""
                                                 for x in s.tolist()]), use_na_sentinel=False)
    if len(uniques) != n_groups:
        raise RuntimeError(f"{len(uniques)} keys but {n_groups} groups in a partition")
    _, first = np.unique(codes, return_index=True)  # codes number the keys in order of first appearance
    return lines[first]


def _fit_columns(pdf, by, measure, options, path):
    """The partition pooled from its columns (Arrow, as streamed --by: a BatchResult), or None where a row is bad or
    a cell's text is not the one the row reader would see (floats, booleans and dates outside the
    numeric columns): the row reader then names the bad row. At 10^7 rows the row reader's text
    cells were most of a partition's time."""
    import pyarrow as pa

    from ..errors import InputError
    from .stream import _table

    try:
        at = pa.Table.from_pandas(pdf, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        return None
    at = at.rename_columns([str(n).strip().lower() for n in at.column_names])
    key = by.strip().lower()
    if key not in at.column_names or len(set(at.column_names)) != at.num_columns:
        return None
    try:
        table = _table(at, path, measure, 0, key, text_types=(pa.types.is_string, pa.types.is_large_string,
                                                              pa.types.is_integer))
    except InputError:
        return None
    if table is None:
        return None
    return pool_groups(table, by, measure, **options)


def pool_by_dask(ddf: Any, by: str, measure: str, method: str = "REML", ci: str = "wald", pi: str = "t",
                 level: float = 0.95, cc: float = 0.5, path: str = "<DataFrame>", **options: Any) -> Any:
    """Per-group results of a Dask DataFrame of study rows, as a Dask DataFrame (lazy; call
    ``.compute()``). Each group is pooled whole, in one partition. A column ``_line`` (the row's line
    in ``path``) lets errors name it."""
    options = dict(method=method, ci=ci, pi=pi, level=level, cc=cc, **options)
    col = next((c for c in ddf.columns if str(c).strip().lower() == by.strip().lower()), by)
    shuffled = ddf.shuffle(on=col)
    return shuffled.map_partitions(_fit_partition, by, measure, options, path, meta=_meta(ci))


def _part_of(keys, n):
    """The partition of each key: a hash of its text (stripped, as the readers strip group keys)
    modulo ``n``, so that every row of a group goes to the same partition."""
    import pandas as pd

    text = keys.astype(str) if keys.dtype.kind in "iu" else keys.astype(str).str.strip()
    codes = pd.util.hash_pandas_object(text, index=False).to_numpy() % n
    return pd.Series(codes.astype("int64"), index=keys.index, dtype="int64")


def _partition_text(pdf, by, measure, options, path, write):
    """What a worker sends back for one partition: the text ``write`` gives its BatchResult (a list of
    bytes blocks), the byte offset where each group's text ends, each group's first line, and its
    failed groups as (first line, group, error)."""
    import numpy as np

    batch, first = _pool_partition(pdf, by, measure, options, path)
    if batch is None:
        return {"blocks": [], "ends": np.zeros(0, dtype=np.int64), "first": first, "failed": []}
    blocks, ends = write(batch)
    failed = [(int(first[j]), g, e) for j, (g, e) in enumerate(zip(batch.groups, batch.errors)) if e is not None]
    return {"blocks": blocks, "ends": ends, "first": first, "failed": failed}


def blocks_by_dask(ddf: Any, by: str, measure: str, dask_client: Any, write: Callable[..., Any],
                   method: str = "REML", ci: str = "wald", pi: str = "t", level: float = 0.95, cc: float = 0.5,
                   path: str = "<DataFrame>",
                   report: dict[str, Any] | None = None, **options: Any) -> Iterator[bytes]:
    """The text of every group's result, in the order of the groups' first appearance in the input,
    as bytes blocks: the bytes the same writer gives the in-memory BatchResult.

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame
        Study rows, with a column ``_line`` (the row's line in ``path``) that sets the order: of the
        groups (by their first line), of the studies within a group, and the lines named in errors.
    write : callable
        ``write(batch) -> (blocks, ends)``: the text of a BatchResult as a list of bytes blocks and
        the byte offset (in their concatenation) where each group's text ends; run on the workers
        (``render.batch_parts``: the in-memory and streamed writers).
    report : dict, optional
        Filled with ``groups`` (the number of groups) and ``failed`` ((group, error) in group order).

    Returns
    -------
    Iterator of bytes
        Blocks of about 1 MB.

    Every group is pooled whole in one partition (rows hashed on the key's text, ``set_index`` on that
    number); each partition's text comes back as soon as it is done (the workers keep no results),
    waits in a temporary file of the client's, and once all are in, the groups are merged by first
    line. So the client holds two integers a group, and its temporary folder the whole output.
    """
    import os
    import tempfile

    import numpy as np
    from dask.delayed import delayed
    from distributed import as_completed

    options = dict(method=method, ci=ci, pi=pi, level=level, cc=cc, **options)
    col = next((c for c in ddf.columns if str(c).strip().lower() == by.strip().lower()), by)
    n = ddf.npartitions
    ranged = ddf.assign(_part=ddf[col].map_partitions(_part_of, n, meta=("_part", "int64")))
    parts = ranged.set_index("_part", divisions=list(range(n + 1))).to_delayed()
    task = delayed(_partition_text, pure=True)
    futures = dask_client.compute([task(p, by, measure, options, path, write) for p in parts])
    index = {f.key: i for i, f in enumerate(futures)}
    ends: list[Any] = [None] * len(parts)
    firsts: list[Any] = [None] * len(parts)
    failed: list[tuple[int, Any, str]] = []
    with tempfile.TemporaryDirectory(prefix="hatmeta-dask-") as tmp:
        for f in as_completed(futures):
            got = f.result()
            f.release()
            i = index[f.key]
            with open(os.path.join(tmp, f"{i}.bin"), "wb") as fh:
                fh.writelines(got["blocks"])
            ends[i], firsts[i] = got["ends"], got["first"]
            failed += got["failed"]
            del got
        sizes = [len(x) for x in firsts]
        first = np.concatenate(firsts) if firsts else np.zeros(0, dtype=np.int64)
        pid = np.repeat(np.arange(len(sizes)), sizes)
        nbytes = np.concatenate([np.diff(e, prepend=0) for e in ends]) if ends else np.zeros(0, dtype=np.int64)
        order = np.argsort(first, kind="stable")
        del first
        pid, nbytes = pid[order], nbytes[order]
        del order
        if report is not None:
            failed.sort(key=lambda t: t[0])
            report.update(groups=len(pid), failed=[(g, e) for _, g, e in failed])
        del failed
        # Runs of groups from one partition: each partition's groups are in first-line order, so a
        # file is read front to back.
        starts = np.flatnonzero(np.concatenate([[True], pid[1:] != pid[:-1]])) if len(pid) else np.zeros(0, int)
        run_bytes = np.add.reduceat(nbytes, starts).tolist() if len(pid) else []
        run_part = pid[starts].tolist()
        del pid, nbytes
        files = {i: open(os.path.join(tmp, f"{i}.bin"), "rb", buffering=1 << 20) for i in set(run_part)}
        try:
            buf = bytearray()
            for p, m in zip(run_part, run_bytes):
                buf += files[p].read(m)
                if len(buf) >= 1 << 20:
                    yield bytes(buf)
                    buf.clear()
            if buf:
                yield bytes(buf)
        finally:
            for reader in files.values():
                reader.close()


def collect(result: Any, dask_client: Any) -> pd.DataFrame:
    """The pandas frame of a ``pool_by_dask`` result, gathered from the workers partition by partition
    (in partition order). Why not ``.compute()``: it first concatenates every partition into one on a
    single worker; at 2x10^7 groups that worker passed 11.4 GB, its memory budget, and was restarted
    (benchmarks/README.md, issue 15). Here a worker holds only its own partitions' results."""
    import pandas as pd

    # Each partition as a collection of its own, finalised as .compute() finalises the whole (with
    # dask's dtypes: from to_delayed(), pandas 2 gave the group column string[pyarrow], .compute() object).
    futures = dask_client.compute([result.partitions[i] for i in range(result.npartitions)])
    parts = []
    for f in futures:
        parts.append(f.result())
        f.release()
    return pd.concat(parts, ignore_index=True) if parts else result._meta


def is_dask(obj: object) -> bool:
    return type(obj).__module__.split(".")[0] in ("dask", "dask_expr")


def client(spec: str) -> Any:
    """A Dask client for ``--dask``: ``local:N`` (a LocalCluster of N worker processes, one thread
    each) or a scheduler address."""
    from distributed import Client, LocalCluster

    from ..errors import InputError

    spec = str(spec)
    if spec.startswith("local:"):
        try:
            n = int(spec.split(":", 1)[1])
        except ValueError:
            n = 0
        if n < 1:
            raise InputError(f"local:N needs a whole number of workers, got {spec!r}", option="--dask")
        return Client(LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None))
    try:
        return Client(spec)
    except (OSError, ValueError) as exc:  # no scheduler there (after distributed's connect timeout), a bad address
        raise InputError(f"cannot reach a Dask scheduler at {spec!r} ({str(exc).splitlines()[0] if str(exc) else exc})",
                         option="--dask") from None


__all__ = ["pool_by_dask", "blocks_by_dask", "collect", "is_dask", "client"]
