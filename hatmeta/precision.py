"""The output-precision policy: what leaves the engine is rounded to 10 significant digits.

Why: NumPy chooses SIMD kernels for exp, log and reductions by processor (AVX-512, AVX2, ...),
so the same code gives results that differ in the last bit or two (relative differences of a
few 1e-15 were measured between the AVX-512 and AVX2 kernels on the bundled analyses). Rounding
every stored number to 10 significant digits, by correctly rounded decimal rounding (which is
defined by the number alone, not by the processor), makes the bytes of every artefact the same
on any processor, except when a value falls within about 1e-15 of a rounding boundary (a chance
of about 1e-5 per number that differs at all; ``hatmeta reproduce`` then reports level (b), a
difference within TOLERANCE, not a silent mismatch).

The policy, in one place:
  * DIGITS = 10 significant digits for every number written to JSON (results, figure sidecars)
    and for every number a table, page or figure is made from: tables then print fewer
    digits (2 for effects, 1 for weights, ...) from these rounded numbers;
  * figures are drawn from the rounded numbers, and every coordinate they draw is rounded again
    (a curve computed inside a plot, e.g. a prior density, may itself use exp), so SVG path data
    and PNG pixels do not depend on the processor;
  * NaN and infinities are written as null; -0.0 is written as 0.0 (the sign of a zero is the
    kind of last-bit accident this policy removes);
  * the engine keeps full precision: ``MetaResult``, ``BayesResult`` and their ``to_dict()``
    are not rounded; only writers round (``dumps``, ``quantised``).

``quantise`` is vectorised and gives exactly ``float(format(x, '.10g'))`` for every float
(tested), at about 100 ns an element instead of 1 us.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import io
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

DIGITS = 10
# Two numbers agree when they differ by at most TOLERANCE relative to the larger (a step of one
# unit in the 10th significant digit is at most 1e-9 relative) or by ABS_TOLERANCE absolutely
# (values that are zero in exact arithmetic come out as +-1e-17 noise).
TOLERANCE = 2e-9
ABS_TOLERANCE = 1e-13

_POW10 = 10.0 ** np.arange(-22, 23)  # exactly representable for 0..22; nearest doubles below 0


def q(x: Any) -> Any:
    """One number rounded to DIGITS significant digits (None for NaN and infinities)."""
    if x is None or isinstance(x, (bool, int)):  # (NumPy floats are not ints: they are rounded below)
        return x
    x = float(x)
    if not math.isfinite(x):
        return None
    return float(format(x, f".{DIGITS}g")) + 0.0


def quantise(a: ArrayLike) -> np.ndarray:
    """Array of floats rounded to DIGITS significant digits, exactly as ``q`` would (NaN and
    infinities kept). Vectorised: scale by an exact power of ten, round, scale back; both
    scalings are single correctly rounded operations, so the result is the double nearest to
    the decimal. Values near a rounding tie, and values outside 1e-13..1e22, go through the
    (slower, exact) decimal formatting."""
    a = np.asarray(a, dtype=float)
    out = a + 0.0  # a copy, and -0.0 becomes 0.0
    flat = out.reshape(-1)
    ax = np.abs(flat)
    fast = (ax >= 1e-13) & (ax < 1e22)
    every = bool(fast.all())
    idx = None if every else np.flatnonzero(fast)
    if every or (idx is not None and idx.size):
        x = flat if every else flat[idx]
        axi = ax if every else ax[idx]
        e = np.floor(np.log10(axi)).astype(np.int64)
        # log10 may be off by one next to a power of ten: correct it against the table.
        np.clip(e, -13, 21, out=e)
        e -= axi < _POW10[e + 22]
        e += axi >= _POW10[e + 23]
        s = DIGITS - 1 - e  # scale exponent, -12..22
        up = s >= 0
        p = _POW10[np.abs(s) + 22]
        y = np.divide(x, p)
        np.multiply(x, p, out=y, where=up)
        n = np.rint(y)
        # y carries a rounding error of at most one ulp (~2e-6 at 1e10): near a tie, leave it
        # to exact decimal formatting.
        frac = np.abs(y - np.floor(y) - 0.5)
        res = np.multiply(n, p)
        np.divide(n, p, out=res, where=up)
        res += 0.0
        slow = np.flatnonzero(frac < 1e-5)
        if slow.size:
            res[slow] = [float(format(v, f".{DIGITS}g")) + 0.0 for v in x[slow].tolist()]
        if every:
            flat[:] = res
        else:
            flat[idx] = res
    rest = np.flatnonzero(~fast)
    rest = rest[np.isfinite(flat[rest]) & (flat[rest] != 0)]
    if rest.size:
        flat[rest] = [float(format(v, f".{DIGITS}g")) + 0.0 for v in flat[rest].tolist()]
    return out


def json_floats(arr: ArrayLike) -> list[float | None]:
    """A float array as a JSON-ready list: rounded by the policy, NaN and infinities as None."""
    arr = quantise(arr)
    if np.isfinite(arr).all():
        out: list[float | None] = arr.tolist()
        return out
    return [x if math.isfinite(x) else None for x in arr.tolist()]


def plain(value: Any) -> Any:
    """JSON-ready copy of ``value`` with every float rounded by the policy (dicts, lists,
    tuples, NumPy scalars and arrays; NaN/inf to None)."""
    if isinstance(value, float):  # includes np.float64
        return q(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_floats(value) if value.dtype.kind == "f" else value.tolist()
    if isinstance(value, np.generic):
        return plain(value.item())
    if hasattr(value, "to_dict"):
        return plain(value.to_dict())
    return value


def dumps(obj: Any, indent: bool = True, rounded: bool = False, as_bytes: bool = False) -> Any:
    """The one JSON writer for results: keys sorted, floats rounded by the policy, NaN as null,
    two-space indent (or compact, one line, with ``indent=False``), no trailing newline.

    ``rounded=True`` skips the walk that rounds floats, for objects whose floats were all made
    by ``json_floats``/``q`` (the fast path of millions of study rows); ``as_bytes=True`` returns
    UTF-8 bytes (no decoding, for writing to a binary stream)."""
    import orjson

    option = orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY
    if indent:
        option |= orjson.OPT_INDENT_2
    out = orjson.dumps(obj if rounded else plain(obj), option=option)
    return out if as_bytes else out.decode()


def dump_lines(objs: Iterable[Any], keys_sorted: bool = False) -> bytes:
    """Many objects as JSON lines (UTF-8 bytes): each line is ``dumps(obj, indent=False, rounded=True)``
    and ends in a newline. Every float in ``objs`` must already be rounded by the policy.

    ``keys_sorted=True``: every dict in ``objs``, nested ones included, was built with its keys in
    ``sorted`` order, so the writer skips sorting them (the same bytes: orjson sorts keys by their UTF-8
    bytes, which is code-point order, as ``sorted`` sorts str)."""
    import orjson

    option = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE
    if not keys_sorted:
        option |= orjson.OPT_SORT_KEYS
    # Each line is copied out as soon as it is made: recent orjson returns bytes with kilobytes of
    # spare capacity, so holding 20,000 lines for one join took 390 MB for 17 MB of output.
    out = io.BytesIO()
    out.writelines(map(functools.partial(orjson.dumps, option=option), objs))
    return out.getvalue()


def quantised(obj: Any) -> Any:
    """A copy of a result object (MetaResult, BayesResult, StudyRows, dicts, tuples of them)
    with every float rounded by the policy: what tables, pages and figures are drawn from."""
    if isinstance(obj, float):
        return q(obj) if math.isfinite(obj) else obj
    if isinstance(obj, np.ndarray):
        return quantise(obj) if obj.dtype.kind == "f" else obj
    if isinstance(obj, np.floating):
        return quantised(float(obj))
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.replace(obj, **{f.name: quantised(getattr(obj, f.name))
                                           for f in dataclasses.fields(obj) if f.init})
    if isinstance(obj, dict):
        return {k: quantised(v) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return tuple(quantised(v) for v in obj)
    if isinstance(obj, list):
        return [quantised(v) for v in obj]
    if hasattr(obj, "_arrays") and hasattr(obj, "_inputs"):  # results.StudyRows: arrays per column
        new = copy.copy(obj)
        new._arrays = {k: quantise(v) for k, v in obj._arrays.items()}
        new._inputs = {k: quantise(v) if np.asarray(v).dtype.kind == "f" else v for k, v in obj._inputs.items()}
        return new
    return obj


def agree(a: float | None, b: float | None) -> bool:
    """Whether two numbers agree within the stated tolerance (None/NaN agree only with each other)."""
    if a is None or b is None:
        return a is b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= max(TOLERANCE * max(abs(a), abs(b)), ABS_TOLERANCE)


__all__ = ["DIGITS", "TOLERANCE", "ABS_TOLERANCE", "q", "quantise", "json_floats", "plain", "dumps", "dump_lines",
           "quantised", "agree"]
