"""``--by``: pool every group of rows separately, all groups in one vectorised fit (``core``).

The result is a ``BatchResult``: per-group arrays that yield a ``MetaResult`` per group on access,
and JSON lines straight from the arrays, so ten thousand meta-analyses cost milliseconds each
to neither fit nor print.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
import numpy as np

from . import core
from .effects import escalc
from ..errors import InputError
from .models import normalise_method, rma, study_results
from ..results import MetaResult, _json_floats

SCALARS = ("estimate", "se", "ci_low", "ci_high", "pi_low", "pi_high", "tau2", "tau2_ci_low", "tau2_ci_high",
           "q", "q_p", "i2", "h2", "stat", "p")


class BatchResult(Sequence):
    """Results of many meta-analyses, one per group, in order of the groups' first appearance."""

    def __init__(self, es, method, ci, pi, level, groups, gid, arrays, weights, notes, df):
        self.es, self.method, self.ci, self.pi, self.level = es, method, ci, pi, level
        self.groups = groups
        self._order = np.argsort(gid, kind="stable")
        counts = np.bincount(gid, minlength=len(groups))
        self._counts = counts
        self._starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int)
        self._arrays = arrays  # name -> array per group (NaN where a group could not be fitted)
        self._weights = weights  # per row of es, percent of its group
        self._notes = notes  # per group tuple of str
        self._df = df

    def __len__(self):
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
        a = {name: float(arr[j]) for name, arr in self._arrays.items()}
        random = self.method != "FE"
        return MetaResult(
            measure=self.es.measure, method=self.method, ci_method=self.ci, pi_method=self.pi if random else "none",
            scale=self.es.scale, k=int(self._counts[j]), tau=float(np.sqrt(a["tau2"])), q_df=max(int(self._counts[j]) - 1, 0),
            df=None if self._df is None or not np.isfinite(self._df[j]) else float(self._df[j]),
            studies=study_results(sub, self._weights[idx], self.level), level=self.level, group=str(self.groups[j]),
            notes=self._notes[j], **a)

    def json_lines(self):
        """One compact JSON object per group (the CLI's --by output), built from the arrays."""
        es, order = self.es, self._order
        cols = {"study": [es.studies[i] for i in order], "yi": _json_floats(es.yi[order]),
                "vi": _json_floats(es.vi[order]), "weight": _json_floats(self._weights[order])}
        for c, arr in es.table.columns.items():
            if c not in cols:
                arr = arr[order]
                whole = c.startswith(("events_", "n_")) and bool(np.all(arr == np.floor(arr)))
                cols[c] = arr.astype(np.int64).tolist() if whole else _json_floats(arr)
        names = list(cols)
        study_rows = [dict(zip(names, row)) for row in zip(*cols.values())]
        scal = {name: _json_floats(arr) for name, arr in self._arrays.items()}
        dfs = None if self._df is None else _json_floats(self._df)
        stat_name = "z" if self._df is None else "t"
        head = {"measure": es.measure, "method": self.method, "ci_method": self.ci,
                "pi_method": self.pi if self.method != "FE" else "none", "scale": es.scale, "level": self.level}
        encode = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode
        starts, counts = self._starts.tolist(), self._counts.tolist()
        for j, group in enumerate(self.groups):
            k = counts[j]
            obj = {"group": str(group), **head, "k": k}
            for name in ("estimate", "se", "ci_low", "ci_high", "pi_low", "pi_high", "tau2", "tau2_ci_low",
                         "tau2_ci_high"):
                obj[name] = scal[name][j]
            obj["tau"] = None if obj["tau2"] is None else obj["tau2"] ** 0.5
            obj.update(q=scal["q"][j], q_df=max(k - 1, 0), q_p=scal["q_p"][j], i2=scal["i2"][j], h2=scal["h2"][j])
            obj[stat_name] = scal["stat"][j]
            if dfs is not None:
                obj["df"] = dfs[j]
            obj["p"] = scal["p"][j]
            obj["studies"] = study_rows[starts[j]: starts[j] + k]
            obj["notes"] = list(self._notes[j])
            yield encode(obj)


def pool_groups(table, by, measure, method="REML", ci="wald", pi="t", level=0.95, cc=0.5) -> BatchResult:
    """Pool every group of rows (values of column ``by``) separately.

    Groups too small for the method are answered with NaN (null in JSON) and a note, never dropped.
    MH and Peto are fitted group by group (they have no vectorised form here).
    """
    method = normalise_method(method)
    all_keys = table.column(by)
    groups = list(dict.fromkeys(all_keys))
    lookup = {x: j for j, x in enumerate(groups)}
    es = escalc(table, measure, cc=cc)
    keys = es.table.column(by) if es.k != table.k else all_keys
    gid = np.fromiter((lookup[x] for x in keys), dtype=np.intp, count=len(keys))
    G = len(groups)
    counts = np.bincount(gid, minlength=G)
    notes = _group_notes(table, es, all_keys, keys, groups, lookup)
    need = 2 if method in core.TAU2_METHODS or ci == "hksj" else 1
    if method in ("MH", "PETO") or method.startswith("GLMM"):  # GLMMs: one likelihood fit per group
        return _fit_each(es, method, ci, pi, level, groups, gid, notes, need)
    ok = counts >= need
    for j in np.flatnonzero(~ok):
        notes[j] += (f"method {method} needs at least {need} studies, found {counts[j]}",)
    okg = np.flatnonzero(ok)
    remap = np.full(G, -1, dtype=np.intp)
    remap[okg] = np.arange(len(okg))
    rows = np.flatnonzero(ok[gid])
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
    return BatchResult(es, method, ci, pi, level, groups, gid, arrays, weights, [tuple(n) for n in notes], df)


def _group_notes(table, es, all_keys, keys, groups, lookup):
    """Per group: the studies dropped (double zeros) and those given a zero-cell increment."""
    notes = [() for _ in groups]
    for study, reason in es.dropped:
        j = lookup[all_keys[table.studies.index(study)]]
        notes[j] += (f"dropped {study}: {reason}",)
    if es.corrected:
        hit = {}
        for i in np.flatnonzero(es.corrected):
            hit.setdefault(lookup[keys[i]], []).append(es.studies[i])
        for j, names in hit.items():
            notes[j] += (f"{es.cc:g} added to every cell of studies with a zero cell: {', '.join(names)}",)
    return [list(n) for n in notes]


def _fit_each(es, method, ci, pi, level, groups, gid, notes, need):
    G = len(groups)
    arrays = {name: np.full(G, np.nan) for name in SCALARS}
    weights = np.full(es.k, np.nan)
    for j in range(G):
        idx = np.flatnonzero(gid == j)
        try:
            r = rma(es.subset(idx), method=method, ci=ci, pi=pi, level=level)
        except InputError as exc:
            notes[j] += (exc.message,)
            continue
        for name in SCALARS:
            arrays[name][j] = getattr(r, name)
        by_study = {s.study: s.weight for s in r.studies}  # Peto may leave out studies with V = 0
        weights[idx] = [by_study.get(es.studies[i], np.nan) for i in idx]
    return BatchResult(es, method, ci, pi, level, groups, gid, arrays, weights, [tuple(n) for n in notes], None)

