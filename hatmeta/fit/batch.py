"""``--by``: pool every group of rows separately, all groups in one vectorised fit (``core``).

The result is a ``BatchResult``: per-group arrays that yield a ``MetaResult`` per group on access,
and JSON lines straight from the arrays, so ten thousand meta-analyses cost milliseconds each
to neither fit nor print.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..gc_pause import gc_paused
from ..io.trial_table import COUNT_COLUMNS
from ..json_columns import whole_counts
from ..precision import dump_lines, json_floats as _json_floats, plain, q, quantised
from ..results import NATURAL_BLOCK, MetaResult
from . import core
from .effects import escalc
from .models import normalise_method, rma, study_results

if TYPE_CHECKING:
    import pandas as pd

    from ..io.trial_table import TrialTable
    from .effects import EffectSizes

SCALARS = ("estimate", "se", "ci_low", "ci_high", "pi_low", "pi_high", "tau2", "tau2_ci_low", "tau2_ci_high",
           "q", "q_p", "i2", "h2", "stat", "p")


class BatchResult(Sequence):
    """Results of many meta-analyses, one per group, in order of the groups' first appearance."""

    def __init__(self, es: EffectSizes, method: str, ci: str, pi: str, level: float, groups: Sequence[Any],
                 gid: np.ndarray, arrays: dict[str, np.ndarray], weights: np.ndarray, notes: dict[int, tuple[str, ...]],
                 df: np.ndarray | None, errors: Sequence[str | None] | None = None) -> None:
        self.es, self.method, self.ci, self.pi, self.level = es, method, ci, pi, level
        self.groups = groups
        self._order = np.argsort(gid, kind="stable")
        counts = np.bincount(gid, minlength=len(groups))
        self._counts = counts
        self._starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int)
        self._arrays = arrays  # name -> array per group (NaN where a group could not be fitted)
        self._weights = weights  # per row of es, percent of its group
        self._notes = notes  # group index -> tuple of str (groups without notes are absent)
        self._df = df
        # Per group: None, or the one-line error of the bad row (or undefined effect) that failed it.
        self.errors = list(errors) if errors is not None else [None] * len(groups)

    @property
    def failed(self) -> list[tuple[Any, str]]:
        """(group, error) of every failed group, in group order."""
        return [(g, e) for g, e in zip(self.groups, self.errors) if e is not None]

    def __len__(self) -> int:
        return len(self.groups)

    def _rows(self, j):
        return self._order[self._starts[j]: self._starts[j] + self._counts[j]]

    def __getitem__(self, j):
        if isinstance(j, slice):
            return [self[i] for i in range(*j.indices(len(self)))]
        if j < 0:
            j += len(self)
        idx = self._rows(j)
        sub = self.es.subset(idx)
        a: dict[str, Any] = {name: float(arr[j]) for name, arr in self._arrays.items()}
        random = self.method != "FE"
        return MetaResult(
            measure=self.es.measure, method=self.method, ci_method=self.ci, pi_method=self.pi if random else "none",
            scale=self.es.scale, k=int(self._counts[j]), tau=float(np.sqrt(a["tau2"])),
            q_df=max(int(self._counts[j]) - 1, 0),
            df=None if self._df is None or not np.isfinite(self._df[j]) else float(self._df[j]),
            studies=study_results(sub, self._weights[idx], self.level), level=self.level, group=str(self.groups[j]),
            notes=self._notes.get(j, ()), extra={} if self.errors[j] is None else {"error": self.errors[j]}, **a)

    def to_frame(self) -> pd.DataFrame:
        """One row per group (pandas): group, k, the pooled numbers (analysis scale) and the notes."""
        import pandas as pd

        frame = pd.DataFrame({"group": [str(g) for g in self.groups], "k": self._counts.astype(int),
                              **{name: self._arrays[name] for name in SCALARS}})
        if self._df is not None:
            frame["df"] = self._df
        frame.insert(2, "measure", self.es.measure)
        frame.insert(3, "method", self.method)
        frame["notes"] = ["; ".join(self._notes.get(j, ())) for j in range(len(self.groups))]
        frame["error"] = self.errors
        return frame

    def _repr_html_(self) -> str:
        return self.to_frame()._repr_html_()  # type: ignore[operator]  # pandas-stubs omit _repr_html_

    def to_dict(self) -> dict:
        """The JSON contract of a batch: ``groups``, one object per group exactly as ``--by --format json``
        writes each line (the group's pooled result with its studies, analysis scale)."""
        import orjson

        return {"groups": [orjson.loads(line) for block in self.json_blocks() for line in block.splitlines()]}

    def summary(self) -> str:
        """Text: how many groups were pooled and failed, then the first groups' pooled estimates."""
        from ..summary import batch_text

        return batch_text(self)

    def __str__(self) -> str:
        return self.summary()

    def json_lines(self) -> Iterator[str]:
        """One compact JSON object per group (the CLI's --by output), built from the arrays; str lines."""
        for block in self.json_blocks():
            yield from block.decode().split("\n")[:-1]

    def json_blocks(self, groups_per_block: int = 20_000, more: Sequence[Mapping[str, Any]] | None = None,
                    ) -> Iterator[bytes]:
        """The JSON lines of ``json_lines`` as UTF-8 bytes, each line ending in a newline, a block of
        up to ``groups_per_block`` groups at a time (memory bounded by one block's dicts). ``more``: a
        dict per group (tests, influence rows, ...) whose keys join that group's object."""
        columns = self.es.table.columns
        extra_cols = [c for c in columns if c not in ("study", "yi", "vi", "weight")]
        # Count columns written as whole numbers: decided on the whole column, once (as a single fit's JSON).
        as_int = whole_counts({c: columns[c] for c in extra_cols}, COUNT_COLUMNS)
        for a in range(0, len(self.groups), groups_per_block):
            yield self._json_block(a, min(a + groups_per_block, len(self.groups)), extra_cols, as_int, more)

    @gc_paused()
    def _json_block(self, a, b, extra_cols, as_int, more=None) -> bytes:
        """JSON lines of groups a..b-1. The objects are made column-wise by ``map(dict, ...)`` and
        encoded by one writer (``precision.dump_lines``): a Python loop per group cost as much as the fit."""
        es, order, starts, counts = self.es, self._order, self._starts, self._counts
        stat_name = "z" if self._df is None else "t"
        head = {"measure": es.measure, "method": self.method, "ci_method": self.ci,
                "pi_method": self.pi if self.method != "FE" else "none", "scale": es.scale, "level": q(self.level)}
        lo, hi = int(starts[a]), int(starts[b - 1] + counts[b - 1])
        rows = order[lo:hi]
        cols = {"study": list(map(es.studies.__getitem__, rows.tolist())), "yi": _json_floats(es.yi[rows]),
                "vi": _json_floats(es.vi[rows]), "weight": _json_floats(self._weights[rows])}
        for c in extra_cols:
            column = es.table.columns[c][rows]
            cols[c] = column.astype(np.int64).tolist() if c in as_int else _json_floats(column)
        # Keys in sorted order (as the writer sorts them), so that it need not sort 10^5 small dicts.
        study_keys = tuple(sorted(cols))
        study_rows = list(map(dict, map(zip, repeat(study_keys), zip(*(cols[c] for c in study_keys)))))
        k = counts[a:b].tolist()
        per_group = {"group": [str(g) for g in self.groups[a:b]], "k": k}
        for name in ("estimate", "se", "ci_low", "ci_high", "pi_low", "pi_high", "tau2", "tau2_ci_low",
                     "tau2_ci_high", "q", "q_p", "i2", "h2", "p"):
            per_group[name] = _json_floats(self._arrays[name][a:b])
        with np.errstate(invalid="ignore"):
            per_group["tau"] = _json_floats(np.sqrt(self._arrays["tau2"][a:b]))
        per_group["q_df"] = np.maximum(counts[a:b] - 1, 0).tolist()
        per_group[stat_name] = _json_floats(self._arrays["stat"][a:b])
        if self._df is not None:
            per_group["df"] = _json_floats(self._df[a:b])
        per_group["studies"] = [study_rows[o: o + n] for o, n in zip((starts[a:b] - lo).tolist(), k)]
        empty: list = []
        notes = [empty] * (b - a)
        for j, group_notes in self._notes.items():
            if a <= j < b:
                notes[j - a] = list(group_notes)
        per_group["notes"] = notes
        columns = {**{name: repeat(value) for name, value in head.items()}, **per_group}
        names = tuple(sorted(columns))
        objs = list(map(dict, map(zip, repeat(names), zip(*(columns[name] for name in names)))))
        for j in range(a, b):
            if self.errors[j] is not None:
                objs[j - a] = dict(sorted({**objs[j - a], "error": self.errors[j]}.items()))
        if es.measure in NATURAL_BLOCK:  # back-transformed proportions or correlations, as a single fit's JSON
            for j in range(a, b):
                natural = quantised(self[j].to_dict()["natural"])
                objs[j - a] = dict(sorted({**objs[j - a], "natural": dict(sorted(natural.items()))}.items()))
        if more is not None:  # their floats rounded by the policy; the merged keys sorted by the writer
            objs = [{**obj, **plain(extra)} for obj, extra in zip(objs, more[a:b])]
            return dump_lines(objs)
        return dump_lines(objs, keys_sorted=True)


def pool_groups(table: TrialTable | None, by: str, measure: str, method: str = "REML", ci: str = "wald", pi: str = "t",
                level: float = 0.95, cc: float = 0.5, input_level: float = 0.95, scale: str | None = None,
                failed: dict[Any, Any] | None = None, group_keys: Sequence[Any] | None = None,
                strict: bool = False) -> BatchResult:
    """Pool every group of rows (values of column ``by``) separately.

    Groups too small for the method are answered with NaN (null in JSON) and a note, never dropped.
    ``failed`` maps a group to the error of its first bad row (set aside by the reader); such a group,
    and one whose rows the effect sizes reject, is answered with NaN and that error (in its notes and
    in ``errors``), and the other groups are pooled. ``group_keys`` (the key of every row read, bad
    ones included) sets the order of the groups; by default the order of first appearance in ``table``.
    ``strict``: an effect that cannot be computed raises instead of failing its group.
    MH and Peto are fitted group by group (they have no vectorised form here).
    """
    method = normalise_method(method)
    failed = dict(failed or {})
    all_keys = () if table is None else table.column(by)
    groups, first_gid = factorize(all_keys if group_keys is None else group_keys)
    lookup = None
    read_notes = {}
    if table is not None and (table.given or table.dropped):
        lookup = {x: j for j, x in enumerate(groups)}
        table, read_notes = _labels_within_groups(table, all_keys, groups, lookup, by)
    G = len(groups)
    if table is not None and failed:
        keep = [i for i, x in enumerate(all_keys) if x not in failed]
        table = table.subset(keep) if len(keep) < table.k else table
        all_keys = tuple(all_keys[i] for i in keep)
    es = None
    while table is not None and table.k:
        try:
            es = escalc(table, measure, cc=cc, input_level=input_level, scale=scale)
            break
        except InputError as exc:
            # A row whose effect is undefined fails its own group; with no line to go by, the whole run.
            row = {line: i for i, line in enumerate(table.lines)}.get(exc.line) if exc.line is not None else None
            if row is None or strict:
                raise
            bad = all_keys[row]
            failed[bad] = str(exc)
            keep = [i for i, x in enumerate(all_keys) if x != bad]
            table, all_keys = table.subset(keep), tuple(all_keys[i] for i in keep)
    if es is None:  # every group failed
        from ..io.trial_table import TrialTable

        empty = TrialTable(path="", layout="yi_vi", studies=(), columns={"yi": np.zeros(0), "vi": np.zeros(0)})
        es = escalc_empty(empty, measure, cc)
        all_keys = ()
    keys = es.table.column(by) if es.k != len(all_keys) else all_keys
    if not failed and es.k == len(first_gid):
        gid = first_gid  # every row read was kept
    else:
        lookup = {x: j for j, x in enumerate(groups)}
        gid = np.fromiter(map(lookup.__getitem__, keys), dtype=np.intp, count=len(keys))
    counts = np.bincount(gid, minlength=G)
    notes = _group_notes(table, es, all_keys, keys, groups, gid) if table is not None else defaultdict(list)
    for j, extra_notes in read_notes.items():
        notes[j] = list(extra_notes) + notes[j]
    errors = [None] * G
    if failed and lookup is None:
        lookup = {x: j for j, x in enumerate(groups)}
    for key, message in failed.items():
        assert lookup is not None  # built above whenever there are failed groups
        j = lookup[key]
        errors[j] = message
        notes[j].append(message)
    need = 2 if method in core.TAU2_METHODS or ci == "hksj" else 1
    if method in ("MH", "PETO") or method.startswith("GLMM"):  # GLMMs: one likelihood fit per group
        return _fit_each(es, method, ci, pi, level, groups, gid, notes, need, errors)
    ok = counts >= need
    for j in np.flatnonzero(~ok):
        if errors[j] is None:
            notes[j].append(f"method {method} needs at least {need} studies, found {counts[j]}")
    okg = np.flatnonzero(ok)
    remap = np.full(G, -1, dtype=np.intp)
    remap[okg] = np.arange(len(okg))
    rows = np.flatnonzero(ok[gid])
    if len(rows) == len(gid):
        g = core.Groups(es.yi, es.vi, remap[gid], len(okg))
    else:
        g = core.Groups(es.yi[rows], es.vi[rows], remap[gid[rows]], len(okg))
    with np.errstate(invalid="ignore", divide="ignore"):
        f = core.fit(g, method=method, ci=ci, pi=pi, level=level)
    arrays = {}
    for name in SCALARS:
        arr = np.full(G, np.nan)
        arr[okg] = getattr(f, name)
        arrays[name] = arr
    if method == "FE":
        arrays["pi_low"][:] = np.nan
        arrays["pi_high"][:] = np.nan
    weights = np.full(es.k, np.nan)
    weights[rows] = f.weights
    df = None
    if f.df is not None:
        df = np.full(G, np.nan)
        df[okg] = f.df
    return BatchResult(es, method, ci, pi, level, groups, gid, arrays, weights, {j: tuple(n) for j, n in notes.items()},
                       df, errors)


def escalc_empty(table: TrialTable, measure: str, cc: float) -> EffectSizes:
    """Effect sizes of no rows (every group failed), in the measure asked for."""
    from .effects import LOG_MEASURES, EffectSizes, normalise_measure

    m = normalise_measure(measure)
    return EffectSizes(m, "log" if m in LOG_MEASURES else "identity", np.zeros(0), np.zeros(0), table, cc=cc)


def _labels_within_groups(table, keys, groups, lookup, by):
    """Study names need to be unique only within a group (replicates of a simulation reuse s1..s6):
    labels are disambiguated group by group, and reading notes (repeats, incomplete rows dropped)
    go to the groups they concern. Returns (table, {group index: notes})."""
    from dataclasses import replace

    from ..io.trial_table import label_duplicates

    notes: dict = {}
    for study, line, reason, extra in table.dropped:
        j = lookup.get(extra.get(by.strip().lower()))
        msg = f"left out {study} (line {line}; --drop-incomplete): {reason}"
        if j is None:  # its group has no complete row: say so in the first group
            msg += f" (group {extra.get(by.strip().lower())!r} has no complete row)"
            j = 0
        notes.setdefault(j, []).append(msg)
    if not table.given:
        return replace(table, notes=(), dropped=()), notes
    labels = list(table.given)
    rows: dict = {}
    for i, key in enumerate(keys):
        rows.setdefault(lookup[key], []).append(i)
    for j, idx in rows.items():
        new, dup = label_duplicates([table.given[i] for i in idx])
        for i, label in zip(idx, new):
            labels[i] = label
        if dup:
            notes.setdefault(j, []).extend(dup)
    return replace(table, studies=tuple(labels), notes=(), dropped=()), notes


def _group_notes(table, es, all_keys, keys, groups, gid):
    """Per group index: the studies dropped (double zeros) and those given a zero-cell increment."""
    notes = defaultdict(list)
    if es.dropped:
        lookup = {x: j for j, x in enumerate(groups)}
        for (study, reason), pos in zip(es.dropped, _dropped_rows(table, es)):  # in table order
            notes[lookup[all_keys[pos]]].append(f"dropped {study}: {reason}")
    if es.corrected:
        hit: dict[int, list[str]] = {}
        for i in np.flatnonzero(es.corrected):
            hit.setdefault(int(gid[i]), []).append(es.studies[i])
        for j, names in hit.items():
            notes[j].append(f"{es.cc:g} added to every cell of studies with a zero cell: {', '.join(names)}")
    return notes


def _dropped_rows(table, es):
    """Positions in ``table`` of the rows escalc dropped, in table order: the rows whose line the
    effect sizes' table lacks. By name only where lines do not tell rows apart; the name's next
    occurrence would otherwise go to the wrong group (names repeat across groups: s1, s2, ...)."""
    lines = np.asarray(table.lines)
    if len(lines) == table.k and len(np.unique(lines)) == table.k:
        gone = np.flatnonzero(~np.isin(lines, np.asarray(es.table.lines)))
        if len(gone) == len(es.dropped):
            return gone.tolist()
    out, pos = [], 0
    for study, _ in es.dropped:
        pos = table.studies.index(study, pos)
        out.append(pos)
        pos += 1
    return out


def factorize(keys: Sequence[Any]) -> tuple[list[Any], np.ndarray]:
    """(distinct keys in order of first appearance, index of each key among them).

    Rows of a group usually come together: the runs of equal keys are found at C speed and only
    their first keys are hashed; if a key comes back after another, every key is hashed."""
    n = len(keys)
    if n == 0:
        return [], np.zeros(0, dtype=np.intp)
    a = np.empty(n, dtype=object)
    a[:] = keys
    starts = np.flatnonzero(np.concatenate([[True], a[1:] != a[:-1]]))
    firsts = a[starts].tolist()
    groups = list(dict.fromkeys(firsts))
    if len(groups) == len(firsts):
        return groups, np.repeat(np.arange(len(groups), dtype=np.intp), np.diff(np.append(starts, n)))
    lookup = {x: j for j, x in enumerate(groups)}
    return groups, np.fromiter(map(lookup.__getitem__, keys), dtype=np.intp, count=n)


def _fit_each(es, method, ci, pi, level, groups, gid, notes, need, errors):
    G = len(groups)
    arrays = {name: np.full(G, np.nan) for name in SCALARS}
    weights = np.full(es.k, np.nan)
    # Rows of each group from one stable sort (a scan of every row per group would be quadratic).
    order = np.argsort(gid, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(gid, minlength=G))])
    for j in range(G):
        idx = order[bounds[j]: bounds[j + 1]]
        if errors[j] is not None:
            continue
        try:
            r = rma(es.subset(idx), method=method, ci=ci, pi=pi, level=level)
        except InputError as exc:
            notes[j].append(exc.message)
            continue
        for name in SCALARS:
            arrays[name][j] = getattr(r, name)
        by_study = {s.study: s.weight for s in r.studies}  # Peto may leave out studies with V = 0
        weights[idx] = [by_study.get(es.studies[i], np.nan) for i in idx]
    return BatchResult(es, method, ci, pi, level, groups, gid, arrays, weights, {j: tuple(n) for j, n in notes.items()},
                       None, errors)
