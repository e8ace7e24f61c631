"""Build one analysis: validated extraction + spec -> one comparison per trial -> TrialTable.

Every trial in the extraction is a candidate (or those in the spec's ``trials`` list, if it has
one, the others named as not listed). Each is checked in the order of a review protocol: explicit
exclusion, trial characteristics ([eligibility]), the comparison ([arms]: arm types and roles),
the outcome's figures, the definition ([definition]) and the time point ([timepoint]). A trial
that fails is listed in ``omitted`` with the reason, which names the criterion ("[arms] control:
..."); ``criteria`` maps each omitted trial to that criterion. Nothing is left out unnamed.

The table's rows are in extraction (or ``trials``) order; ``study`` is the trial id, and extra
text columns (label, country, route, control_type, followup_weeks, followup, year,
timepoint_weeks, definition, experimental_arm, control_arm) serve as labels, subgroups and
moderators. Every choice made on the way (definition, time point, combined arms, derived figures,
recorded discrepancies) is listed in ``notes``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import InputError
from . import standardise
from .extraction import Extraction, Row, load_extraction, outcome_kind
from .spec import AnalysisSpec, read_spec, spec_path

LAYOUT_COLUMNS = {
    "binary": ("events_treat", "n_treat", "events_ctrl", "n_ctrl"),
    "continuous": ("mean_treat", "sd_treat", "n_treat", "mean_ctrl", "sd_ctrl", "n_ctrl"),
    "rates": ("events_treat", "time_treat", "events_ctrl", "time_ctrl"),
}
EXTRA_COLUMNS = ("label", "country", "route", "control_type", "followup_weeks", "followup", "year",
                 "timepoint_weeks", "definition", "experimental_arm", "control_arm", "blinding")


@dataclass(frozen=True)
class Comparison:
    """One trial's two groups for one analysis (arm figures after any combination)."""

    trial: str
    definition: str
    timepoint_weeks: float
    experimental_arms: tuple
    control_arms: tuple
    values: dict  # layout column -> number
    rows: tuple  # the outcome Rows used


@dataclass(frozen=True)
class Analysis:
    """A spec applied to the extraction: the trial table to pool, what was left out and why."""

    spec: AnalysisSpec
    table: object  # hatmeta.io.trial_table.TrialTable
    comparisons: tuple
    omitted: tuple  # (trial, reason)
    notes: tuple
    criteria: dict = None  # omitted trial -> the criterion it fails ("[arms] control", "data", ...)
    extraction: object = None  # the Extraction it was built from (labels, appraisal)

    def omitted_dicts(self) -> list:
        """The omitted trials as JSON records: trial (and study, its older name), reason, criterion."""
        crit = self.criteria or {}
        return [{"study": t, "trial": t, "reason": r, "criterion": crit.get(t, "")} for t, r in self.omitted]


class Skip(tuple):
    """(criterion, reason) of a trial that does not enter the analysis."""

    def __new__(cls, criterion, reason):
        return super().__new__(cls, (criterion, reason))

    criterion = property(lambda self: self[0])
    reason = property(lambda self: self[1])


def load_analysis(name, data_dir=None, analyses_dir=None) -> Analysis:
    """Load analysis ``name`` (analyses/<name>.toml, or a .toml path) on the validated extraction.

    Raises InputError if the extraction is invalid (never pools the valid part), if the spec is
    invalid, or if no trial contributes a figure.
    """
    spec = read_spec(spec_path(name, analyses_dir))
    extraction = load_extraction(data_dir)
    return build_analysis(spec, extraction)


def build_analysis(spec: AnalysisSpec, ex: Extraction) -> Analysis:
    known = ex.trial_ids()
    for trial in spec.trials:
        if trial not in known:
            raise InputError(f"trial {trial!r} is not in {ex.paths['trials.csv']}", file=spec.path, column="trials")
    comparisons, omitted, notes, criteria = [], [], [], {}
    for trial in [*spec.exclude, *spec.trial_overrides]:
        if trial not in known:
            notes.append(f"the spec names trial {trial!r} (in [exclude] or [trial.{trial}]), which is not in "
                         f"{ex.paths['trials.csv']}")
    candidates = list(spec.trials) + [t for t in known if t not in spec.trials] if spec.trials else list(known)
    for trial in candidates:
        result = check_trial(spec, ex, trial, notes)
        if isinstance(result, Skip):
            omitted.append((trial, result.reason))
            criteria[trial] = result.criterion
        else:
            comparisons.append(result)
    if not comparisons:
        from ..errors import NotPooled

        # One short line; what each trial lacks travels with the error (the API turns it into the gaps table).
        exc = NotPooled(f"no trial contributes {spec.kind} figures for outcome {spec.outcome!r} "
                        f"({len(omitted)} trials checked)", omitted=omitted, file=spec.path)
        exc.spec, exc.extraction = spec, ex
        raise exc
    notes.extend(_harmonisation_notes(spec, ex, comparisons))
    table = _table(spec, ex, comparisons)
    return Analysis(spec=spec, table=table, comparisons=tuple(comparisons), omitted=tuple(omitted),
                    notes=tuple(notes), criteria=criteria, extraction=ex)


def check_trial(spec: AnalysisSpec, ex: Extraction, trial: str, notes: list):
    """The trial's Comparison, or a Skip naming the first criterion (in protocol order) it fails."""
    if spec.trials and trial not in spec.trials:
        return Skip("trials", "trials: not in the spec's 'trials' list (remove the list to select by rule)")
    if trial in spec.exclude:
        return Skip("exclude", f"excluded by the analysis: {spec.exclude[trial]}")
    skip = _eligible(spec, ex.trial(trial)) or _risk_of_bias(spec, ex, trial)
    if skip is not None:
        return skip
    return _compare(spec, ex, trial, notes)


def _eligible(spec, t):
    """Skip if the trial's characteristics (trials.csv) fail [eligibility], else None."""
    for column, allowed in spec.eligibility.items():
        value = t[column].strip().lower()
        if not value:
            return Skip(f"[eligibility] {column}", f"[eligibility] {column}: not recorded in trials.csv; the "
                        f"analysis admits {' or '.join(allowed)}")
        if value not in allowed:
            return Skip(f"[eligibility] {column}", f"[eligibility] {column}: {column} is {value!r}; the "
                        f"analysis admits {' or '.join(allowed)}")
    year = int(t["year"]) if t["year"] else None
    if spec.min_year is not None and (year is None or year < spec.min_year):
        return Skip("[eligibility] min_year", f"[eligibility] min_year: published {year}, before {spec.min_year}")
    if spec.max_year is not None and (year is None or year > spec.max_year):
        return Skip("[eligibility] max_year", f"[eligibility] max_year: published {year}, after {spec.max_year}")
    return None


def _risk_of_bias(spec, ex, trial):
    """Skip unless the trial is judged at low risk of bias in every domain, when the spec asks for it
    (a 'low risk of bias only' sensitivity analysis; judgements from risk_of_bias.csv)."""
    if spec.risk_of_bias != "low":
        return None
    judgements = ex.appraisal.judgements(trial)
    other = {d: j for d, j in judgements.items() if j != "low"}
    if not other:
        return None
    counts = {}
    for j in other.values():
        counts[j] = counts.get(j, 0) + 1
    summary = ", ".join(f"{n} {j}" for j, n in sorted(counts.items()))
    return Skip("[eligibility] risk_of_bias", f"[eligibility] risk_of_bias: not judged at low risk of bias in "
                f"every domain ({summary} of {len(judgements)} domains)")


def _as_tuple(value):
    return (value,) if isinstance(value, str) else tuple(value)


def _select_arms(spec, ex, trial, notes):
    override = spec.trial_overrides.get(trial, {})
    wanted = {"experimental": _as_tuple(override.get("experimental", spec.experimental_arms)),
              "control": _as_tuple(override.get("control", spec.control_arms))}
    allowed_roles = {"experimental": spec.experimental_roles, "control": spec.control_roles}
    chosen = {}
    for role, codes in wanted.items():
        roles = allowed_roles[role]
        arms = [a for a in ex.arms_of(trial) if a["arm"] in codes]
        for a in arms:
            if a["role"] not in roles:
                notes.append(f"{trial}: arm {a['arm']} matches the {role} codes but its role in arms.csv is "
                             f"{a['role']!r}; not used as {role}")
        arms = [a for a in arms if a["role"] in roles]
        if not arms:
            has = ", ".join(f"{a['arm']} ({a['role']})" for a in ex.arms_of(trial)) or "none"
            return Skip(f"[arms] {role}", f"[arms] {role}: no {role} arm ({', '.join(codes)}"
                        + (f", role {' or '.join(roles)}" if roles != (role,) else "")
                        + f") in arms.csv; its arms: {has}")
        if len(arms) > 1:
            if spec.multi_arm == "refuse":
                return Skip("[arms] multi_arm", f"[arms] multi_arm: several {role} arms "
                            f"({', '.join(a['arm'] for a in arms)}) and the spec refuses to combine")
            notes.append(f"{trial}: {role} arms {', '.join(a['arm'] for a in arms)} combined into one group "
                         "(Cochrane Handbook 23.3.4)")
        chosen[role] = tuple(a["arm"] for a in arms)
    return chosen


def _compare(spec, ex, trial, notes):
    arms = _select_arms(spec, ex, trial, notes)
    if isinstance(arms, Skip):
        return arms
    exp, ctrl = arms["experimental"], arms["control"]
    override = spec.trial_overrides.get(trial, {})
    outcome = override.get("outcome", spec.outcome)
    if outcome != spec.outcome:
        notes.append(f"{trial}: outcome {outcome!r} used in place of {spec.outcome!r} (set in the spec)")
    rows = [r for r in ex.outcomes_of(trial, outcome) if r["arm"] in exp + ctrl]
    if not rows:
        return Skip("outcome", f"no row for outcome {outcome!r} of arms {', '.join(exp + ctrl)} in outcomes.csv")
    with_figures = [r for r in rows if r["status"] != "not reported"]
    if not with_figures:
        where = rows[0]["note"]
        return Skip("data", f"not reported ({where})" if where else "not reported")
    usable = [r for r in with_figures if outcome_kind(r) == spec.kind]
    if not usable:
        kinds = sorted({outcome_kind(r) for r in with_figures})
        return Skip("measure", f"only {' and '.join(kinds)} figures, measure {spec.measure} needs {spec.kind} ones")
    other = sorted({outcome_kind(r) for r in with_figures} - {spec.kind})
    if other:
        notes.append(f"{trial}: {' and '.join(other)} figures of {outcome} kept apart from the {spec.kind} "
                     f"ones pooled here")

    arms_all = exp + ctrl
    have = {r["arm"] for r in usable}
    missing = [a for a in arms_all if a not in have]
    if missing:
        why = []
        for a in missing:
            nr = [r for r in rows if r["arm"] == a and r["status"] == "not reported"]
            why.append(f"{a} not reported ({nr[0]['note']})" if nr and nr[0]["note"] else
                       f"{a} not reported" if nr else f"no {spec.kind} figure for {a}")
        return Skip("data", "; ".join(why))

    if spec.definition_only and "definition" not in override:
        # A required definition (a protocol's outcome definition), not a mere preference.
        usable = [r for r in usable if any(w.lower() in r["definition"].lower() for w in spec.definition_only)]
        if not _common_times(usable, arms_all):
            return Skip("[definition] only", "[definition] only: no figure for every arm whose definition "
                        f"contains {' or '.join(repr(w) for w in spec.definition_only)}")
    if "definition" in override:
        wanted = override["definition"].lower()
        usable = [r for r in usable if wanted in r["definition"].lower()]
        if {r["arm"] for r in usable} != set(arms_all):
            return Skip(f"[trial.{trial}] definition", f"[trial.{trial}] definition: no figures for every arm with "
                        f"the definition set for it in the spec ({override['definition']!r})")
    else:
        # A preferred definition is used when every arm reports it at some common time point.
        for pref in spec.definition_prefer:
            matching = [r for r in usable if pref.lower() in r["definition"].lower()]
            if _common_times(matching, arms_all):
                usable = matching
                break
    times = _common_times(usable, arms_all)
    if not times:
        return Skip("[timepoint]",
                    f"[timepoint]: no time point at which every arm ({', '.join(arms_all)}) has a figure")
    if "timepoint_weeks" in override:
        times = [t for t in times if t == float(override["timepoint_weeks"])]
        if not times:
            return Skip(f"[trial.{trial}] timepoint_weeks", f"[trial.{trial}] timepoint_weeks: no figures at the time "
                        f"point set for it in the spec ({override['timepoint_weeks']} weeks)")
    elif spec.timepoint_rule == "exact":
        times = [t for t in times if t == spec.timepoint_weeks]
        if not times:
            return Skip("[timepoint] weeks", f"[timepoint] weeks: no figures at {spec.timepoint_weeks:g} weeks")
    elif spec.max_weeks is not None:
        times = [t for t in times if t <= spec.max_weeks]
        if not times:
            return Skip("[timepoint] max_weeks", f"[timepoint] max_weeks: figures only after {spec.max_weeks:g} weeks")
    when = max(times)
    at = {a: [r for r in usable if r["arm"] == a and float(r["timepoint_weeks"]) == when] for a in arms_all}

    # Pair the arms' rows: a definition every arm shares first, otherwise each arm's own row.
    common = set.intersection(*({r["definition"].lower() for r in at[a]} for a in arms_all))
    if common:
        ordered = [r["definition"].lower() for r in at[arms_all[0]] if r["definition"].lower() in common]
        chosen = {a: next(r for r in at[a] if r["definition"].lower() == ordered[0]) for a in arms_all}
        if len(ordered) > 1:
            notes.append(f"{trial}: several definitions at {when:g} weeks; used the first in outcomes.csv, "
                         f"{chosen[arms_all[0]]['definition']!r} (also: "
                         + "; ".join(repr(d) for d in ordered[1:])
                         + f"); set [trial.{trial}] definition in the spec to choose")
    else:
        chosen = {a: at[a][0] for a in arms_all}
        several = [a for a in arms_all if len(at[a]) > 1]
        if several:
            notes.append(f"{trial}: several definitions at {when:g} weeks for arm(s) {', '.join(several)}; used "
                         f"the first in outcomes.csv; set [trial.{trial}] definition in the spec to choose")
        notes.append(f"{trial}: the arms' definitions differ in wording: "
                     + "; ".join(f"{a}: {chosen[a]['definition']}" for a in arms_all))
    used = [chosen[a] for a in arms_all]
    for r in used:
        if r["status"] == "derived":
            notes.append(f"{trial} {r['arm']}: derived figure: {r['derivation']}")
    values = _group_values(spec.kind, [chosen[a] for a in exp], "treat")
    values.update(_group_values(spec.kind, [chosen[a] for a in ctrl], "ctrl"))
    return Comparison(trial=trial, definition=chosen[exp[0]]["definition"], timepoint_weeks=when,
                      experimental_arms=exp, control_arms=ctrl, values=values, rows=tuple(used))


def _common_times(rows, arms) -> list:
    """Time points (weeks) at which every arm in ``arms`` has a row, sorted."""
    per_arm = [{float(r["timepoint_weeks"]) for r in rows if r["arm"] == a} for a in arms]
    return sorted(set.intersection(*per_arm)) if per_arm else []


def _group_values(kind, rows, side):
    if kind == "binary":
        events, n = standardise.combine_binary([(r.num("events"), r.num("n")) for r in rows])
        return {f"events_{side}": events, f"n_{side}": n}
    if kind == "continuous":
        mean, sd, n = standardise.combine_continuous([(r.num("mean"), r.num("sd"), r.num("n")) for r in rows])
        return {f"mean_{side}": mean, f"sd_{side}": sd, f"n_{side}": n}
    count, time = standardise.combine_rates([(r.num("count"), r.num("person_time")) for r in rows])
    return {f"events_{side}": count, f"time_{side}": time}


def _harmonisation_notes(spec, ex, comparisons):
    notes = []
    definitions = {c.definition.strip().lower() for c in comparisons}
    if len(definitions) > 1:
        notes.append("definitions differ across trials: "
                     + "; ".join(f"{c.trial}: {c.definition or '(none given)'}" for c in comparisons))
    times = {c.timepoint_weeks for c in comparisons}
    if len(times) > 1:
        notes.append("time points differ across trials: "
                     + ", ".join(f"{c.trial} {c.timepoint_weeks:g} weeks" for c in comparisons))
    used = {c.trial for c in comparisons}
    for d in ex.discrepancies:
        if d["trial"] in used and d["outcome"] in ("", spec.outcome):
            value = d["value_a"] if d["used"] == "a" else d["value_b"]
            notes.append(f"{d['trial']}: sources disagree on {d['field']} ({d['value_a']} in {d['source_a']}; "
                         f"{d['value_b']} in {d['source_b']}); the extraction uses {value}")
    return notes


def trial_labels(ex: Extraction, trials=None) -> dict:
    """trial id -> display label for ``trials`` (default: every trial in the extraction). Labels shared
    within the set add the route, or the short name where the route does not tell them apart."""
    from collections import Counter

    trials = list(ex.trial_ids() if trials is None else trials)
    plain = {t: trial_label(ex.trial(t)) for t in trials}
    shared = Counter(plain.values())
    routes = [trial_label(ex.trial(t), duplicate=True) for t in trials]
    by = "route" if len(set(routes)) == len(routes) else "short_name"
    return {t: trial_label(ex.trial(t), duplicate=True, by=by) if shared[p] > 1 else p for t, p in plain.items()}


def trial_label(trial: Row, duplicate: bool = False, by: str = "route") -> str:
    """'Haasen 2007 (Germany)': first author's surname, year and country. Trials sharing a
    publication (the two van den Brink 2003 trials) add ``by`` (route, else the short name)."""
    first = trial["authors"].split(",")[0].split(";")[0]
    words = [w for w in first.replace("et al.", "").replace("et al", "").split()]
    # Drop trailing initials ("Haasen C", "van den Brink W", "Demaret I").
    while len(words) > 1 and words[-1].replace(".", "").replace("-", "").isupper() and len(words[-1]) <= 4:
        words.pop()
    surname = " ".join(words) or trial["short_name"] or trial["trial"]
    label = f"{surname} {trial['year']}".strip()
    if duplicate:
        label += f", {trial[by] or trial['short_name'] or trial['trial']}"
    return f"{label} ({trial['country']})" if trial["country"] else label


def _format(x) -> str:
    x = float(x)
    return str(int(x)) if x.is_integer() else repr(x)


def _table(spec, ex, comparisons):
    from ..io.trial_table import table_from_rows

    kind = spec.kind
    header = ["study", *LAYOUT_COLUMNS[kind], *EXTRA_COLUMNS]
    labels = trial_labels(ex, [c.trial for c in comparisons])
    rows = [header]
    for c in comparisons:
        t, label = ex.trial(c.trial), labels[c.trial]
        fu = t["followup_weeks"]
        followup = ""
        if fu:
            followup = (f"up to {spec.followup_cut_weeks:g} weeks" if float(fu) <= spec.followup_cut_weeks
                        else f"over {spec.followup_cut_weeks:g} weeks")
        control_type = "+".join(c.control_arms)
        rows.append([c.trial, *(_format(c.values[col]) for col in LAYOUT_COLUMNS[kind]), label, t["country"],
                     t["route"], control_type, fu, followup, t["year"], _format(c.timepoint_weeks), c.definition,
                     "+".join(c.experimental_arms), control_type, t["blinding"]])
    path = str(ex.paths["outcomes.csv"])
    table = table_from_rows(rows, path=path, measure=spec.measure)
    # Point errors raised later (e.g. by escalc) at the outcomes.csv line of each trial's first figure.
    return replace(table, lines=tuple(c.rows[0].line for c in comparisons))


def placement(trial_ids, data_dir=None, analyses_dir=None, extraction=None) -> list:
    """Where trials go: for each analysis and each trial, (analysis, trial, entered, reason).

    ``entered`` is True when the trial gives a comparison (reason then says which arms, time point
    and definition), else the reason names the criterion it fails. Read on the extraction as it is
    on disk, so call it after the trial was appended, or on ``extraction`` (a dry run's would-be one)."""
    from .spec import list_analyses

    ex = extraction if extraction is not None else load_extraction(data_dir)
    out = []
    for name in list_analyses(analyses_dir):
        try:
            spec = read_spec(spec_path(name, analyses_dir))
        except InputError as exc:
            out.extend((name, t, False, f"spec not readable: {exc}") for t in trial_ids)
            continue
        for trial in trial_ids:
            result = check_trial(spec, ex, trial, [])
            if isinstance(result, Skip):
                out.append((name, trial, False, result.reason))
            elif (spec.measure in ("RR", "OR", "IRR") and result.values.get("events_treat") == 0
                  and result.values.get("events_ctrl") == 0):
                # Double-zero: pool leaves it out as not estimable (no ratio of 0 to 0), so it does not enter.
                out.append((name, trial, False, f"not estimable: no events in either arm, so the {spec.measure} "
                            "leaves it out (it counts in a risk difference)"))
            else:
                out.append((name, trial, True, f"{'+'.join(result.experimental_arms)} vs "
                            f"{'+'.join(result.control_arms)}, {result.timepoint_weeks:g} weeks, "
                            f"{result.definition or '(no definition)'}"))
    return out
