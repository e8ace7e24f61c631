"""Immutable results of a meta-analysis. ``to_dict()`` is the JSON contract.

All estimates are on the analysis scale: log for ratio measures (RR, OR, IRR, PETO), identity
otherwise. ``scale`` says which; ``MetaResult.natural()`` back-transforms for display.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast, overload

import numpy as np

from .io.trial_table import COUNT_COLUMNS
from .numbers import level_text

if TYPE_CHECKING:
    import pandas as pd

def _plain(value: Any) -> Any:
    """JSON-ready copy: dataclasses to dicts, tuples to lists, NaN/inf to None."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):  # NumPy scalar
        return _plain(value.item())
    return value


class _Record:
    """Base of every result: ``to_dict()`` (the JSON contract), ``to_frame()``, ``summary()`` and
    ``_repr_html_`` (a notebook shows the summary). Result types with rows override ``_frame_rows``."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]  # subclasses are dataclasses

    def _frame_rows(self) -> list[dict[str, Any]]:
        """The rows of ``to_frame()``: one row of the scalar fields unless a result has its own rows."""
        return [{k: v for k, v in self.to_dict().items() if not isinstance(v, (dict, list))}]

    def to_frame(self) -> pd.DataFrame:
        """The result as a pandas DataFrame (analysis scale): one row per study or subgroup where the
        result has such rows, else one row of its scalar fields."""
        import pandas as pd

        return pd.DataFrame(self._frame_rows())

    def summary(self) -> str:
        """Plain-text summary: one line per scalar field (analysis scale)."""
        from .summary import record_text

        return record_text(self)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(self.summary())}</pre>"


@dataclass(frozen=True)
class StudyResult(_Record):
    """One study: its effect ``yi`` and sampling variance ``vi`` (analysis scale), weight in percent."""

    study: str
    yi: float
    vi: float
    weight: float
    ci_low: float
    ci_high: float
    inputs: dict[str, Any] = field(default_factory=dict)
    label: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"study": self.study}
        if self.label is not None:
            out["label"] = self.label
        out.update(yi=_plain(self.yi), vi=_plain(self.vi), weight=_plain(self.weight),
                   ci_low=_plain(self.ci_low), ci_high=_plain(self.ci_high))
        out.update(_plain(self.inputs))
        return out


class StudyRows(Sequence["StudyResult"]):
    """The studies of a fit, stored as arrays; items are StudyResult built on access.

    Lazy because a fit of 500,000 studies should not build 500,000 objects that nobody reads.
    """

    def __init__(self, studies: Iterable[str], yi: Any, vi: Any, weight: Any, ci_low: Any, ci_high: Any,
                 inputs: Mapping[str, Any] | None = None, labels: Iterable[str | None] | None = None) -> None:
        self._studies = tuple(studies)
        self._arrays = {"yi": yi, "vi": vi, "weight": weight, "ci_low": ci_low, "ci_high": ci_high}
        self._inputs: dict[str, Any] = dict(inputs or {})
        self._labels = None if labels is None else tuple(labels)

    def __len__(self) -> int:
        return len(self._studies)

    @overload
    def __getitem__(self, i: int) -> StudyResult: ...

    @overload
    def __getitem__(self, i: slice) -> tuple[StudyResult, ...]: ...

    def __getitem__(self, i: int | slice) -> StudyResult | tuple[StudyResult, ...]:
        if isinstance(i, slice):
            return tuple(self[j] for j in range(*i.indices(len(self))))
        a = self._arrays
        return StudyResult(study=self._studies[i], yi=float(a["yi"][i]), vi=float(a["vi"][i]),
                           weight=float(a["weight"][i]), ci_low=float(a["ci_low"][i]),
                           ci_high=float(a["ci_high"][i]),
                           inputs={c: _given(c, v[i]) for c, v in self._inputs.items()},
                           label=None if self._labels is None else self._labels[i])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and len(self) == len(other) and all(a == b for a, b in zip(self, other))

    def __repr__(self) -> str:
        return f"StudyRows({len(self)} studies)"

    @property
    def studies(self) -> tuple[str, ...]:
        """Study ids, in fit order."""
        return self._studies

    @property
    def labels(self) -> tuple[str | None, ...] | None:
        """Display labels (None where the table had no label column)."""
        return self._labels

    @property
    def arrays(self) -> dict[str, Any]:
        """Per-study arrays: yi, vi (analysis scale), weight (percent), ci_low, ci_high."""
        return self._arrays

    @property
    def inputs(self) -> dict[str, Any]:
        """The input columns as given, one array per column."""
        return self._inputs

    def to_dicts(self) -> list[dict[str, Any]]:
        """JSON-ready rows, built column-wise (fast for very large k)."""
        cols: dict[str, list[Any]] = {"study": list(self._studies)}
        if self._labels is not None:
            cols["label"] = list(self._labels)
        for name, arr in self._arrays.items():
            cols[name] = _json_floats(arr)
        for c, arr in self._inputs.items():
            arr = np.asarray(arr, float)
            as_int = c in COUNT_COLUMNS and bool(np.all(arr == np.floor(arr)))
            cols[c] = arr.astype(np.int64).tolist() if as_int else _json_floats(arr)
        names = list(cols)
        return [dict(zip(names, row)) for row in zip(*cols.values())]


def _json_floats(arr: Any) -> list[float | None]:
    """Floats for JSON, NaN and infinities as None."""
    arr = np.asarray(arr, float)
    if np.isfinite(arr).all():
        return arr.tolist()  # type: ignore[no-any-return]
    return [x if math.isfinite(x) else None for x in arr.tolist()]


def _given(column: str, x: Any) -> int | float:
    x = float(x)
    return int(x) if column in COUNT_COLUMNS and x.is_integer() else x


@dataclass(frozen=True)
class SensitivityRow(_Record):
    """One fit of a leave-one-out (``omitted``) or cumulative (``added``) sequence."""

    study: str
    k: int
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    tau2: float
    q: float
    i2: float
    p: float


@dataclass(frozen=True)
class SubgroupResult(_Record):
    group: str
    k: int
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    tau2: float
    q: float
    i2: float


@dataclass(frozen=True)
class SubgroupTest(_Record):
    """Cochrane's test for subgroup differences: Q between subgroup estimates (df = groups - 1)."""

    q: float
    df: int
    p: float


@dataclass(frozen=True)
class Coefficient(_Record):
    """A meta-regression coefficient; ``stat`` is z (Wald) or t (Knapp-Hartung), per ``test``."""

    name: str
    estimate: float
    se: float
    stat: float
    p: float
    ci_low: float
    ci_high: float
    test: str = "z"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "estimate": _plain(self.estimate), "se": _plain(self.se),
                self.test: _plain(self.stat), "p": _plain(self.p), "ci_low": _plain(self.ci_low),
                "ci_high": _plain(self.ci_high)}


@dataclass(frozen=True)
class MetaRegression(_Record):
    coefficients: tuple[Coefficient, ...]
    tau2: float
    qm: float
    qm_df: object  # m (chi-square) or [m, k - p] (F, with Knapp-Hartung)
    qm_p: float
    qe: float
    qe_df: int
    qe_p: float
    r2: float
    test: str = "z"
    df: int | None = None
    method: str = "REML"  # tau^2 estimator of the model with moderators (FE: none)
    level: float = 0.95  # of the coefficients' intervals
    notes: tuple[str, ...] = ()  # studies left out of the model (missing moderator values)


@dataclass(frozen=True)
class EggerTest(_Record):
    """Classical Egger test: intercept of the regression of yi/se on 1/se (t on k - 2 df)."""

    intercept: float
    se: float
    t: float
    df: int
    p: float
    slope: float
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        # ``statistic`` names t as every small-study test does (``--small-study peters`` etc.).
        out: dict[str, Any] = {f.name: _plain(getattr(self, f.name)) for f in fields(self)}
        out["statistic"] = out["t"]
        return out


@dataclass(frozen=True)
class MetaResult(_Record):
    """A fitted common- or random-effects meta-analysis (analysis scale)."""

    measure: str
    method: str
    ci_method: str
    pi_method: str
    scale: str
    k: int
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    pi_low: float
    pi_high: float
    tau2: float
    tau2_ci_low: float
    tau2_ci_high: float
    tau: float
    q: float
    q_df: int
    q_p: float
    i2: float
    h2: float
    stat: float
    p: float
    df: float | None
    studies: tuple[StudyResult, ...] | StudyRows
    level: float = 0.95
    notes: tuple[str, ...] = ()
    leave_one_out: tuple[SensitivityRow, ...] | None = None
    cumulative: tuple[SensitivityRow, ...] | None = None
    subgroups: tuple[SubgroupResult, ...] | None = None
    subgroup_test: SubgroupTest | None = None
    meta_regression: MetaRegression | None = None
    egger: EggerTest | None = None
    group: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Studies kept out of the pooling because the measure is undefined for them (no events, or only
    # events, in both arms for RR/OR/IRR): dicts of study, label, reason and the inputs as given, so
    # that forest plots and tables list them as RevMan's 'Not estimable' rows and count their participants.
    not_estimable: tuple[dict[str, Any], ...] = ()
    # The effect sizes the model was fitted on, for the post-fit methods (hatmeta.methods: trim_fill(res),
    # leave_one_out(res), ...); not part of the JSON contract.
    effects: Any = field(default=None, repr=False, compare=False)

    @property
    def is_ratio(self) -> bool:
        return self.scale == "log"

    @property
    def stat_name(self) -> str:
        return "z" if self.df is None else "t"

    def natural(self, x: float) -> float:
        """Back-transform a value on the analysis scale to the natural scale (exp for log; inverse
        logit, tanh and metafor's transf.ipft.hm for the logit, Fisher-z and Freeman-Tukey scales)."""
        if self.scale == "identity":
            return x
        if self.is_ratio:
            return math.exp(x)
        return float(back_transform(x, self.scale, self._n_hm))

    @cached_property
    def _n_hm(self) -> float | None:
        """Harmonic mean of the studies' n (the Freeman-Tukey back-transform's n)."""
        if isinstance(self.studies, StudyRows):
            n = self.studies.inputs.get("n")
        else:
            given = [s.inputs.get("n") for s in self.studies]
            n = None if any(x is None for x in given) else given
        return None if n is None or len(n) == 0 else float(1 / np.mean(1 / np.asarray(n, float)))

    def to_dict(self, studies: bool = True) -> dict[str, Any]:
        """The JSON contract; ``studies=False`` leaves the per-study list empty (the CLI writes a
        large one column-wise, hatmeta/json_columns.py)."""
        out: dict[str, Any] = {}
        if self.group is not None:
            out["group"] = self.group
        out.update(measure=self.measure, method=self.method, ci_method=self.ci_method,
                   pi_method=self.pi_method, scale=self.scale, k=self.k, level=self.level)
        for name in ("estimate", "se", "ci_low", "ci_high", "pi_low", "pi_high", "tau2",
                     "tau2_ci_low", "tau2_ci_high", "tau", "q", "q_df", "q_p", "i2", "h2"):
            out[name] = _plain(getattr(self, name))
        out[self.stat_name] = _plain(self.stat)
        if self.df is not None:
            out["df"] = _plain(self.df)
        out["p"] = _plain(self.p)
        if self.measure in NATURAL_BLOCK:
            out["natural"] = {name: _plain(self.natural(getattr(self, name)))
                              for name in ("estimate", "ci_low", "ci_high", "pi_low", "pi_high")}
        out["studies"] = ([] if not studies else self.studies.to_dicts() if isinstance(self.studies, StudyRows)
                          else [s.to_dict() for s in self.studies])
        out["notes"] = list(self.notes)
        if self.leave_one_out is not None:
            out["leave_one_out"] = [_sens(r, "omitted") for r in self.leave_one_out]
        if self.cumulative is not None:
            out["cumulative"] = [_sens(r, "added") for r in self.cumulative]
        if self.subgroups is not None:
            out["subgroups"] = [s.to_dict() for s in self.subgroups]
            out["subgroup_test"] = _plain(self.subgroup_test)
        if self.meta_regression is not None:
            out["meta_regression"] = self.meta_regression.to_dict()
        if self.egger is not None:
            out["egger"] = self.egger.to_dict()
        extra = dict(self.extra)
        per_study = extra.pop("study_annotations", None)  # {study: {field: value}}, joined into each study's row
        if per_study:
            for row in out["studies"]:
                row.update(_plain(per_study.get(row["study"], {})))
        out.update(_plain(extra))
        if self.not_estimable:
            out["not_estimable"] = _plain(self.not_estimable)
        return out

    def summary(self) -> str:
        from .summary import format_result

        return format_result(self)

    def __str__(self) -> str:
        return self.summary()

    def to_frame(self) -> pd.DataFrame:
        """One row per study (pandas): study, yi, vi (analysis scale), weight (percent), ci_low,
        ci_high (analysis scale, at ``level``), then the inputs as given."""
        import pandas as pd

        rows = self.studies.to_dicts() if isinstance(self.studies, StudyRows) else [s.to_dict() for s in self.studies]
        cols = ["study", "yi", "vi", "weight", "ci_low", "ci_high"]
        frame = pd.DataFrame(rows, columns=None if rows else cols)
        return frame[[c for c in cols if c in frame] + [c for c in frame if c not in cols]]

    def summary_frame(self) -> pd.DataFrame:
        """One row per pooled estimate (pandas): the overall one, then each subgroup; analysis scale,
        with ``*_natural`` columns back-transformed (ratios, proportions, correlations)."""
        import pandas as pd

        rows = [dict(analysis="overall", k=self.k, estimate=self.estimate, se=self.se, ci_low=self.ci_low,
                     ci_high=self.ci_high, pi_low=self.pi_low, pi_high=self.pi_high, tau2=self.tau2, i2=self.i2,
                     q=self.q, p=self.p)]
        for g in self.subgroups or ():
            rows.append(dict(analysis=f"subgroup {g.group}", k=g.k, estimate=g.estimate, se=g.se, ci_low=g.ci_low,
                             ci_high=g.ci_high, pi_low=math.nan, pi_high=math.nan, tau2=g.tau2, i2=g.i2, q=g.q,
                             p=math.nan))
        frame = pd.DataFrame(rows)
        for c in ("estimate", "ci_low", "ci_high", "pi_low", "pi_high"):
            frame[c + "_natural"] = [self.natural(x) for x in frame[c]]
        frame.insert(1, "measure", self.measure)
        frame.insert(2, "method", self.method)
        frame.insert(3, "level", self.level)
        return frame

    def _repr_markdown_(self) -> str:
        from .summary import to_markdown

        return (f"**{self.measure}, {self.method}, k = {self.k}**: {self.natural(self.estimate):.4g} "
                f"[{self.natural(self.ci_low):.4g}, {self.natural(self.ci_high):.4g}] ({level_text(self.level)} CI"
                f"{', natural scale' if self.scale != 'identity' else ''})\n\n" + to_markdown(self))

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(self.summary())}</pre>"


@dataclass(frozen=True)
class Sensitivity(_Record):
    """A leave-one-out (``kind="leave_one_out"``: each row omits its ``study``) or cumulative
    (``kind="cumulative"``: each row adds its ``study``, in the order of ``order_by``) sequence of fits
    (analysis scale), as metafor's ``leave1out()`` and ``cumul()``."""

    kind: str
    measure: str
    scale: str
    method: str
    level: float
    rows: tuple[SensitivityRow, ...]
    order_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        key = "omitted" if self.kind == "leave_one_out" else "added"
        return {"kind": self.kind, "measure": self.measure, "scale": self.scale, "method": self.method,
                "level": self.level, "order_by": self.order_by, "rows": [_sens(r, key) for r in self.rows]}

    def _frame_rows(self) -> list[dict[str, Any]]:
        key = "omitted" if self.kind == "leave_one_out" else "added"
        return [{key: r[key], **{k: v for k, v in r.items() if k != key}} for r in self.to_dict()["rows"]]

    def summary(self) -> str:
        from .summary import sensitivity_text

        return sensitivity_text(self)


@dataclass(frozen=True)
class Subgroups(_Record):
    """One model per level of ``by`` (each with its own tau²) and the test for subgroup differences."""

    by: str
    measure: str
    scale: str
    method: str
    level: float
    groups: tuple[SubgroupResult, ...]
    test: SubgroupTest

    def _frame_rows(self) -> list[dict[str, Any]]:
        return [g.to_dict() for g in self.groups]

    def summary(self) -> str:
        from .summary import subgroups_text

        return subgroups_text(self)


@dataclass(frozen=True)
class Influence(_Record):
    """metafor's ``influence()`` diagnostics, one row per study."""

    measure: str
    method: str
    rows: tuple[InfluenceRow, ...]

    def _frame_rows(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.rows]

    def summary(self) -> str:
        from .summary import influence_text

        return influence_text(self)


def _sens(row: SensitivityRow, key: str) -> dict[str, Any]:
    d = row.to_dict()
    d[key] = d.pop("study")
    return d


# Measures whose JSON carries a ``natural`` block (estimate and intervals back-transformed to a
# proportion or a correlation).
NATURAL_BLOCK = ("PR", "PLO", "PFT", "COR", "ZCOR")


def back_transform(x: Any, scale: str, n_hm: float | None = None) -> Any:
    """Analysis scale to natural scale (metafor's transf.exp, transf.ilogit, transf.ztor and
    transf.ipft.hm with the harmonic mean ``n_hm`` of the studies' n)."""
    x = np.asarray(x, float)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if scale == "log":
            return np.exp(x)
        if scale == "logit":
            return 1 / (1 + np.exp(-x))
        if scale == "fisher-z":
            return np.tanh(x)
        if scale == "freeman-tukey":
            n_hm = cast(float, n_hm)  # the caller passes the studies' harmonic mean n on this scale
            s2 = np.sin(2 * x)
            z = 0.5 * (1 - np.sign(np.cos(2 * x)) * np.sqrt(1 - (s2 + (s2 - 1 / s2) / n_hm) ** 2))
            lo = 0.5 * (np.arcsin(np.sqrt(0.0)) + np.arcsin(np.sqrt(1 / (n_hm + 1))))
            hi = 0.5 * (np.arcsin(np.sqrt(n_hm / (n_hm + 1))) + np.arcsin(np.sqrt(1.0)))
            z = np.where(x > hi, 1.0, np.where(x < lo, 0.0, z))
            return z
    return x





# ---------------------------------------------------------------- small-study effects and influence

@dataclass(frozen=True)
class SmallStudyTest(_Record):
    """A test for small-study effects. ``statistic``: t (on ``df``) for the regression tests, Kendall's
    tau for Begg's; ``estimate`` and ``se``: the tested coefficient (analysis scale; log OR for Peters
    and Harbord)."""

    method: str
    statistic: float
    df: int | None
    p: float
    k: int
    estimate: float | None
    se: float | None
    description: str = ""
    warning: str | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "statistic": _plain(self.statistic)}
        if self.df is not None:
            out["df"] = self.df
        out.update(p=_plain(self.p), k=self.k)
        if self.estimate is not None:
            out.update(estimate=_plain(self.estimate), se=_plain(self.se))
        out.update(description=self.description, warning=self.warning, notes=list(self.notes))
        return out


@dataclass(frozen=True)
class PetPeese(_Record):
    """PET and PEESE limit estimates (analysis scale) and the conditional choice between them."""

    pet: dict[str, Any]
    peese: dict[str, Any]
    chosen: str
    estimate: float
    ci_low: float
    ci_high: float
    k: int
    warning: str | None = None


@dataclass(frozen=True)
class TrimFill(_Record):
    """Trim-and-fill: ``k0`` studies filled on ``side``; the refitted model on all k + k0 studies
    (analysis scale, Wald interval); the filled studies' effects and variances."""

    k0: int
    side: str
    estimator: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p: float
    tau2: float
    filled_yi: tuple[float, ...]
    filled_vi: tuple[float, ...]
    k: int
    method: str
    p_k0: float | None = None
    warning: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SelectionModel(_Record):
    """Vevea-Hedges step-function selection model (ML; analysis scale). ``delta``: relative likelihood
    of publication in each p-value interval after the first (``steps`` are the intervals' upper ends);
    ``lrt_p``: likelihood-ratio test against the same model without selection."""

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p: float
    tau2: float
    delta: tuple[float, ...]
    delta_se: tuple[float, ...]
    steps: tuple[float, ...]
    studies_per_interval: tuple[int, ...]
    alternative: str
    lrt: float
    lrt_df: int
    lrt_p: float
    k: int
    warning: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class InfluenceRow(_Record):
    """metafor's influence() for one study: externally studentised residual, DFFITS, Cook's distance,
    hat value, covariance ratio, and tau^2 and Cochran's Q with the study left out."""

    study: str
    rstudent: float
    dffits: float
    cooks_distance: float
    hat: float
    cov_ratio: float
    tau2_deleted: float
    q_deleted: float
    influential: bool = False


def study_labels(result: MetaResult) -> dict[str, str]:
    """study id -> display label of a result's pooled and not-estimable studies (those that have one)."""
    rows = result.studies
    if isinstance(rows, StudyRows):  # the label column, not a StudyResult per study (10^6 of them)
        labels = {} if rows.labels is None else {s: lab for s, lab in zip(rows.studies, rows.labels) if lab}
    else:
        labels = {s.study: s.label for s in rows if s.label}
    labels.update({a["study"]: a["label"] for a in result.not_estimable if a.get("label")})
    return labels
