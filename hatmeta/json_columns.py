"""JSON of many small objects (study rows, --by groups) written column by column.

Why: building a dict per study and handing a list of a million dicts to the encoder took most of
a 10^6-study JSON run (the dicts, then the policy's walk over them). Here each column is encoded by
orjson in one call (a list of numbers or strings), split into one token per value, and the objects
are assembled from the tokens with one ``bytes.join``. The bytes are exactly those of
``precision.dumps(..., indent=False)`` on the dicts (keys sorted, compact, floats rounded by the
output policy via ``precision.json_floats``, NaN and infinities as null): the tokens are orjson's own.
"""

from __future__ import annotations

import numpy as np
import orjson

from .precision import json_floats


def tokens(values: list) -> list:
    """orjson's encoding of each value of a list (floats, ints, None, strings), one bytes each."""
    n = len(values)
    if n == 0:
        return []
    parts = orjson.dumps(values)[1:-1].split(b",")
    if len(parts) == n:  # a comma inside a string would add a part: then encode one by one
        return parts
    return [orjson.dumps(v) for v in values]


def float_tokens(arr) -> list:
    """Tokens of a float array rounded by the output-precision policy (NaN and infinities as null)."""
    return tokens(json_floats(arr))


def objects(cols: dict, n: int) -> list:
    """The compact JSON object of each of ``n`` rows, keys sorted; ``cols`` maps key to the row's
    tokens (a list of ``n`` bytes). Each object is a bytes of the form ``{"a":1,"b":2}``."""
    if n == 0:
        return []
    keys = sorted(cols)
    m2 = 2 * len(keys)
    flat = [b""] * (m2 * n)
    for j, key in enumerate(keys):
        col = cols[key]
        if len(col) != n:
            raise ValueError(f"column {key!r} has {len(col)} values, not {n}")
        # Compact JSON never holds a raw newline (orjson escapes it in strings): it separates rows.
        sep = (b"}\n{" if j == 0 else b",") + orjson.dumps(key) + b":"
        flat[2 * j::m2] = [sep] * n
        flat[2 * j + 1::m2] = col
    return (b"".join(flat)[2:] + b"}").split(b"\n")


def whole_counts(inputs: dict, count_columns) -> set:
    """The input columns written as integers: counts whose every value is whole (decided on the
    whole column, as ``StudyRows.to_dicts`` does, never per chunk)."""
    out = set()
    for c, arr in inputs.items():
        if c in count_columns:
            arr = np.asarray(arr, float)
            if bool(np.all(arr == np.floor(arr))):
                out.add(c)
    return out


def study_columns(studies, labels, arrays: dict, inputs: dict, as_int: set) -> dict:
    """Tokens per key of study rows, as ``StudyRows.to_dicts`` lays them out (the inputs in ``as_int``
    as integers), ``studies``/``labels`` sequences of the rows' names."""
    cols = {"study": tokens(list(studies))}
    if labels is not None:
        cols["label"] = tokens(list(labels))
    for name, arr in arrays.items():
        cols[name] = float_tokens(arr)
    for c, arr in inputs.items():
        arr = np.asarray(arr, float)
        cols[c] = tokens(arr.astype(np.int64).tolist()) if c in as_int else float_tokens(arr)
    return cols


def study_rows_chunks(rows, count_columns, chunk: int = 100_000):
    """The JSON array of a ``results.StudyRows`` as bytes pieces (``[``, rows, ``]``), ``chunk`` rows
    at a time so that a million studies never exist as Python objects all at once."""
    n = len(rows)
    as_int = whole_counts(rows._inputs, count_columns)
    yield b"["
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        cols = study_columns(rows._studies[a:b], None if rows._labels is None else rows._labels[a:b],
                             {k: np.asarray(v)[a:b] for k, v in rows._arrays.items()},
                             {k: np.asarray(v)[a:b] for k, v in rows._inputs.items()}, as_int)
        body = b",".join(objects(cols, b - a))
        yield body if a == 0 else b"," + body
    yield b"]"


__all__ = ["tokens", "float_tokens", "objects", "study_columns", "study_rows_chunks", "whole_counts"]
