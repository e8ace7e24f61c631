"""What sits beside the pooled numbers of a HAT analysis: risk of bias, published reviews, gaps.

Three optional files of the extraction folder (data/extracted/README.md describes them):

- ``risk_of_bias.csv``: one judgement per trial and domain (Cochrane risk-of-bias tool 1, as the
  Cochrane review CD003410 used), each with whose judgement it is and where it was read;
- ``published.csv``: pooled results of published reviews, for reconciliation only (never pooled);
- ``searches.csv``: where each figure still ``not reported`` was sought.

They are read with the extraction's own CSV reader, so a mistake is named by file, line and
column like any other. Only the standard library is used (the command line starts fast).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .extraction import Column, Row, _check_cell, default_data_dir, read_csv_rows, rows_from_cells

JUDGEMENTS = ("low", "some concerns", "unclear", "high", "not assessed")
DOMAINS = ("random sequence generation", "allocation concealment", "blinding of participants and personnel",
           "blinding of outcome assessment", "incomplete outcome data", "selective reporting", "other bias")

SCHEMA = {
    "risk_of_bias.csv": (Column("trial", True, "id"), Column("domain", True, "choice", DOMAINS),
                         Column("judgement", True, "choice", JUDGEMENTS), Column("support"),
                         Column("assessed_by"), Column("source")),
    "published.csv": (Column("source", True, "id"), Column("citation", True), Column("locator", True),
                      Column("comparison", True), Column("control_arms", True), Column("outcome", True, "id"),
                      Column("trials", True, "int", minimum=1), Column("participants", False, "int", minimum=1),
                      Column("measure", True, "choice", ("RR", "OR", "RD", "MD", "SMD", "HR")),
                      Column("estimate", True, "number"), Column("ci_low", False, "number"),
                      Column("ci_high", False, "number"), Column("direction"), Column("note")),
    "searches.csv": (Column("trial", True, "id"), Column("outcome", True, "id"), Column("searched", True)),
}


@dataclass(frozen=True)
class Published:
    """One published pooled result (natural scale for ratios)."""

    source: str
    citation: str
    locator: str
    comparison: str
    control_arms: tuple  # arms.csv codes of the review's control, e.g. ("mmt",) for "vs oral methadone"
    outcome: str
    trials: int
    participants: int | None
    measure: str
    estimate: float
    ci_low: float | None
    ci_high: float | None
    direction: str
    note: str

    @property
    def source_label(self) -> str:
        """'Ferri 2011, Cochrane CD003410.pub4' style: first author, year and where it appeared."""
        import re

        author = self.citation.split(" ")[0].rstrip(",")
        year = re.search(r"\b(19|20)\d\d\b", self.citation)
        review = re.search(r"CD\d{6}(\.pub\d)?", self.citation)
        return f"{author} {year.group(0) if year else ''}".strip() + (f", Cochrane {review.group(0)}" if review else "")

    def to_dict(self) -> dict:
        return {"source": self.citation + ", " + self.locator, "label": self.source_label,
                "comparison": self.comparison, "trials": self.trials, "participants": self.participants,
                "measure": self.measure, "estimate": self.estimate,
                "ci_low": self.ci_low, "ci_high": self.ci_high, "note": self.note}


@dataclass(frozen=True)
class Appraisal:
    """The three files, validated. ``risk_of_bias``: trial -> {domain: (judgement, support, by, source)}."""

    risk_of_bias: dict
    published: tuple
    searches: dict  # (trial, outcome) -> where sought

    def judgements(self, trial: str) -> dict:
        """domain -> judgement for one trial, every domain present ('not assessed' where none)."""
        given = self.risk_of_bias.get(trial, {})
        return {d: given[d][0] if d in given else "not assessed" for d in DOMAINS}

    def published_for(self, outcome: str, control_arms=None) -> tuple:
        """The published results for ``outcome`` whose comparison has one of ``control_arms`` (arms.csv
        codes of the analysis's control; None: any) as its control: a review of heroin against oral
        methadone is not set beside an analysis against hydromorphone."""
        return tuple(p for p in self.published if p.outcome == outcome
                     and (control_arms is None or set(p.control_arms) & set(control_arms)))


def _read(path: Path, name: str, errors: list) -> list:
    if not path.exists():
        return []  # the files are optional: an extraction without them has no appraisal
    header, raw = read_csv_rows(path, errors)
    if header is None:
        return []
    missing = [c.name for c in SCHEMA[name] if c.name not in header]
    for col in missing:
        errors.append(InputError(f"missing column (the {name} layout needs "
                                 f"{', '.join(c.name for c in SCHEMA[name])})", file=str(path), line=1, column=col))
    if missing:
        return []
    rows = rows_from_cells(header, raw, str(path), errors)
    for row in rows:
        for col in SCHEMA[name]:
            _check_cell(row, col, errors)
    return rows


def _num(row: Row, column: str):
    return float(row[column]) if row[column] else None


def check_appraisal(data_dir=None, trial_ids=None) -> tuple:
    """(Appraisal, errors): every problem in the three files, as InputErrors with file:line: column."""
    folder = Path(data_dir) if data_dir is not None else default_data_dir()
    errors: list = []
    rob, seen = {}, {}
    for row in _read(folder / "risk_of_bias.csv", "risk_of_bias.csv", errors):
        key = (row["trial"], row["domain"])
        if row["judgement"] not in ("not assessed", "") and not (row["source"] and row["assessed_by"]):
            errors.append(InputError("a judgement needs its source and who assessed it",
                                     file=row.file, line=row.line, column="source"))
        if key in seen:
            errors.append(InputError(f"second judgement for {key[0]} / {key[1]} (first on line {seen[key]})",
                                     file=row.file, line=row.line, column="domain"))
            continue
        seen[key] = row.line
        rob.setdefault(row["trial"], {})[row["domain"]] = (row["judgement"], row["support"], row["assessed_by"],
                                                            row["source"])
    published = []
    for row in _read(folder / "published.csv", "published.csv", errors):
        try:
            published.append(Published(row["source"], row["citation"], row["locator"], row["comparison"],
                                       tuple(a.strip() for a in row["control_arms"].split(";") if a.strip()),
                                       row["outcome"], int(row["trials"]),
                                       int(row["participants"]) if row["participants"] else None, row["measure"],
                                       float(row["estimate"]), _num(row, "ci_low"), _num(row, "ci_high"),
                                       row["direction"], row["note"]))
        except ValueError:
            continue  # the cell check above has named the bad cell
    searches = {}
    for row in _read(folder / "searches.csv", "searches.csv", errors):
        searches[(row["trial"], row["outcome"])] = row["searched"]
    if trial_ids is not None:
        for trial in sorted(set(rob) - set(trial_ids)):
            errors.append(InputError(f"trial {trial!r} is not in trials.csv", file=str(folder / "risk_of_bias.csv"),
                                     column="trial"))
    return Appraisal(rob, tuple(published), searches), errors


def load_appraisal(data_dir=None) -> Appraisal:
    """The validated appraisal files; raises the first problem as an InputError."""
    appraisal, errors = check_appraisal(data_dir)
    if errors:
        raise errors[0]
    return appraisal


def gap_rows(omitted, outcome: str, appraisal: Appraisal, labels=None) -> list:
    """The readable table of what is missing: one row per distinct reason, trials grouped.

    ``omitted`` is [(trial, reason)]; the reason's first sentence is what is missing, and the
    places sought come from searches.csv. Rows: {"trials", "missing", "sought"}.
    """
    labels = labels or {}
    groups: dict = {}
    for trial, reason in omitted:
        if reason.startswith("not reported (") and reason.endswith(")"):
            reason = reason[len("not reported ("):-1]
        missing = _first_sentence(reason)
        excluded = reason.startswith("excluded")  # a choice of the analysis, not a missing figure
        sought = "" if excluded else appraisal.searches.get((trial, outcome), "")
        group = groups.setdefault(missing, {"trials": [], "sought": []})
        label = labels.get(trial, trial)
        group["trials"].append(label)
        if sought:
            group["sought"].append((label, sought))
    rows = []
    for missing, g in groups.items():
        if len(g["sought"]) == 1 and len(g["trials"]) == 1:
            sought = g["sought"][0][1]
        else:
            sought = " ".join(f"{label}: {text}" for label, text in g["sought"])
        rows.append({"trials": g["trials"], "missing": missing, "sought": sought})
    return rows


def refusal_details(exc, spec, extraction) -> None:
    """Fill a NotPooled error with the gaps table, the published results for the outcome and a few
    short lines for the terminal (``extraction``: the Extraction the analysis was built from)."""
    from .analysis import trial_labels

    appraisal, labels = extraction.appraisal, trial_labels(extraction)
    exc.gaps = gap_rows(exc.omitted, spec.outcome, appraisal, labels)
    exc.published = [p.to_dict() for p in appraisal.published_for(spec.outcome, spec.control_arms)]
    published = []
    for p in exc.published:
        ci = f" ({p['ci_low']:.2f} to {p['ci_high']:.2f})" if p["ci_low"] is not None else ""
        published.append(f"published: {p['measure']} {p['estimate']:.2f}{ci}, {p['label']} ({p['trials']} trials"
                         + (f", {p['participants']} participants" if p["participants"] else "")
                         + "), not reproduced here")
    full = [f"  {_short_list(g['trials'])}: {g['missing']}" for g in exc.gaps] + [f"  {x}" for x in published]
    exc.details_full = "\n".join(full + ["  (--format json or the report lists where each figure was sought)"])
    exc.details = "\n".join(_grouped(exc.gaps) + _wrapped(published) + [
        "  (-v: each trial's note; --format json or the report: where each was sought)"])


def _kind(missing: str) -> str:
    """What a gap is, for the short refusal: the eligibility criterion it fails ('[arms] control'), an
    exclusion the analysis makes, or a figure not reported by arm."""
    if missing.startswith("[") and "]" in missing:
        return missing.split(":", 1)[0]
    if missing.startswith("excluded"):
        return "excluded by the analysis"
    return "not reported by arm in any source opened"


def _grouped(gaps, width: int = 80) -> list:
    """One wrapped entry per kind of gap, its trials listed (at most four, then how many more)."""
    kinds: dict = {}
    for g in gaps:
        kinds.setdefault(_kind(g["missing"]), []).extend(g["trials"])
    return _wrapped([f"{kind}: {_short_list(trials, most=3)}" for kind, trials in kinds.items()], width)


def _wrapped(entries, width: int = 80) -> list:
    import textwrap

    return [line for e in entries for line in textwrap.wrap(e, width, initial_indent="  ", subsequent_indent="    ")]


def _short_list(items, most=4) -> str:
    return ", ".join(items) if len(items) <= most else ", ".join(items[:most]) + f" and {len(items) - most} more"


def _first_sentence(text: str) -> str:
    """Up to the first full stop that ends a sentence (not one inside a citation like 'N=1477')."""
    for i, ch in enumerate(text):
        if ch == "." and (i + 1 == len(text) or text[i + 1] == " ") and not text[max(0, i - 3):i].strip().isdigit():
            return text[: i + 1]
    return text


def analysis_extras(result, analysis) -> dict:
    """What a pooled HAT analysis carries beside its numbers (MetaResult.extra): each study's
    risk-of-bias judgements, the published pooled results for its outcome (natural scale) and the
    table of gaps (trials left out, what is missing, where it was sought)."""
    from .analysis import trial_labels

    appraisal, outcome = analysis.extraction.appraisal, analysis.spec.outcome
    return {
        "study_annotations": {s.study: {"risk_of_bias": appraisal.judgements(s.study)} for s in result.studies},
        "published": [_beside(p, result, analysis)
                      for p in appraisal.published_for(outcome, analysis.spec.control_arms)],
        "gaps": gap_rows(analysis.omitted, outcome, appraisal, trial_labels(analysis.extraction)),
    }


def _benefit_of(direction: str) -> str | None:
    """'higher' or 'lower' from a published result's direction ('higher favours heroin'), else None."""
    first = direction.strip().split(" ")[0].lower() if direction else ""
    return first if first in ("higher", "lower") else None


def _beside(published: Published, result, analysis) -> dict:
    """A published result as it is shown beside ours: with the direction each side counts, and where the
    review counts the opposite event (retained vs not retained, using vs not using), our result for the
    review's event: exact for binary counts (OR and RD by symmetry, RR refitted on the complementary
    counts with the same model), so that the two can be read side by side."""
    out = published.to_dict()
    theirs, ours = _benefit_of(published.direction), analysis.spec.benefit
    out["direction"] = published.direction
    out["our_direction"] = f"{ours} favours {analysis.spec.experimental_label}"
    out["same_event"] = theirs is None or theirs == ours
    if out["same_event"] or published.measure != result.measure or result.measure not in ("RR", "OR", "RD"):
        return out
    if result.measure == "RR":
        from ..api import pool_table

        cols = {c: [float(s.inputs[c]) for s in result.studies]
                for c in ("events_treat", "n_treat", "events_ctrl", "n_ctrl")}
        cols = {"study": [s.study for s in result.studies], "n_treat": cols["n_treat"], "n_ctrl": cols["n_ctrl"],
                "events_treat": [n - e for n, e in zip(cols["n_treat"], cols["events_treat"])],
                "events_ctrl": [n - e for n, e in zip(cols["n_ctrl"], cols["events_ctrl"])]}
        other = pool_table(cols, "RR", method=result.method, ci=result.ci_method,
                           pi=result.pi_method if result.pi_method != "none" else "t", level=result.level)
        est, lo, hi = (math.exp(x) for x in (other.estimate, other.ci_low, other.ci_high))
    elif result.measure == "OR":  # the complement's log OR is minus ours, study by study and pooled
        est, lo, hi = (math.exp(-x) for x in (result.estimate, result.ci_high, result.ci_low))
    else:
        est, lo, hi = -result.estimate, -result.ci_high, -result.ci_low
    out["ours_for_review_event"] = {"measure": result.measure, "estimate": est, "ci_low": lo, "ci_high": hi,
                                    "k": result.k}
    return out


def risk_of_bias_of(result):
    """study -> {domain: judgement} of a pooled HAT analysis (None for any other table): what the forest
    plot draws as traffic lights."""
    notes = result.extra.get("study_annotations") or {}
    rob = {study: a["risk_of_bias"] for study, a in notes.items() if "risk_of_bias" in a}
    return rob or None
