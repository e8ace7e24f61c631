"""Analysis specifications: analyses/<name>.toml parsed into an immutable AnalysisSpec.

A spec states, like a review protocol, who is eligible (trial characteristics in [eligibility], the
comparison by arm type and role in [arms], the outcome definition in [definition], the time point
in [timepoint]) and the model defaults with the reason for them. Every trial in the extraction is
checked against these rules, so a newly added trial enters without editing the spec; an optional
``trials`` list and [exclude] table restrict it further, each omission named with its reason.
The schema is documented in analyses/README.md. Unknown keys are errors (a misspelt key must not
be ignored silently), named with the file, the line where the key appears, and the key.
"""

from __future__ import annotations

import math
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
            "timepoint", "definition", "model", "subgroups", "labels", "grade", "trial", "eligibility",
            "tsa",  # [tsa]: trial sequential analysis settings, checked by hatmeta.methods.tsa
            "multivariate",  # [multivariate]: analyses/multivariate/ specs, checked by hatmeta.review.multivariate
            "robustness"}
ARM_ROLES = ("experimental", "control", "other")
# [eligibility] admits trials by the values of these trials.csv columns (lists of allowed values).
ELIGIBILITY_COLUMNS = ("route", "hypothesis", "blinding", "itt", "country")
SECTION_KEYS = {
    "arms": {"experimental", "control", "multi_arm", "rule", "experimental_role", "control_role"},
    "eligibility": {"rule", "min_year", "max_year", "risk_of_bias", *ELIGIBILITY_COLUMNS},
    "timepoint": {"rule", "max_weeks", "weeks", "reason"},
    "definition": {"prefer", "only", "reason"},
    "model": {"method", "ci", "pi", "reason", "compare_methods"},
    "labels": {"experimental", "control"},
    "grade": set(GRADE_DOMAINS) | {"certainty", "note"},
    "subgroups": {"variables", "followup_cut_weeks"},
    # Small-study, publication-bias and influence analyses the report shows (hatmeta pool's options).
    "robustness": {"small_study", "pet_peese", "trim_fill", "trim_fill_estimator", "selection_model", "steps",
                   "influence", "both_models"},
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
    # Eligibility rules (see analyses/README.md). ``trials`` empty = every trial in the extraction.
    eligibility: dict = field(default_factory=dict)  # trials.csv column -> allowed values (lower case)
    min_year: int | None = None
    max_year: int | None = None
    eligibility_rule: str = ""
    risk_of_bias: str = ""  # "low": only trials judged at low risk of bias in every domain (risk_of_bias.csv)
    experimental_roles: tuple = ("experimental",)
    control_roles: tuple = ("control",)
    definition_only: tuple = ()
    robustness: dict = field(default_factory=dict)  # pool_table options from [robustness]
    compare_methods: bool = False  # [model] compare_methods = true: the methods side by side (issue 13)

    @property
    def kind(self) -> str:
        """binary, continuous or rates: which outcome rows the measure uses."""
        return MEASURE_KIND[self.measure]

    def to_dict(self) -> dict:
        return dict(self.raw)


def analyses_next_to(data_dir) -> Path | None:
    """An analyses/ folder holding *.toml next to an extraction folder: inside it, beside it, or at
    the root of a project copy (<root>/data/extracted -> <root>/analyses)."""
    data_dir = Path(data_dir)
    for folder in (data_dir / "analyses", data_dir.parent / "analyses", data_dir.parent.parent / "analyses"):
        if folder.is_dir() and any(folder.glob("*.toml")):
            return folder
    return None


def default_analyses_dir() -> Path:
    """$HATMETA_ANALYSES_DIR, else the project's analyses/ folder (hatmeta.review.project). The command
    line's --analyses-dir is passed down explicitly as ``analyses_dir``."""
    env = os.environ.get("HATMETA_ANALYSES_DIR")
    if env:
        return Path(env)
    from .project import project_root

    return project_root() / "analyses"


def list_analyses(analyses_dir=None) -> list:
    """Names of the analyses (file stems of analyses/*.toml), sorted."""
    folder = Path(analyses_dir) if analyses_dir is not None else default_analyses_dir()
    return sorted(p.stem for p in folder.glob("*.toml") if p.is_file()) if folder.is_dir() else []


def spec_path(name: str, analyses_dir=None) -> Path:
    """The TOML file of analysis ``name`` (or ``name`` itself when it is a .toml path)."""
    if str(name).endswith(".toml"):
        path = Path(name)
        if not path.is_file():
            raise InputError("analysis file not found", file=str(path))
        return path
    folder = Path(analyses_dir) if analyses_dir is not None else default_analyses_dir()
    name = str(name)
    # A name resolves only inside the analyses folder ('../../outside' must not load a spec elsewhere);
    # a spec outside it is named by its path, ending in .toml.
    if not name or "/" in name or "\\" in name or name.startswith(".") or "\x00" in name:
        raise InputError(f"not an analysis name: {name!r} (a name is a file stem in {folder}; give a path "
                         "ending in .toml for a spec elsewhere)", option="ANALYSIS")
    path = folder / f"{name}.toml"
    if path.exists() and not path.is_file():
        raise InputError("is a folder, not an analysis spec", file=str(path))
    if not path.is_file():
        known = ", ".join(list_analyses(folder))
        if not known:
            raise InputError(f"no analyses found in {folder}: run hatmeta inside the hatmeta repository, "
                             "give --analyses-dir (or set HATMETA_ANALYSES_DIR)", option="ANALYSIS")
        import difflib

        near = difflib.get_close_matches(str(name), list_analyses(folder), n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(repr(n) for n in near)}? " if near else ""
        raise InputError(f"unknown analysis {name!r}; {hint}available: {known}", option="ANALYSIS")
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
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the analysis spec ({exc.strerror or exc})", file=file) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        hint = " (UTF-16? save it as UTF-8)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise InputError(f"not UTF-8 text{hint}", file=file, line=data[:exc.start].count(b"\n") + 1) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise InputError(f"not valid TOML ({exc})", file=file, line=int(m.group(1)) if m else None) from None
    except RecursionError:
        raise InputError("not readable TOML: nested too deeply", file=file) from None

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
        if kind is float and not (math.isfinite(value) and value >= 0):
            fail(f"must be a finite number of at least 0, got {value}", key, section)
        return value

    # Free-text keys must be strings wherever they appear (a table there would print as "{'a': 1}").
    for key in ("title", "description", "name"):
        get(key)
    for section in SECTION_KEYS:
        for key in ("reason", "rule", "note"):
            if isinstance(raw.get(section), dict) and key in raw[section]:
                get(key, section)

    name = get("name", default=path.stem)
    outcome = get("outcome", required=True)
    measure = get("measure", required=True).upper()
    if measure not in MEASURES:
        fail(f"unknown measure {measure!r}; choose one of {', '.join(MEASURES)}", "measure")
    benefit = get("benefit", required=True)
    if benefit not in ("higher", "lower"):
        fail("must be 'higher' or 'lower' (which values of the measure favour the experimental arm)", "benefit")
    # Optional: without it every trial in the extraction is a candidate (eligibility by rule).
    trials = get("trials", kind=list, default=())
    if "trials" in raw and not trials:
        fail("must list at least one trial (or leave 'trials' out: every trial is then checked by rule)",
             "trials")
    if len(set(trials)) != len(trials):
        fail("lists a trial twice", "trials")
    exclude = raw.get("exclude", {})
    if not isinstance(exclude, dict) or not all(isinstance(v, str) and v for v in exclude.values()):
        fail("must be a table of trial = \"reason\"", "exclude")
    for trial in exclude:
        if trials and trial not in trials:
            fail(f"excluded trial {trial!r} is not in 'trials' (list it so its omission is shown)", "exclude")

    def roles(key, default):
        value = raw.get("arms", {}).get(key, default)
        value = (value,) if isinstance(value, str) else value
        if not isinstance(value, (list, tuple)) or not value or any(v not in ARM_ROLES for v in value):
            fail(f"must be a role or list of roles from: {', '.join(ARM_ROLES)}", key, "arms")
        return tuple(value)

    experimental = get("experimental", "arms", kind=list, required=True)
    control = get("control", "arms", kind=list, required=True)
    experimental_roles = roles("experimental_role", "experimental")
    control_roles = roles("control_role", "control")
    multi_arm = get("multi_arm", "arms", default="combine")
    if multi_arm not in ("combine", "refuse"):
        fail("must be 'combine' or 'refuse'", "multi_arm", "arms")

    eligibility = {}
    for key in ELIGIBILITY_COLUMNS:
        values = get(key, "eligibility", kind=list)
        if values is not None:
            if not values:
                fail("must list at least one allowed value", key, "eligibility")
            eligibility[key] = tuple(v.strip().lower() for v in values)
            from .extraction import SCHEMA

            choices = next(c.choices for c in SCHEMA["trials.csv"] if c.name == key)
            wrong = [v for v in eligibility[key] if choices and v not in choices]
            if wrong:  # a misspelt value would leave every trial out
                fail(f"unknown value {wrong[0]!r}; trials.csv {key} is one of: {', '.join(choices)}", key,
                     "eligibility")
    years = {}
    for key in ("min_year", "max_year"):
        value = raw.get("eligibility", {}).get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            fail("must be a whole number (a year)", key, "eligibility")
        years[key] = value

    rob = get("risk_of_bias", "eligibility", default="")
    if rob not in ("", "low"):
        fail("must be 'low' (trials judged at low risk of bias in every domain)", "risk_of_bias", "eligibility")

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
    if pi not in ("t", "z", "metafor"):
        fail("must be 't', 'z' or 'metafor'", "pi", "model")

    sub = raw.get("subgroups", {})
    variables = tuple(sub) if isinstance(sub, list) else get("variables", "subgroups", default=(), kind=list)
    for v in variables:
        if v not in SUBGROUP_COLUMNS:
            fail(f"unknown subgroup variable {v!r}; choose from {', '.join(SUBGROUP_COLUMNS)}",
                 "variables" if isinstance(sub, dict) else "subgroups", "subgroups" if isinstance(sub, dict) else None)
    cut = 26.0 if isinstance(sub, list) else get("followup_cut_weeks", "subgroups", default=26.0, kind=float)

    grade = raw.get("grade", {})
    for key, value in grade.items():
        if not isinstance(value, str):
            fail("must be a string", key, "grade")
        allowed = CERTAINTY if key == "certainty" else GRADE_RATINGS if key in GRADE_DOMAINS else None
        if allowed and value not in allowed:
            fail(f"must be one of: {', '.join(allowed)}", key, "grade")

    overrides = raw.get("trial", {})
    if not isinstance(overrides, dict):
        fail("must be a table of [trial.<id>] tables", "trial")
    for trial, table in overrides.items():
        if trials and trial not in trials:
            fail(f"override for {trial!r}, which is not in 'trials'", trial, "trial")
        if not isinstance(table, dict):
            fail("must be a table", trial, "trial")
        for key in table:
            if key not in TRIAL_KEYS:
                fail(f"unknown key; allowed: {', '.join(sorted(TRIAL_KEYS))}", key, f"trial.{trial}")
        for key, value in table.items():  # the overrides' types, as the spec's own keys are checked
            if key == "timepoint_weeks":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                        or value < 0:
                    fail("must be a finite number of weeks", key, f"trial.{trial}")
            elif key in ("experimental", "control"):
                if not (isinstance(value, str) or (isinstance(value, list) and value
                                                   and all(isinstance(v, str) for v in value))):
                    fail("must be an arm code or a list of arm codes", key, f"trial.{trial}")
            elif not isinstance(value, str):
                fail("must be a string", key, f"trial.{trial}")

    robustness = _robustness(raw.get("robustness", {}), fail)
    labels = {k: get(k, "labels", default=k) for k in ("experimental", "control")}
    model_reason = get("reason", "model", default="")
    return AnalysisSpec(
        name=name, title=get("title", default=name), outcome=outcome, measure=measure, method=method, ci=ci,
        pi=pi, benefit=benefit, trials=trials, exclude=dict(exclude), experimental_arms=experimental,
        control_arms=control, arm_rule=get("rule", "arms", default=""), multi_arm=multi_arm,
        timepoint_rule=rule, max_weeks=max_weeks, timepoint_weeks=weeks,
        definition_prefer=get("prefer", "definition", default=(), kind=list),
        trial_overrides={t: dict(v) for t, v in overrides.items()}, subgroups=variables,
        followup_cut_weeks=cut, experimental_label=labels.get("experimental", "experimental"),
        control_label=labels.get("control", "control"), model_reason=model_reason,
        grade=dict(grade), path=file, raw=raw, eligibility=eligibility, min_year=years["min_year"],
        max_year=years["max_year"], eligibility_rule=get("rule", "eligibility", default=""),
        experimental_roles=experimental_roles, control_roles=control_roles,
        definition_only=get("only", "definition", default=(), kind=list), risk_of_bias=rob,
        robustness=robustness, compare_methods=_compare_methods(model, fail),
    )


def _robustness(section, fail):
    """[robustness] as pool_table options, each checked: small_study = ["peters", "begg"],
    pet_peese / trim_fill / influence / both_models = true, trim_fill_estimator = "L0" | "R0",
    selection_model = "step", steps = [0.025]."""
    out = {}
    tests = section.get("small_study", [])
    if isinstance(tests, str):
        tests = [tests]
    if not isinstance(tests, list) or any(str(t).lower() not in ("egger", "peters", "harbord", "begg") for t in tests):
        fail("must list tests among egger, peters, harbord, begg", "small_study", "robustness")
    if tests:
        out["small_study"] = tuple(str(t).lower() for t in tests)
    for key in ("pet_peese", "trim_fill", "influence", "both_models"):
        value = section.get(key, False)
        if not isinstance(value, bool):
            fail("must be true or false", key, "robustness")
        if value:
            out[key] = True
    est = section.get("trim_fill_estimator", "L0")
    if str(est).upper() not in ("L0", "R0"):
        fail("must be 'L0' or 'R0'", "trim_fill_estimator", "robustness")
    if out.get("trim_fill"):
        out["trim_fill_estimator"] = str(est).upper()
    model = section.get("selection_model")
    if model is not None:
        if model != "step":
            fail("must be 'step'", "selection_model", "robustness")
        out["selection_model"] = "step"
        steps = section.get("steps", [0.025])
        if (not isinstance(steps, list) or not steps
                or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and 0 < x < 1 for x in steps)):
            fail("must be a list of p-values strictly between 0 and 1", "steps", "robustness")
        out["steps"] = tuple(float(x) for x in steps)
    return out


def _compare_methods(model, fail):
    value = model.get("compare_methods", False)
    if not isinstance(value, bool):
        fail("must be true or false", "compare_methods", "model")
    return value
