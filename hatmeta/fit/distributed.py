"""``--by`` on a Dask cluster: one vectorised fit per partition, groups never split.

``pool_by_dask(ddf, by, measure, ...)`` takes a ``dask.dataframe.DataFrame`` of study rows (the
columns of a trial table) and returns a Dask DataFrame with one row per group: the columns of
``BatchResult.to_frame()`` (group, k, measure, method, the pooled numbers on the analysis scale,
df with HKSJ, notes, error). The rows are first shuffled on the group column (Dask's hash shuffle),
so every group lies whole in one partition; each partition is then pooled by the same vectorised
engine as in memory (``batch.pool_groups``), as independent work on any worker.

``iter_by_dask`` (what ``--dask`` uses) partitions on ranges of the key instead and yields the
results one partition at a time in key order, so the client holds one partition's results.

Memory (``bench_pool.py scale``, 2 workers, groups of 5): a worker needs ~1.2 GB for a partition of
10^6 rows at 10^7 rows, ~1.8 GB at 10^8 rows (~0.5 GB for partitions of 10^5 rows: the shuffled
rows, their Arrow and NumPy columns, the fit). Keep partitions at or below ~10^6 rows
(``dd.read_parquet`` makes one per file, or ``repartition``). Fetch a ``pool_by_dask`` result with
``collect(result, client)``, not ``result.compute()``, which first gathers every partition into one
on a single worker (11.4 GB at 2x10^7 groups, and the worker was restarted); ``collect`` still holds
every group in the client (~0.3 KB each: 6.3 GB at 2x10^7 groups), ``iter_by_dask`` one partition's
(775 MB at 2x10^7 groups), keeping partitions that finish early in temporary Parquet files.

Numbers equal the in-memory fit's. (One caveat at the last bit: a group of 8 or more studies that
is alone in its size class within a partition is summed by NumPy's pairwise loop rather than row by
row; the two roundings can differ by ~1e-16 relative.)
"""

from __future__ import annotations

from collections.abc import Iterator
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
    from ..io.lenient import table_by
    from ..io.trial_table import _cell_text

    ci = options.get("ci", "wald")
    if len(pdf) == 0:
        return _meta(ci)
    pdf = pdf.reset_index(drop=True)
    lines = pdf.pop("_line").tolist() if "_line" in pdf.columns else None
    frame = _fit_columns(pdf, by, measure, options, path)
    if frame is not None:
        return frame
    names = [str(c) for c in pdf.columns]
    rows = [names] + [[_cell_text(x) for x in row] for row in zip(*(pdf[c].tolist() for c in pdf.columns))]
    got = table_by(rows, by, path=path, measure=measure, first_line=0)
    failed: dict[object, str] = {}
    for i in sorted(got.errors):
        msg = got.errors[i]
        if lines is not None:  # the partition's row i is line lines[i] of the input
            msg = msg.replace(f"{path}:{i + 1}:", f"{path}:{int(lines[i])}:", 1)
        failed.setdefault(got.keys[i], msg)
    res = pool_groups(got.table, by, measure, failed=failed, group_keys=got.keys, **options)
    frame = res.to_frame()
    frame["k"] = frame["k"].astype("int64")
    return frame[_columns(ci)]


def _fit_columns(pdf, by, measure, options, path):
    """The partition pooled from its columns (Arrow, as streamed --by), or None where a row is bad or
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
    ci = options.get("ci", "wald")
    frame = pool_groups(table, by, measure, **options).to_frame()
    frame["k"] = frame["k"].astype("int64")
    return frame[_columns(ci)]


def pool_by_dask(ddf: Any, by: str, measure: str, method: str = "REML", ci: str = "wald", pi: str = "t",
                 level: float = 0.95, cc: float = 0.5, path: str = "<DataFrame>", **options: Any) -> Any:
    """Per-group results of a Dask DataFrame of study rows, as a Dask DataFrame (lazy; call
    ``.compute()``). Each group is pooled whole, in one partition. A column ``_line`` (the row's line
    in ``path``) lets errors name it."""
    options = dict(method=method, ci=ci, pi=pi, level=level, cc=cc, **options)
    col = next((c for c in ddf.columns if str(c).strip().lower() == by.strip().lower()), by)
    shuffled = ddf.shuffle(on=col)
    return shuffled.map_partitions(_fit_partition, by, measure, options, path, meta=_meta(ci))


def _part_of(keys, bounds):
    """The range partition of each key: the number of bounds at or below its text (stripped, as the
    readers strip group keys)."""
    import numpy as np
    import pandas as pd

    text = keys.astype(str).str.strip().to_numpy(dtype=object)
    return pd.Series(np.searchsorted(bounds, text, side="right"), index=keys.index, dtype="int64")


def _fit_sorted(pdf, by, measure, options, path):
    return _fit_partition(pdf, by, measure, options, path).sort_values("group", kind="stable")


def iter_by_dask(ddf: Any, by: str, measure: str, dask_client: Any, method: str = "REML", ci: str = "wald",
                 pi: str = "t", level: float = 0.95, cc: float = 0.5, path: str = "<DataFrame>", every: int = 100,
                 **options: Any) -> Iterator[Any]:
    """Per-group results (frames of ``to_frame()`` columns) in the order of the groups' keys as text,
    one partition at a time, so the client holds one partition's results, never all of them.

    The rows are range-partitioned on the key: every ``every``-th key of each partition is sampled,
    ``npartitions - 1`` quantiles of the sample bound the ranges, and ``set_index`` on each row's range
    number (with those divisions, so nothing more is computed to place them) puts every group whole
    in one partition and the partitions in key order; each partition's groups are sorted within it.
    Equal-sized partitions as far as the sample tells (rows, not groups)."""
    import numpy as np

    options = dict(method=method, ci=ci, pi=pi, level=level, cc=cc, **options)
    col = next((c for c in ddf.columns if str(c).strip().lower() == by.strip().lower()), by)
    sample = ddf[col].map_partitions(lambda s: s.iloc[::every].astype(str).str.strip(), meta=(col, "object"))
    keys = np.unique(np.asarray(sample.compute().to_numpy(), dtype=object))
    n = ddf.npartitions
    bounds = np.unique(keys[np.linspace(0, len(keys), n + 1)[1:-1].astype(int)]) if n > 1 and len(keys) > 1 \
        else np.array([], dtype=object)
    m = len(bounds) + 1
    ranged = ddf.assign(_part=ddf[col].map_partitions(_part_of, bounds, meta=("_part", "int64")))
    ranged = ranged.set_index("_part", divisions=list(range(m + 1)))
    result = ranged.map_partitions(_fit_sorted, by, measure, options, path, meta=_meta(ci))
    yield from _in_order(dask_client.compute(result.to_delayed()))


def _in_order(futures):
    """The futures' frames in their order, each fetched as soon as it is done (so that no worker holds
    finished partitions while the client waits for an earlier one: at 10^8 rows they took the workers
    from ~1.2 to ~2.9 GB): one that arrives early waits in a Parquet file in a temporary folder of the
    client's, not in memory."""
    import os
    import tempfile

    import pandas as pd
    from distributed import as_completed

    index = {f.key: i for i, f in enumerate(futures)}
    nxt, waiting = 0, {}
    with tempfile.TemporaryDirectory(prefix="hatmeta-dask-") as tmp:
        for f in as_completed(futures):
            i = index[f.key]
            frame = f.result()
            f.release()
            if i != nxt:
                path = os.path.join(tmp, f"{i}.parquet")
                frame.to_parquet(path, index=False)
                waiting[i] = (path, frame.dtypes)
                continue
            yield frame
            nxt += 1
            while nxt in waiting:
                path, dtypes = waiting.pop(nxt)
                yield pd.read_parquet(path).astype(dtypes)
                os.remove(path)
                nxt += 1


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


__all__ = ["pool_by_dask", "iter_by_dask", "collect", "is_dask", "client"]
