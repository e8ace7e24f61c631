"""``--by`` text of one part of a run (a ``--dask`` partition), with where each group's text ends.

A partition's groups are written by the writers of the in-memory and streamed paths (CSV:
``batch_csv.batch_csv_chunks``; JSON lines: ``BatchResult.json_blocks``; text: each group's
``summary()``); the client then puts the
groups of all partitions in the order of their first appearance (``fit.distributed.blocks_by_dask``),
which needs the byte offset where each group's text ends. ``csv_part``, ``json_part`` and ``text_part`` are the
``write`` functions it takes: ``write(batch) -> (blocks, ends)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..fit.batch import BatchResult


def _record_ends(blocks: list[bytes], quoted: bool) -> np.ndarray:
    """Byte offsets (in the blocks' concatenation) just past each record's closing newline. In CSV a
    newline inside a quoted cell is not a record's end: csv.writer doubles a quote inside a cell, so
    a newline ends a record where the quotes before it are even in number."""
    out, offset = [], 0
    for block in blocks:
        a = np.frombuffer(block, dtype=np.uint8)
        nl = np.flatnonzero(a == 10)
        if quoted and b'"' in block:
            quotes = np.cumsum(a == 34)
            nl = nl[quotes[nl] % 2 == 0]
        out.append(nl + 1 + offset)
        offset += len(block)
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, dtype=np.int64)


def csv_part(batch: BatchResult) -> tuple[list[bytes], np.ndarray]:
    """The ``--by`` CSV rows of ``batch`` (no header) as UTF-8 blocks, and the byte offset where each
    group's rows end (its study rows, then its pooled row)."""
    from .batch_csv import batch_csv_chunks

    blocks = [text.encode() for text in batch_csv_chunks(batch, header=False)]
    records = _record_ends(blocks, quoted=True)
    return blocks, records[np.cumsum(batch._counts + 1) - 1]


def json_part(batch: BatchResult) -> tuple[list[bytes], np.ndarray]:
    """The ``--by`` JSON lines of ``batch`` (one a group) and the byte offset where each ends. (Count
    columns are written as integers where the whole column is whole; the readers accept only whole
    counts, so a part decides as the whole table would.)"""
    blocks = list(batch.json_blocks())
    return blocks, _record_ends(blocks, quoted=False)


def text_part(batch: BatchResult) -> tuple[list[bytes], np.ndarray]:
    """The ``--by`` text of ``batch``: each group's summary followed by a blank line (the caller
    drops the last newline of the run: the groups are joined by blank lines)."""
    pieces = [(r.summary() + "\n\n").encode() for r in batch]
    return [b"".join(pieces)], np.cumsum([len(p) for p in pieces], dtype=np.int64)


__all__ = ["csv_part", "json_part", "text_part"]
