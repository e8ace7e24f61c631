"""Read RevMan 5 review files (``.rm5``, XML): comparisons, outcomes, their study rows and the totals
RevMan stored.

The layout follows RevMan 5's files as R meta's ``read.rm5`` reads them (meta 8.2,
R/read.rm5-internal.R): ``ANALYSES_AND_DATA / COMPARISON / {DICH,CONT,IV,IPD}_OUTCOME``, optional
``*_SUBGROUP`` elements, and ``*_DATA`` rows whose ``STUDY_ID`` points to ``STUDIES / STUDY``. An
outcome's attributes hold RevMan's settings (``EFFECT_MEASURE``, ``METHOD``, ``RANDOM``, ``CI_STUDY``,
``CI_TOTAL``, ``TOTALS``, ``SWAP_EVENTS``, ``LOG_DATA``) and stored totals (``EFFECT_SIZE``, ``CI_START``,
``CI_END``, ``Z``, ``P_Z``, ``CHI2`` (heterogeneity Q), ``DF``, ``P_CHI2``, ``I2``, ``TAU2``; ``Q``, ``P_Q``,
``I2_Q``: the test for subgroup differences). Ratios are stored on the natural scale.

Safety: the file is parsed by the standard library's expat after refusing any DOCTYPE or ENTITY
declaration (no entity expansion, no external resources); a truncated or malformed file is one
InputError line. Only the standard library is imported here.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:
    from .trial_table import TrialTable

KINDS = {"DICH": "dichotomous", "CONT": "continuous", "IV": "generic inverse variance",
         "IPD": "O-E and variance"}
RATIO = {"OR", "RR", "PETO_OR", "HR", "ROM", "PETO"}
# RevMan's EFFECT_MEASURE -> hatmeta's measure (analysis on the log scale for ratios).
MEASURES = {"OR": "OR", "RR": "RR", "RD": "RD", "PETO_OR": "OR", "MD": "MD", "SMD": "SMD", "HR": "HR",
            "ROM": "ROM"}


@dataclass(frozen=True)
class StudyRow:
    study_id: str
    name: str
    year: str
    values: dict  # RevMan's data attributes as numbers (None where empty)
    subgroup: str | None = None
    estimable: bool = True
    footnotes: tuple = ()


@dataclass(frozen=True)
class Outcome:
    """One RevMan analysis (``CMP-001.01``): settings, study rows, stored totals (natural scale)."""

    id: str
    name: str
    comparison_id: str
    comparison: str
    kind: str  # DICH, CONT, IV, IPD
    measure: str  # RevMan's EFFECT_MEASURE
    method: str  # MH, IV, PETO
    random: bool
    ci_study: float
    ci_total: float
    totals: str  # YES (overall and subtotals), SUB (subtotals only), NO
    swap_events: bool
    log_data: bool
    rows: tuple
    stored: dict
    subgroups: tuple = ()  # (name, stored totals) in file order
    labels: dict = field(default_factory=dict)

    @property
    def k(self) -> int:
        return len(self.rows)

    @property
    def data_type(self) -> str:
        return KINDS[self.kind]

    @property
    def model(self) -> str:
        return "random" if self.random else "fixed"

    @property
    def pooled_by_revman(self) -> bool:
        """True when RevMan stored an overall estimate: an unpooled outcome leaves it empty, and RevMan
        writes a 'Not estimable' total as zeros (a ratio of 0; or estimate and CI all 0)."""
        return estimable_total(self.stored, self.measure)

    def describe(self) -> dict:
        return {"id": self.id, "comparison_id": self.comparison_id, "comparison": self.comparison,
                "name": self.name, "data_type": self.data_type, "measure": self.measure, "method": self.method,
                "model": self.model, "k": self.k, "subgroups": [s for s, _ in self.subgroups],
                "ci_study": self.ci_study, "ci_total": self.ci_total, "totals": self.totals,
                "pooled_by_revman": self.pooled_by_revman, **({"swap_events": True} if self.swap_events else {})}


@dataclass(frozen=True)
class Review:
    path: str
    title: str
    revman_version: str
    studies: dict  # STUDY_ID -> (name, year)
    outcomes: tuple
    notes: tuple = ()  # what reading left out (unknown columns), named
    risk_of_bias: dict = field(default_factory=dict)  # study name -> {domain: judgement}
    precision: str = "full"  # of the stored totals: "full" (.rm5 doubles), "8 decimals", "6 decimals"

    def outcome(self, oid: str) -> Outcome:
        for o in self.outcomes:
            if o.id == oid:
                return o
        known = ", ".join(o.id for o in self.outcomes) or "none"
        raise InputError(f"no outcome {oid!r} in this review; outcomes: {known}", file=self.path, option="--outcome")

    def describe(self) -> dict:
        comps: dict = {}
        for o in self.outcomes:
            c = comps.setdefault(o.comparison_id, {"id": o.comparison_id, "name": o.comparison, "outcomes": []})
            c["outcomes"].append(o.describe())
        return {"file": os.path.basename(self.path), "title": self.title, "revman_version": self.revman_version,
                "studies": len(self.studies), "stored_precision": self.precision, "notes": list(self.notes),
                "comparisons": list(comps.values())}


def estimable_total(stored: dict, measure: str) -> bool:
    """Whether a stored total (overall or a subgroup's) holds an estimate; RevMan 5 writes 'Not
    estimable' as EFFECT_SIZE="0.0" with a CI of 0 to 0 (e.g. a risk ratio whose studies have no events)."""
    es = stored.get("effect_size")
    if es is None:
        return False
    return not (es == 0 and (measure in RATIO or stored.get("ci_start") == stored.get("ci_end") == 0))


def is_rm5(path: str | os.PathLike[str]) -> bool:
    return str(path).lower().endswith(".rm5")


def _number(text):
    if text is None or not str(text).strip():
        return None
    try:
        x = float(text)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def _text(el) -> str:
    """An element's text with its children's (footnote marks and markup inside names), whitespace tidied."""
    if el is None:
        return ""
    return " ".join("".join(el.itertext()).split())


STORED = {"effect_size": "EFFECT_SIZE", "ci_start": "CI_START", "ci_end": "CI_END", "z": "Z", "p_z": "P_Z",
          "chi2": "CHI2", "df": "DF", "p_chi2": "P_CHI2", "i2": "I2", "tau2": "TAU2", "q": "Q", "p_q": "P_Q",
          "i2_q": "I2_Q", "events_1": "EVENTS_1", "total_1": "TOTAL_1", "events_2": "EVENTS_2",
          "total_2": "TOTAL_2", "studies": "STUDIES"}
ROW_ATTRS = ("EVENTS_1", "TOTAL_1", "EVENTS_2", "TOTAL_2", "MEAN_1", "SD_1", "MEAN_2", "SD_2", "EFFECT_SIZE",
             "SE", "O_E", "VAR", "CI_START", "CI_END", "WEIGHT")


_ROW_SET = frozenset(ROW_ATTRS)


def _stored(el) -> dict:
    return {k: _number(el.get(a)) for k, a in STORED.items()}


def _parse(path: str):
    import xml.etree.ElementTree as ET

    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise InputError("file not found", file=path) from None
    except IsADirectoryError:
        raise InputError("a folder, not a RevMan 5 file", file=path) from None
    head = data[:4096].lstrip()
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise InputError("RevMan 5 files declare no DOCTYPE or entities; refusing this one (entity expansion)",
                         file=path)
    if not head.startswith(b"<"):
        raise InputError("not a RevMan 5 file (expected XML)", file=path)
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        line, col = exc.position
        raise InputError(f"malformed or truncated RevMan 5 XML ({str(exc).split(':')[0]}, column {col})",
                         file=path, line=line) from None
    if root.tag != "COCHRANE_REVIEW":
        raise InputError(f"not a RevMan 5 review: root element <{root.tag}>, expected <COCHRANE_REVIEW>", file=path)
    return root


def read_rm5(path: str | os.PathLike[str]) -> Review:
    """Read a RevMan 5 file; every outcome with its rows, settings and stored totals."""
    path = str(path)
    root = _parse(path)
    studies = {}
    for st in root.iter("STUDY"):
        sid = st.get("ID")
        if sid:
            studies[sid] = (st.get("NAME") or sid, st.get("YEAR") or "")
    title_el = root.find("COVER_SHEET/TITLE")
    outcomes = []
    ad = root.find("ANALYSES_AND_DATA")
    for comp in (ad.findall("COMPARISON") if ad is not None else []):
        cid = comp.get("ID") or f"CMP-{comp.get('NO', '?')}"
        cname = _text(comp.find("NAME"))
        for el in comp:
            kind = el.tag[: -len("_OUTCOME")] if el.tag.endswith("_OUTCOME") else None
            if kind is None:
                continue
            if kind not in KINDS:
                outcomes.append(_unsupported(el, kind, cid, cname))
                continue
            outcomes.append(_outcome(el, kind, cid, cname, studies, path))
    return Review(path=path, title=_text(title_el), revman_version=(root.get("REVMAN_SUB_VERSION") or
                  root.get("REVMAN_VERSION") or "").strip(), studies=studies, outcomes=tuple(outcomes),
                  risk_of_bias=_risk_of_bias(root, studies))


# RevMan 5's QUALITY_ITEM_DATA_ENTRY RESULT (the risk-of-bias tool's "low risk" is YES: the question
# of RevMan 5.0, "Adequate sequence generation?", answered yes).
ROB_RESULTS = {"YES": "low", "NO": "high", "UNKNOWN": "unclear"}


def _risk_of_bias(root, studies) -> dict:
    """study name -> {domain: low, high, unclear or not assessed} from ``QUALITY_ITEMS``: one domain per
    QUALITY_ITEM with any judgement; a group-level item (LEVEL="GROUP", e.g. blinding by outcome) judged
    for several groups of outcomes is one domain per group ('Blinding: Subjective outcomes')."""
    out: dict = {}
    for item in root.iter("QUALITY_ITEM"):
        name = _text(item.find("NAME")) or item.get("ID") or "Risk of bias"
        groups = {g.get("ID"): _text(g.find("NAME")) or g.get("ID") for g in item.iter("QUALITY_ITEM_DATA_ENTRY_GROUP")}
        entries = list(item.iter("QUALITY_ITEM_DATA_ENTRY"))
        several = len({e.get("GROUP_ID") for e in entries if e.get("GROUP_ID")}) > 1
        for e in entries:
            sid = e.get("STUDY_ID") or ""
            study = studies.get(sid, (sid.removeprefix("STD-"), ""))[0]
            domain = f"{name}: {groups.get(e.get('GROUP_ID'), e.get('GROUP_ID'))}" if several else name
            out.setdefault(study, {})[domain] = ROB_RESULTS.get((e.get("RESULT") or "").upper(), "not assessed")
    return out


def _unsupported(el, kind, cid, cname):
    return Outcome(id=el.get("ID") or "", name=_text(el.find("NAME")), comparison_id=cid, comparison=cname,
                   kind=kind, measure=el.get("EFFECT_MEASURE") or "", method=el.get("METHOD") or "",
                   random=el.get("RANDOM") == "YES", ci_study=95.0, ci_total=95.0, totals="NO",
                   swap_events=False, log_data=False, rows=(), stored={})


def _outcome(el, kind, cid, cname, studies, path) -> Outcome:
    oid = el.get("ID") or f"{cid}.{int(_number(el.get('NO')) or 0):02d}"
    measure = (el.get("EFFECT_MEASURE") or ("MD" if kind == "CONT" else "OR" if kind == "DICH" else "")).upper()
    method = (el.get("METHOD") or ("PETO" if kind == "IPD" else "IV")).upper()
    if measure == "PETO_OR":
        method = "PETO"
    rows: list[StudyRow] = []
    subgroups: list[tuple[str, Any]] = []
    data_tag, sub_tag = f"{kind}_DATA", f"{kind}_SUBGROUP"
    for child in el:
        if child.tag == data_tag:
            rows.append(_row(child, None, studies))
        elif child.tag == sub_tag:
            sname = _text(child.find("NAME")) or f"Subgroup {child.get('NO', len(subgroups) + 1)}"
            subgroups.append((sname, _stored(child)))
            rows.extend(_row(r, sname, studies) for r in child.findall(data_tag))
    labels = {t: _text(el.find(t)) for t in ("GROUP_LABEL_1", "GROUP_LABEL_2", "GRAPH_LABEL_1", "GRAPH_LABEL_2")}
    return Outcome(id=oid, name=_text(el.find("NAME")), comparison_id=cid, comparison=cname, kind=kind,
                   measure=measure, method=method, random=(el.get("RANDOM") or "NO").upper() == "YES",
                   ci_study=_number(el.get("CI_STUDY")) or 95.0, ci_total=_number(el.get("CI_TOTAL")) or 95.0,
                   totals=(el.get("TOTALS") or "YES").upper(), swap_events=(el.get("SWAP_EVENTS") or "NO") != "NO",
                   log_data=(el.get("LOG_DATA") or "NO").upper() == "YES", rows=tuple(rows), stored=_stored(el),
                   subgroups=tuple(subgroups), labels=labels)


def _row(el, subgroup, studies) -> StudyRow:
    sid = el.get("STUDY_ID") or ""
    name, year = studies.get(sid, (sid.removeprefix("STD-"), ""))
    notes = tuple(_text(f) for f in el.iter("FOOTNOTE") if _text(f))
    # only the attributes given (RevMan leaves many empty): a dict of numbers, None where not a number
    return StudyRow(study_id=sid, name=name, year=year,
                    values={a: _number(v) for a, v in el.attrib.items() if v and a in _ROW_SET},
                    subgroup=subgroup, estimable=(el.get("ESTIMABLE") or "YES") != "NO", footnotes=notes)


def study_label(r: StudyRow) -> str:
    """'Name year', as RevMan shows a study; the year once when the name already ends with it."""
    return r.name if not r.year or r.name.endswith(r.year) else f"{r.name} {r.year}".strip()


def outcome_table(review: Review, o: Outcome) -> tuple[TrialTable, str, tuple[str, ...]]:
    """(TrialTable, hatmeta measure, notes) of an outcome's rows, for ``pool``. Columns: the layout's,
    ``revman_id`` (RevMan's STUDY_ID), ``label`` (name and year), ``year`` and ``subgroup`` (when any)."""
    from .trial_table import table_from_rows

    if o.kind not in KINDS:
        raise InputError(f"outcome {o.id} is a {o.kind} outcome, which hatmeta does not pool", file=review.path,
                         option="--outcome")
    if not o.rows:
        raise InputError(f"outcome {o.id} ({o.name}) has no study data", file=review.path, option="--outcome")
    measure = MEASURES.get(o.measure)
    if measure is None and o.kind in ("IV", "IPD"):
        measure = "GEN"  # a generic estimate RevMan names freely (e.g. 'Rate ratio'), pooled as given
    if measure is None:
        raise InputError(f"outcome {o.id}: RevMan effect measure {o.measure!r} is not supported", file=review.path,
                         option="--outcome")
    notes = []
    if o.kind == "DICH":
        cols = ["events_treat", "n_treat", "events_ctrl", "n_ctrl"]
        keys = ["EVENTS_1", "TOTAL_1", "EVENTS_2", "TOTAL_2"]
    elif o.kind == "CONT":
        cols = ["mean_treat", "sd_treat", "n_treat", "mean_ctrl", "sd_ctrl", "n_ctrl"]
        keys = ["MEAN_1", "SD_1", "TOTAL_1", "MEAN_2", "SD_2", "TOTAL_2"]
    else:
        cols, keys = ["yi", "se"], None
    header = ["study", *cols, "revman_id", "label", "year"] + (["subgroup"] if o.subgroups else [])
    table_rows = [header]
    for r in o.rows:
        v = r.values
        if keys is not None:
            vals = [v.get(k) for k in keys]
            if o.kind == "DICH" and o.swap_events and None not in vals:
                vals = [vals[1] - vals[0], vals[1], vals[3] - vals[2], vals[3]]
        elif o.kind == "IPD":
            oe, var = v.get("O_E"), v.get("VAR")
            vals = [None, None] if oe is None or not var else [oe / var, 1 / math.sqrt(var)]
        else:
            es, se = v.get("EFFECT_SIZE"), v.get("SE")
            if es is not None and o.measure in RATIO and o.log_data:
                # R meta's read.rm5: LOG_DATA="YES" stores the ratio itself; analysed on the log scale
                es = math.log(es) if es > 0 else None
            vals = [es, se]
        label = study_label(r)
        cells = ["" if x is None else repr(float(x)) for x in vals]
        table_rows.append([r.name, *cells, r.study_id, label, r.year] + ([r.subgroup or ""] if o.subgroups else []))
    if o.swap_events:
        notes.append(f"outcome {o.id}: RevMan's SWAP_EVENTS: non-events analysed as the events")
    for r in o.rows:
        for f in r.footnotes:
            notes.append(f"footnote ({study_label(r)}): {f}")
    table = table_from_rows(table_rows, path=f"{review.path}#{o.id}", measure=measure, drop_incomplete=True)
    return table, measure, tuple(notes)


def preset_method(o: Outcome) -> str:
    """The revman5 preset's --method for RevMan's (METHOD, RANDOM) of ``o``. O-E and variance rows are
    (O - E) / V with SE 1 / sqrt(V): their inverse-variance total is Peto's."""
    if o.kind in ("IV", "IPD", "CONT") or o.method == "IV":
        return "IV-DL" if o.random else "FE"
    if o.method == "PETO":
        if o.random:
            raise InputError(f"outcome {o.id}: RevMan's Peto method has no random-effects model", option="--outcome")
        return "PETO"
    return "MH-DL" if o.random else "MH"
