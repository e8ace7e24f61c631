"""The HAT trials as a treatment network: a network spec (``analyses/networks/<name>.toml``) over the
extraction, pooled by the engine's network meta-analysis (``hatmeta.methods.network.nma``).

A network spec states, like a pairwise one, who is eligible (trial characteristics, time point) and,
instead of an experimental and a control arm, which node of the network each arm type of
``arms.csv`` is (``[nodes]``). Every trial is checked: a trial enters with the arms that have a node and
figures by arm; one that cannot (fewer than two such arms, another route, figures not reported) is named
with the reason. The spec also states the transitivity assumptions the network makes.

Network specs live in their own folder so that ``hatmeta pool`` (pairwise) never lists them.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError

KEYS = {"name", "title", "outcome", "measure", "benefit", "reference", "method", "description", "eligibility",
        "nodes", "timepoint", "transitivity"}
SECTION_KEYS = {"eligibility": {"route", "rule"}, "timepoint": {"rule", "max_weeks", "reason"},
                "transitivity": {"assumptions"}}
MEASURES = ("RR", "OR", "RD")
REPORTED = ("reported", "derived")


@dataclass(frozen=True)
class NetworkSpec:
    """A network analysis as specified: eligible routes, arm type -> node, the time-point rule."""

    name: str
    title: str
    outcome: str
    measure: str
    benefit: str
    reference: str
    method: str
    nodes: dict
    routes: tuple
    max_weeks: float | None
    transitivity: str
    path: str
    description: str = ""
    eligibility_rule: str = ""


@dataclass(frozen=True)
class NetworkAnalysis:
    """The arm-level table the network is pooled from (columns study, treatment, events, n, as
    ``hatmeta.nma`` takes them), the trials left out with the reason, and the choices made."""

    spec: NetworkSpec
    table: dict
    omitted: tuple  # (trial label, reason)
    notes: tuple
    labels: dict = field(default_factory=dict)


def networks_dir(analyses_dir=None) -> Path:
    from .spec import default_analyses_dir

    return Path(analyses_dir or default_analyses_dir()) / "networks"


def list_networks(analyses_dir=None) -> list:
    folder = networks_dir(analyses_dir)
    return sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []


def read_network_spec(name: str, analyses_dir=None) -> NetworkSpec:
    """The network spec ``name`` (a name inside analyses/networks/, never a path outside it)."""
    folder = networks_dir(analyses_dir)
    if "/" in name or "\\" in name or name.startswith("."):
        raise InputError("a network analysis is named, not given as a path", option="ANALYSIS")
    path = folder / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(list_networks(analyses_dir)) or "none"
        raise InputError(f"no network analysis {name!r} in {folder} (known: {known})", option="ANALYSIS")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not a readable TOML file ({exc})", file=str(path)) from None
    file = str(path)

    def fail(message, key):
        raise InputError(message, file=file, column=key)

    for key in raw:
        if key not in KEYS:
            fail(f"unknown key; allowed: {', '.join(sorted(KEYS))}", key)
    for section, allowed in SECTION_KEYS.items():
        for key in raw.get(section, {}):
            if key not in allowed:
                fail(f"unknown key; allowed: {', '.join(sorted(allowed))}", f"{section}.{key}")

    def text(key, default=None, section=None):
        value = (raw.get(section, {}) if section else raw).get(key, default)
        if value is None or not isinstance(value, str) or not value.strip():
            fail("must be a non-empty string", f"{section}.{key}" if section else key)
        return value.strip()

    measure = text("measure").upper()
    if measure not in MEASURES:
        fail(f"must be one of {', '.join(MEASURES)} (binary arm-level figures)", "measure")
    benefit = text("benefit")
    if benefit not in ("higher", "lower"):
        fail("must be 'higher' or 'lower'", "benefit")
    method = text("method", "REML").upper()
    if method not in ("DL", "REML"):
        fail("must be 'DL' or 'REML'", "method")
    nodes = raw.get("nodes")
    if not isinstance(nodes, dict) or len(set(nodes.values())) < 2 or not all(
            isinstance(v, str) and v.strip() for v in nodes.values()):
        fail("must map arm types of arms.csv to at least two treatment names", "nodes")
    reference = text("reference")
    if reference not in nodes.values():
        fail(f"must be one of the nodes ({', '.join(sorted(set(nodes.values())))})", "reference")
    routes = raw.get("eligibility", {}).get("route", [])
    if not isinstance(routes, list) or not all(isinstance(r, str) for r in routes):
        fail("must be a list of routes", "eligibility.route")
    timepoint = raw.get("timepoint", {})
    max_weeks = timepoint.get("max_weeks")
    if max_weeks is not None and (isinstance(max_weeks, bool) or not isinstance(max_weeks, (int, float))
                                  or not max_weeks > 0):
        fail("must be a positive number of weeks", "timepoint.max_weeks")
    if timepoint.get("rule", "latest") != "latest":
        fail("only 'latest' (each trial's latest time point up to max_weeks) is supported", "timepoint.rule")
    return NetworkSpec(name=raw.get("name", name), title=text("title"), outcome=text("outcome"), measure=measure,
                       benefit=benefit, reference=reference, method=method, nodes=dict(nodes),
                       routes=tuple(routes), max_weeks=None if max_weeks is None else float(max_weeks),
                       transitivity=text("assumptions", section="transitivity"), path=file,
                       description=str(raw.get("description", "")).strip(),
                       eligibility_rule=str(raw.get("eligibility", {}).get("rule", "")).strip())


def build_network(spec: NetworkSpec, data_dir=None) -> NetworkAnalysis:
    """The arm-level table of every eligible trial; each trial left out is named with the reason."""
    from .analysis import trial_labels
    from .extraction import load_extraction

    ex = load_extraction(data_dir)
    labels = trial_labels(ex)
    rows: dict[str, list] = {"study": [], "treatment": [], "events": [], "n": []}
    omitted, notes, definitions = [], [], {}
    for trial in ex.trial_ids():
        label = labels.get(trial, trial)
        t = ex.trial(trial)
        if spec.routes and t["route"] not in spec.routes:
            omitted.append((label, f"[eligibility] route: route is {t['route']!r}; the network admits "
                                   f"{', '.join(spec.routes)}"))
            continue
        arms = {a["arm"]: a for a in ex.arms_of(trial)}
        figures = [r for r in ex.outcomes_of(trial, spec.outcome)
                   if r["arm"] in spec.nodes and r["arm"] in arms and r["status"] in REPORTED
                   and r["n"] and r["events"] and r["timepoint_weeks"]
                   and (spec.max_weeks is None or float(r["timepoint_weeks"]) <= spec.max_weeks)]
        by_time: dict[float, dict] = {}
        for r in figures:
            by_time.setdefault(float(r["timepoint_weeks"]), {})[r["arm"]] = r
        usable = {w: a for w, a in by_time.items() if len({spec.nodes[x] for x in a}) >= 2}
        if not usable:
            unmapped = sorted(a for a in arms if a not in spec.nodes)
            why = (f"fewer than two arms with {spec.outcome} figures by arm"
                   + (f" (arms without a node: {', '.join(unmapped)})" if unmapped else ""))
            omitted.append((label, why))
            continue
        weeks = max(usable)
        chosen = usable[weeks]
        nodes_seen: dict[str, str] = {}
        for arm in chosen:
            node = spec.nodes[arm]
            if node in nodes_seen:  # two arms of one node in a trial: not combined silently
                omitted.append((label, f"arms {nodes_seen[node]} and {arm} are both {node!r}"))
                break
            nodes_seen[node] = arm
        else:
            for arm, r in chosen.items():
                rows["study"].append(label)
                rows["treatment"].append(spec.nodes[arm])
                rows["events"].append(float(r["events"]))
                rows["n"].append(float(r["n"]))
                definitions.setdefault(r["definition"], []).append(label)
            left = sorted(set(arms) - set(chosen))
            notes.append(f"{label}: {', '.join(spec.nodes[a] for a in chosen)} at {weeks:g} weeks"
                         + (f"; arms not in the network: {', '.join(left)}" if left else ""))
    if len(definitions) > 1:
        notes.append("definitions differ: " + "; ".join(f"{d!r} ({', '.join(sorted(set(t)))})"
                                                         for d, t in definitions.items()))
    return NetworkAnalysis(spec=spec, table=rows, omitted=tuple(omitted), notes=tuple(notes), labels=labels)


def pool_network(name: str, data_dir=None, analyses_dir=None, **overrides: Any):
    """(NMAResult, NetworkAnalysis) of the network spec ``name``; ``overrides``: nma() keywords
    (method, common, level, benefit, reference)."""
    from ..methods.network import nma

    spec = read_network_spec(name, analyses_dir)
    an = build_network(spec, data_dir)
    if len(set(an.table["study"])) < 2:
        raise InputError(f"only {len(set(an.table['study']))} trial enters the network; it needs at least 2",
                         file=spec.path)
    bayes = overrides.pop("bayes", None)
    if bayes is not None:  # hatmeta nma NAME --bayes: the spec's data and reference, by MCMC
        return _bayes_network(an, spec, overrides.get("reference") or spec.reference, bayes), an
    options = {"reference": spec.reference, "method": spec.method, "benefit": spec.benefit,
               **{k: v for k, v in overrides.items() if v is not None}}
    return nma(an.table, spec.measure, **options), an


def _bayes_network(an: NetworkAnalysis, spec: Any, reference: str, bayes: dict[str, Any]) -> Any:
    """The Bayesian NMA of a named network. Its binomial model has a logit link, so a spec on the
    RR or RD scale is analysed as odds ratios, and the result says so."""
    import dataclasses

    from ..bayes.network import BayesNMAComparison, bayes_nma

    events = spec.measure in ("RR", "RD")
    res = bayes_nma(an.table, "OR" if events else spec.measure, reference=reference,
                    **{"benefit": spec.benefit, **bayes})
    if not events:
        return res
    note = (f"the spec's measure is {spec.measure}; the Bayesian model (binomial, logit link, NICE DSU TSD2) "
            "estimates odds ratios")
    if isinstance(res, BayesNMAComparison):
        return dataclasses.replace(res, consistency=dataclasses.replace(res.consistency,
                                                                        notes=(*res.consistency.notes, note)),
                                   ume=dataclasses.replace(res.ume, notes=(*res.ume.notes, note)))
    return dataclasses.replace(res, notes=(*res.notes, note))

def network_text(an: NetworkAnalysis) -> str:
    """What entered and what did not, and the transitivity assumptions, for the terminal."""
    import textwrap

    def wrap(text):
        return textwrap.wrap(text, 78, initial_indent="  ", subsequent_indent="    ")

    lines = ["Trials in the network:"] + [w for n in an.notes for w in wrap(n)]
    if an.omitted:
        lines.append(f"Not in the network ({len(an.omitted)} trials):")
        lines += [w for t, why in an.omitted for w in wrap(f"{t}: {why}")]
    lines += ["Transitivity assumptions:"] + textwrap.wrap(" ".join(an.spec.transitivity.split()), 78,
                                                           initial_indent="  ", subsequent_indent="  ")
    return "\n".join(lines)
