"""``--by --format csv`` built column-wise from a ``BatchResult``'s arrays: the bytes of ``text.to_csv``
over its groups, without a MetaResult and a StudyResult per row.

Why: ``to_csv`` on 200,000 groups of 5 spent 20 of its 22 s making those objects and rounding one
float at a time (cProfile, 10^6 rows); at 10^8 rows that is an hour. Here each column is rounded
by the output policy at once (``precision.quantise``, the same numbers as ``q``), turned to text at
C speed, and the rows go to ``csv.writer.writerows`` (the same quoting), ``CHUNK`` groups at a time
so that the text of a large batch is never all in memory as Python strings.

Every text cell (group, study) is neutralised against spreadsheet formulas (hatmeta/csvsafe.py).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, TypeGuard

import numpy as np

from ..csvsafe import any_trigger, cell

if TYPE_CHECKING:
    from ..fit.batch import BatchResult
    from ..results import MetaResult

HEADER = ["group", "row", "study", "k", "estimate", "se", "ci_low", "ci_high", "weight", "tau2", "i2", "p"]
CHUNK = 20_000  # groups per block of text (~120,000 CSV rows for groups of 5, ~10 MB)


def _cells(values) -> np.ndarray:
    """CSV cells of floats under the output policy, as ``text._c``: ``repr`` of the value rounded to
    10 significant digits, empty for NaN and infinities; an object array.

    orjson writes the same shortest round-trip digits as ``repr``, 3x faster, and in the same form
    for 0 and 1e-4 <= |x| < 1e16 (checked on 2 million values of every magnitude); outside that
    range ``repr`` writes an exponent ("1e-05") where orjson does not, so ``repr`` is used there."""
    import orjson

    from ..precision import quantise

    a = quantise(np.asarray(values, dtype=float))
    out = np.empty(len(a), dtype=object)
    if not len(a):
        return out
    out[:] = orjson.dumps(a.tolist()).decode()[1:-1].split(",")
    ax = np.abs(a)
    odd = np.flatnonzero(~(((ax >= 1e-4) & (ax < 1e16)) | (a == 0)))
    if odd.size:
        out[odd] = [repr(x) if x == x and abs(x) != float("inf") else "" for x in a[odd].tolist()]
    return out


def batch_csv_chunks(batch: BatchResult, header: bool = True) -> Iterator[str]:
    """``text.to_csv(batch)`` for a ``BatchResult``, in blocks of text: per group its study rows (in
    the group's order) then its pooled row; analysis scale."""
    if header:
        yield header_line()
    G = len(batch.groups)
    bounds = np.concatenate([[0], np.cumsum(batch._counts)])
    for a in range(0, G, CHUNK):
        b = min(a + CHUNK, G)
        yield _block(batch, a, b, int(bounds[a]), int(bounds[b]))


def header_line() -> str:
    """The header row of the ``--by`` CSV."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(HEADER)
    return buf.getvalue()


def batch_csv(batch: BatchResult, header: bool = True) -> str:
    return "".join(batch_csv_chunks(batch, header))


def _block(batch, a, b, r0, r1):
    """CSV text of groups a..b-1, whose study rows are ``batch._order[r0:r1]``."""
    from ..fit.effects import ci_of

    es = batch.es
    order = batch._order[r0:r1]
    counts = batch._counts[a:b]
    G, n = b - a, r1 - r0
    # Study rows of a group, then its pooled row: the pooled row of group j is at cumsum(k + 1)[j] - 1.
    is_study = np.ones(n + G, dtype=bool)
    is_study[np.cumsum(counts + 1) - 1] = False
    groups = np.empty(G, dtype=object)
    groups[:] = [str(g) for g in batch.groups[a:b]]  # MetaResult.group is str(key)
    yi, vi = es.yi[order], es.vi[order]
    lo, hi = ci_of(yi, vi, batch.level)  # elementwise: the numbers of each group's own fit
    # to_csv writes ``s.vi ** 0.5``: C pow(), which differs from sqrt in the last bit for ~0.1% of values.
    se = list(map(pow, vi.tolist(), repeat(0.5)))
    arrays = {name: arr[a:b] for name, arr in batch._arrays.items()}

    def column(study_part, pooled_part):
        col = np.empty(n + G, dtype=object)
        col[is_study] = study_part
        col[~is_study] = pooled_part
        return col

    studies = np.empty(n, dtype=object)
    names = es.studies
    studies[:] = [names[i] for i in order.tolist()]
    if any_trigger("\x00".join(groups.tolist()) + "\x00" + "\x00".join(studies.tolist())):
        groups[:] = [cell(g) for g in groups.tolist()]  # spreadsheet formulas neutralised (csvsafe.py)
        studies[:] = [cell(x) for x in studies.tolist()]
    method = np.empty(G, dtype=object)
    method[:] = [batch.method] * G
    cols = [
        column(np.repeat(groups, counts), groups),
        column("study", "pooled"),
        column(studies, method),
        column(1, counts.astype(np.int64)),
        column(_cells(yi), _cells(arrays["estimate"])),
        column(_cells(se), _cells(arrays["se"])),
        column(_cells(lo), _cells(arrays["ci_low"])),
        column(_cells(hi), _cells(arrays["ci_high"])),
        column(_cells(batch._weights[order]), "100"),
        column("", _cells(arrays["tau2"])),
        column("", _cells(arrays["i2"])),
        column("", _cells(arrays["p"])),
    ]
    text = "\x00".join(groups.tolist()) + "\x00" + "\x00".join(studies.tolist()) + "\x00" + batch.method
    if not any(ch in text for ch in _QUOTED):
        # No cell needs quoting (the numbers never do): join the cells at C speed, 5x writerows.
        cols[3] = cols[3].astype(str).astype(object)
        return "\n".join(map(",".join, zip(*(c.tolist() for c in cols)))) + "\n"
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(zip(*(c.tolist() for c in cols)))
    return buf.getvalue()


# A cell with one of these is quoted by csv.writer (QUOTE_MINIMAL: delimiter, quote character, line breaks).
_QUOTED = (",", '"', "\n", "\r")


def is_batch(results: object) -> TypeGuard[BatchResult]:
    """A BatchResult (arrays per group), as opposed to a list of MetaResult."""
    return hasattr(results, "_order") and hasattr(results, "_arrays") and hasattr(results, "es")


__all__ = ["batch_csv", "batch_csv_chunks", "header_line", "is_batch", "HEADER"]


def to_csv(results: BatchResult | Sequence[MetaResult]) -> str:
    """Study rows then a pooled row, one block per result (analysis scale)."""

    if is_batch(results):  # --by: the same bytes, column-wise (render/batch_csv.py)
        return batch_csv(results)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(HEADER)
    for res in results:
        g = "" if res.group is None else cell(str(res.group))
        for s in res.studies:
            w.writerow([g, "study", cell(s.study), 1, _c(s.yi), _c(s.vi ** 0.5), _c(s.ci_low), _c(s.ci_high),
                        _c(s.weight), "", "", ""])
        w.writerow([g, "pooled", res.method, res.k, _c(res.estimate), _c(res.se), _c(res.ci_low),
                    _c(res.ci_high), "100", _c(res.tau2), _c(res.i2), _c(res.p)])
    return buf.getvalue()


def _c(x):
    """A CSV cell under the output policy: 10 significant digits (hatmeta/precision.py)."""
    from ..precision import q

    return "" if x is None or not math.isfinite(x) else repr(q(x))
