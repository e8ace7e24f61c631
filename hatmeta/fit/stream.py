"""Streamed ``--by`` over Parquet: memory bounded by one batch of rows, however many groups there are.

A simulation study of 10^8 rows does not fit in memory as Python objects. Its Parquet files are
read ``batch_rows`` rows at a time (``pyarrow.parquet.ParquetFile.iter_batches``); the groups
complete in a batch are pooled with the vectorised engine (``batch.pool_groups``) and written out, and
the rows of the batch's last group, which may continue in the next batch, are carried over. Peak
memory is therefore about one batch plus the largest group, whatever the number of rows: measured
(``bench_pool.py scale``, groups of 5, CSV out) as ~280 MB + ~0.7 KB per batch row, and bounded by
300 MB + 1 KB x (``batch_rows`` + rows of the largest group): 455-468 MB at ``--batch-rows 250000``
for 10^6, 10^7 and 10^8 rows alike (10^8 rows in 8.4 min, 25 us a group).

The rows of a group must come together (files or row groups aligned to groups, or the table sorted
by group). Within a batch any order is fine; a finished group that comes back in the next batch
stops the run with an input error (keys further back are not kept, which would not be bounded, so a
group that comes back later still is pooled as two groups: sort first if unsure).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..io import columnar, trial_table as tt
from .batch import pool_groups

if TYPE_CHECKING:
    from .batch import BatchResult

BATCH_ROWS = 1_000_000


def _files(path):
    p = str(path)
    if os.path.isdir(p):
        return sorted(os.path.join(p, f) for f in os.listdir(p) if f.lower().endswith((".parquet", ".pq")))
    if any(ch in p for ch in "*?["):
        import glob

        return sorted(glob.glob(p))
    return [p]


def _batches(path, batch_rows):
    import pyarrow.parquet as pq

    files = _files(path)
    if not files:
        raise InputError("no Parquet files found", file=str(path))
    for f in files:
        try:
            pf = pq.ParquetFile(f)
        except FileNotFoundError:
            raise InputError("file not found", file=f) from None
        except OSError as exc:
            raise InputError(f"not a readable Parquet file ({str(exc).splitlines()[0]})", file=f) from None
        yield from pf.iter_batches(batch_size=batch_rows)


def pool_by_stream(path: str | os.PathLike[str], by: str, measure: str, batch_rows: int = BATCH_ROWS,
                   strict: bool = False, **options: Any) -> Iterator[BatchResult]:
    """Pool every group of Parquet input batch by batch; yields one BatchResult per batch (groups in
    order, each group whole). ``options``: method, ci, pi, level, cc as for ``pool_by``. A bad row fails
    its group (or, with ``strict``, stops the run); rows are numbered from 1 across files."""
    import pyarrow as pa

    if not columnar._pyarrow():
        raise InputError("Parquet input needs pyarrow: pip install 'hatmeta[fast]'", file=str(path), column="--data")
    key = by.strip().lower()
    carry = None  # Arrow table: rows of the last group of the previous batch
    offset = 0  # rows before ``carry`` (or before the batch when nothing is carried)
    previous_keys: set[object] = set()
    for rb in _batches(path, batch_rows):
        at = pa.Table.from_batches([rb])
        at = at.rename_columns([n.strip().lower() for n in at.column_names])
        if key not in at.column_names:
            raise InputError(f"no such column; columns are: {', '.join(at.column_names)}", file=str(path), column=by)
        if carry is not None:
            at = pa.concat_tables([carry, at.cast(carry.schema) if at.schema != carry.schema else at])
        keys = at.column(key).cast(pa.string()).to_numpy(zero_copy_only=False)
        if len(keys) == 0:
            continue
        # The last group may go on in the next batch: hold it back.
        last = keys[-1]
        cut = len(keys)
        while cut > 0 and keys[cut - 1] == last:
            cut -= 1
        if cut == 0:
            carry = at
            continue
        done, carry = at.slice(0, cut), at.slice(cut)
        seen = set(keys[:cut].tolist())
        back = seen & previous_keys
        if back:
            raise InputError(f"the rows of group {sorted(back)[0]!r} are not together; sort the input by "
                             f"{by} (streamed --by pools each group as its rows arrive)", file=str(path), column=by)
        previous_keys = seen
        yield _pool_part(done, path, by, measure, offset, strict, options)
        offset += cut
    if carry is not None and carry.num_rows:
        last = carry.column(key).cast(pa.string())[0].as_py()
        if last in previous_keys and offset:
            raise InputError(f"the rows of group {last!r} are not together; sort the input by "
                             f"{by} (streamed --by pools each group as its rows arrive)", file=str(path), column=by)
        yield _pool_part(carry, path, by, measure, offset, strict, options)


def _pool_part(at, path, by, measure, offset, strict, options):
    """Pool the whole groups in Arrow table ``at`` (rows ``offset + 1 ...`` of the input)."""
    from ..io.lenient import table_by

    try:
        table = _table(at, path, measure, offset, by)
    except InputError:
        if strict:
            raise
        table = None
    if table is not None:
        return pool_groups(table, by, measure, strict=strict, **options)
    names = list(at.column_names)
    rows = [names] + [[columnar._cell(x) for x in row] for row in zip(*(at.column(h).to_pylist() for h in names))]
    if strict:  # the exact reader names the first bad row
        return pool_groups(tt.table_from_rows(rows, path=str(path), measure=measure, first_line=offset), by,
                           measure, strict=True, **options)
    got = table_by(rows, by, path=str(path), measure=measure, first_line=offset, try_exact=False)
    failed: dict[object, str] = {}
    for i in sorted(got.errors):
        failed.setdefault(got.keys[i], got.errors[i])
    return pool_groups(got.table, by, measure, failed=failed, group_keys=got.keys, **options)


def _table(at, path, measure, offset, by, text_types=None):
    """The validated TrialTable of an Arrow table (rows numbered from offset + 1); None where only
    the exact reader can say what is wrong; an InputError from the range checks. ``text_types``:
    Arrow type tests (``pa.types.is_string``, ...) that the columns outside the layout must pass
    (None where one does not), for callers whose row reader writes other types' text differently."""
    import pyarrow as pa

    names = list(at.column_names)
    first = [columnar._cell(at.column(h)[0].as_py()) for h in names]
    try:
        layout = tt.table_from_rows([names, first], path=str(path), measure=measure, first_line=offset).layout
    except InputError:
        return None
    wanted = tt.LAYOUTS[layout]
    if text_types is not None and not all(any(t(at.column(h).type) for t in text_types)
                                          for h in names if h not in wanted):
        return None
    cast = {}
    for h in names:
        try:
            cast[h] = at.column(h).cast(pa.float64() if h in wanted else pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
    return columnar._from_arrow(pa.table(cast), names, wanted, layout, str(path),
                                lines=range(offset + 1, offset + at.num_rows + 1), by=by.strip().lower())


__all__ = ["pool_by_stream", "BATCH_ROWS"]
