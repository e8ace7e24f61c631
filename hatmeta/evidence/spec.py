"""Analysis specifications: analyses/<name>.toml parsed into an immutable AnalysisSpec.

A spec says which outcome, trials, arms and time point make one comparison per trial, and the
model defaults with the reason for them. Unknown keys are errors (a misspelt key must not be
ignored silently), named with the file, the line where the key appears, and the key.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError

MEASURES = ("RR", "OR", "RD", "MD", "SMD", "IRR")
MEASURE_KIND = {"RR": "binary", "OR": "binary", "RD": "binary", "MD": "continuous", "SMD": "continuous",
                "IRR": "rates"}
METHODS = ("FE", "MH", "PETO", "DL", "REML", "ML", "PM", "HE", "SJ", "EB", "GLMM-FS", "GLMM-RS", "GLMM-EXACT")
GRADE_DOMAINS = ("risk_of_bias", "inconsistency", "indirectness", "imprecision", "publication_bias")
GRADE_RATINGS = ("not rated", "no serious concern", "serious", "very serious")
CERTAINTY = ("not rated", "high", "moderate", "low", "very low")
SUBGROUP_COLUMNS = ("country", "route", "control_type", "followup", "year", "blinding")

TOP_KEYS = {"name", "title", "outcome", "measure", "benefit", "description", "trials", "exclude", "arms",
            "timepoint", "definition", "model", "subgroups", "labels", "grade", "trial"}
SECTION_KEYS = {
    "arms": {"experimental", "control", "multi_arm", "rule"},
    "timepoint": {"rule", "max_weeks", "weeks", "reason"},
    "definition": {"prefer", "reason"},
    "model": {"method", "ci", "pi", "reason", "compare_methods"},
    "labels": {"experimental", "control"},
    "grade": set(GRADE_DOMAINS) | {"certainty", "note"},
    "subgroups": {"variables", "followup_cut_weeks"},
}
TRIAL_KEYS = {"experimental", "control", "timepoint_weeks", "definition", "outcome", "note"}


@dataclass(frozen=True)
class AnalysisSpec:
    """One analysis as specified. ``benefit``: 'higher' or 'lower' values of the measure favour HAT."""

    name: str
    title: str
    outcome: str
    measure: str
    method: str
    ci: str
    pi: str
    benefit: str
    trials: tuple
    exclude: dict
    experimental_arms: tuple
    control_arms: tuple
    arm_rule: str
    multi_arm: str
    timepoint_rule: str
    max_weeks: float | None
    timepoint_weeks: float | None
    definition_prefer: tuple
    trial_overrides: dict
    subgroups: tuple
    followup_cut_weeks: float
    experimental_label: str
    control_label: str
    model_reason: str
    grade: dict
    path: str
    raw: dict = field(default_factory=dict)
    compare_methods: bool = False  # [model] compare_methods = true: the methods side by side (issue 13)

    @property
    def kind(self) -> str:
        """binary, continuous or rates: which outcome rows the measure uses."""
        return MEASURE_KIND[self.measure]

    def to_dict(self) -> dict:
        return dict(self.raw)


def default_analyses_dir() -> Path:
    """$HATMETA_ANALYSES_DIR, else the project's analyses/ folder (hatmeta.project)."""
    env = os.environ.get("HATMETA_ANALYSES_DIR")
    if env:
        return Path(env)
    from ..project import project_root

    return project_root() / "analyses"


def list_analyses(analyses_dir=None) -> list:
    """Names of the analyses (file stems of analyses/*.toml), sorted."""
    folder = Path(analyses_dir) if analyses_dir is not None else default_analyses_dir()
    return sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []


def spec_path(name: str, analyses_dir=None) -> Path:
    """The TOML file of analysis ``name`` (or ``name`` itself when it is a .toml path)."""
    if str(name).endswith(".toml"):
        path = Path(name)
        if not path.is_file():
            raise InputError("analysis file not found", file=str(path))
        return path
    folder = Path(analyses_dir) if analyses_dir is not None else default_analyses_dir()
    path = folder / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(list_analyses(folder))
        if not known:
            raise InputError(f"no analyses found in {folder}: run hatmeta inside the hatmeta repository "
                             "(or set HATMETA_ANALYSES_DIR and HATMETA_DATA_DIR)", column="ANALYSIS")
        raise InputError(f"unknown analysis {name!r}; available: {known}", column="ANALYSIS")
    return path


def _line_of(text: str, key: str, section: str | None = None) -> int | None:
    """Line where ``key =`` first appears (inside ``[section]`` when given); tomllib gives no positions."""
    current = None
    for i, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        m = re.match(r"^\[+\s*([^\]]+?)\s*\]+", s)
        if m:
            current = m.group(1)
            if section is None and current == key:
                return i
            continue
        if re.match(rf"^{re.escape(key)}\s*=", s) and (section is None or current == section):
            return i
    return None


def read_spec(path) -> AnalysisSpec:
    """Parse and check one analysis TOML file."""
    import tomllib

    path = Path(path)
    file = str(path)
    text = path.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise InputError(f"not valid TOML ({exc})", file=file, line=int(m.group(1)) if m else None) from None

    def fail(message, key, section=None):
        raise InputError(message, file=file, line=_line_of(text, key, section) or None,
                         column=f"{section}.{key}" if section else key)

    for key in raw:
        if key not in TOP_KEYS:
            fail(f"unknown key; allowed: {', '.join(sorted(TOP_KEYS))}", key)
    for section, allowed in SECTION_KEYS.items():
        value = raw.get(section, {})
        if not isinstance(value, dict):
            if section == "subgroups" and isinstance(value, list):
                continue
            fail("must be a table", section)
        for key in value:
            if key not in allowed:
                fail(f"unknown key; allowed: {', '.join(sorted(allowed))}", key, section)

    def get(key, section=None, default=None, kind=str, required=False):
        table = raw.get(section, {}) if section else raw
        if key not in table:
            if required:
                raise InputError("required key missing", file=file, column=f"{section}.{key}" if section else key)
            return default
        value = table[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if kind is list:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                fail("must be a list of strings", key, section)
            return tuple(value)
        if not isinstance(value, kind) or isinstance(value, bool):
            fail(f"must be a {'number' if kind is float else 'string'}", key, section)
        return value

    name = get("name", default=path.stem)
    outcome = get("outcome", required=True)
    measure = get("measure", required=True).upper()
    if measure not in MEASURES:
        fail(f"unknown measure {measure!r}; choose one of {', '.join(MEASURES)}", "measure")
    benefit = get("benefit", required=True)
    if benefit not in ("higher", "lower"):
        fail("must be 'higher' or 'lower' (which values of the measure favour the experimental arm)", "benefit")
    trials = get("trials", kind=list, required=True)
    if not trials:
        fail("must list at least one trial", "trials")
    if len(set(trials)) != len(trials):
        fail("lists a trial twice", "trials")
    exclude = raw.get("exclude", {})
    if not isinstance(exclude, dict) or not all(isinstance(v, str) and v for v in exclude.values()):
        fail("must be a table of trial = \"reason\"", "exclude")
    for trial in exclude:
        if trial not in trials:
            fail(f"excluded trial {trial!r} is not in 'trials' (list it so its omission is shown)", "exclude")

    experimental = get("experimental", "arms", kind=list, required=True)
    control = get("control", "arms", kind=list, required=True)
    multi_arm = get("multi_arm", "arms", default="combine")
    if multi_arm not in ("combine", "refuse"):
        fail("must be 'combine' or 'refuse'", "multi_arm", "arms")

    rule = get("rule", "timepoint", default="latest")
    if rule not in ("latest", "exact"):
        fail("must be 'latest' (latest time point up to max_weeks) or 'exact' (weeks)", "rule", "timepoint")
    max_weeks = get("max_weeks", "timepoint", kind=float)
    weeks = get("weeks", "timepoint", kind=float)
    if rule == "exact" and weeks is None:
        fail("rule 'exact' needs weeks", "rule", "timepoint")

    model = raw.get("model", {})
    method = get("method", "model", default="REML").upper()
    if method not in METHODS:
        fail(f"unknown method; choose one of {', '.join(METHODS)}", "method", "model")
    ci = get("ci", "model", default="wald").lower()
    if ci not in ("wald", "hksj"):
        fail("must be 'wald' or 'hksj'", "ci", "model")
    pi = get("pi", "model", default="t").lower()
    if pi not in ("t", "z"):
        fail("must be 't' or 'z'", "pi", "model")

    sub = raw.get("subgroups", {})
    variables = tuple(sub) if isinstance(sub, list) else get("variables", "subgroups", default=(), kind=list)
    for v in variables:
        if v not in SUBGROUP_COLUMNS:
            fail(f"unknown subgroup variable {v!r}; choose from {', '.join(SUBGROUP_COLUMNS)}",
                 "variables" if isinstance(sub, dict) else "subgroups", "subgroups" if isinstance(sub, dict) else None)
    cut = 26.0 if isinstance(sub, list) else get("followup_cut_weeks", "subgroups", default=26.0, kind=float)

    grade = raw.get("grade", {})
    for key, value in grade.items():
        allowed = CERTAINTY if key == "certainty" else GRADE_RATINGS if key in GRADE_DOMAINS else None
        if allowed and value not in allowed:
            fail(f"must be one of: {', '.join(allowed)}", key, "grade")

    overrides = raw.get("trial", {})
    if not isinstance(overrides, dict):
        fail("must be a table of [trial.<id>] tables", "trial")
    for trial, table in overrides.items():
        if trial not in trials:
            fail(f"override for {trial!r}, which is not in 'trials'", trial, "trial")
        if not isinstance(table, dict):
            fail("must be a table", trial, "trial")
        for key in table:
            if key not in TRIAL_KEYS:
                fail(f"unknown key; allowed: {', '.join(sorted(TRIAL_KEYS))}", key, f"trial.{trial}")

    labels = raw.get("labels", {})
    return AnalysisSpec(
        name=name, title=get("title", default=name), outcome=outcome, measure=measure, method=method, ci=ci,
        pi=pi, benefit=benefit, trials=trials, exclude=dict(exclude), experimental_arms=experimental,
        control_arms=control, arm_rule=get("rule", "arms", default=""), multi_arm=multi_arm,
        timepoint_rule=rule, max_weeks=max_weeks, timepoint_weeks=weeks,
        definition_prefer=get("prefer", "definition", default=(), kind=list),
        trial_overrides={t: dict(v) for t, v in overrides.items()}, subgroups=variables,
        followup_cut_weeks=cut, experimental_label=labels.get("experimental", "experimental"),
        control_label=labels.get("control", "control"), model_reason=model.get("reason", ""),
        grade=dict(grade), path=file, raw=raw, compare_methods=_compare_methods(model, fail),
    )


def _compare_methods(model, fail):
    value = model.get("compare_methods", False)
    if not isinstance(value, bool):
        fail("must be true or false", "compare_methods", "model")
    return value
