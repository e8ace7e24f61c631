"""Read Cochrane's "version 1" data package and RevMan 5's analyses CSV export into the same
``Review`` as a RevMan 5 file (``hatmeta/io/revman.py``), so that `hatmeta revman` and
`pool --data X --outcome ID` take them too.

- Data package (version 1; what R meta's ``read.cdir`` reads, meta 8.2 R/read.cdir.R): a zip or a
  folder with ``analysis-data/*-overall-estimates-and-settings.csv``, ``*-data-rows.csv`` and
  ``*-subgroup-estimates.csv`` (and ``study-data/*-risk-of-bias.csv``), possibly inside a zip inside
  the zip (``*-data.zip``), as the Cochrane Library hands it out. Values to 6 decimals.
- RevMan 5's "Analyses" CSV export (meta's ``Fleiss1993_CR.csv``; what ``read.rm5`` read before RevMan
  files): one row per comparison, outcome, subgroup and study; values to 8 decimals.

Outcome ids follow RevMan 5 (``CMP-001.01`` for analysis 1.1). A package with analysis-data columns
outside version 1 (RevMan's layout since 23 September 2024) is refused with the columns named, and
malformed rows are one line with file, line and column (``revman_formats.check_package``). Only the
standard library is imported.
"""

from __future__ import annotations

import csv
import io
import math
import os
import zipfile
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from .revman import Outcome, Review, StudyRow, _number

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from .trial_table import TrialTable

MEASURE_NAMES = {"odds ratio": "OR", "risk ratio": "RR", "risk difference": "RD", "mean difference": "MD",
                 "std. mean difference": "SMD", "standardized mean difference": "SMD",
                 "standardised mean difference": "SMD", "hazard ratio": "HR", "peto odds ratio": "PETO_OR",
                 "ratio of means": "ROM"}
KIND_NAMES = {"dichotomous": "DICH", "continuous": "CONT", "generic inverse variance": "IV", "o-e and variance": "IPD",
              "dic": "DICH", "con": "CONT", "giv": "IV", "iv": "IV", "ipd": "IPD", "oe": "IPD"}


def is_package(path: str | os.PathLike[str]) -> bool:
    p = str(path)
    return p.lower().endswith(".zip") or (os.path.isdir(p) and _find_in_dir(p, "overall-estimates-and-settings.csv"))


def is_csv_export(path: str | os.PathLike[str]) -> bool:
    """RevMan 5's analyses CSV: its header starts 'Comparison Number,Outcome Number,Subgroup Number'."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as fh:
            head = fh.readline()
    except OSError:
        return False
    return head.startswith("Comparison Number,Outcome Number,Subgroup Number")


def _find_in_dir(folder, suffix):
    for root, _, files in os.walk(folder):
        for f in files:
            if f.endswith(suffix):
                return os.path.join(root, f)
    return None


def _package_files(path) -> dict:
    """{suffix: text} of the package's CSVs (zip, zip in a zip, or folder)."""
    want = ("overall-estimates-and-settings.csv", "data-rows.csv", "subgroup-estimates.csv", "risk-of-bias.csv")
    out: dict = {}
    names = out.setdefault(NAMES, {})  # {suffix: the file's name in the package}, for error messages
    if os.path.isdir(path):
        for w in want:
            f = _find_in_dir(path, w)
            if f:
                with open(f, encoding="utf-8-sig") as fh:
                    out[w] = fh.read()
                names[w] = os.path.relpath(f, path)
        return out

    def scan(z, depth=0):
        for name in z.namelist():
            for w in want:
                if name.endswith(w) and w not in out:
                    out[w] = z.read(name).decode("utf-8-sig")
                    names[w] = name
            if name.lower().endswith(".zip") and depth < 2 and "overall-estimates-and-settings.csv" not in out:
                with zipfile.ZipFile(io.BytesIO(z.read(name))) as inner:
                    scan(inner, depth + 1)

    try:
        with zipfile.ZipFile(path) as z:
            scan(z)
    except FileNotFoundError:
        raise InputError("file not found", file=path) from None
    except (zipfile.BadZipFile, EOFError, UnicodeDecodeError) as exc:
        raise InputError(f"not a readable Cochrane data package ({exc})", file=path) from None
    return out


NAMES = "names"  # the key of _package_files' {suffix: name in the package}


def _rows(text):
    return list(csv.DictReader(io.StringIO(text)))


def _cid(g, n=None):
    g = int(_number(g) or 0)
    return f"CMP-{g:03d}" if n is None else f"CMP-{g:03d}.{int(_number(n) or 0):02d}"


def _stored_pkg(r) -> dict:
    st = {"effect_size": _number(r.get("Mean")), "ci_start": _number(r.get("CI start")),
          "ci_end": _number(r.get("CI end")), "z": _number(r.get("Effect Z")), "p_z": _number(r.get("Effect P")),
          "chi2": _number(r.get("Heterogeneity Chi²")), "df": _number(r.get("Heterogeneity df")),
          "p_chi2": _number(r.get("Heterogeneity P")), "i2": _number(r.get("Heterogeneity I²")),
          "tau2": _number(r.get("Heterogeneity Tau²")), "q": _number(r.get("Subgroup Chi²")),
          "p_q": _number(r.get("Subgroup P")), "i2_q": _number(r.get("Subgroup I²"))}
    # RevMan writes zeros where it did not pool (estimate and CI all 0)
    if st["effect_size"] == st["ci_start"] == st["ci_end"]:
        st = {k: None for k in st}
    return st


def _true(x):
    return str(x).strip().lower() in ("true", "yes", "1")


def read_package(path: str | os.PathLike[str]) -> Review:
    """A Cochrane version 1 data package (zip or folder) as a ``Review``."""
    path = str(path)
    files = _package_files(path)
    if "overall-estimates-and-settings.csv" not in files or "data-rows.csv" not in files:
        raise InputError("not a Cochrane data package: no analysis-data/*-overall-estimates-and-settings.csv and "
                         "*-data-rows.csv", file=path)
    from .revman_formats import check_package

    check_package(path, files, files[NAMES])  # a newer layout refused, columns named; rows checked
    overall = _rows(files["overall-estimates-and-settings.csv"])
    data = _rows(files["data-rows.csv"])
    subs = _rows(files.get("subgroup-estimates.csv", ""))
    notes: list[str] = []  # (columns outside version 1 are refused by check_package above)
    rob = {}
    for r in _rows(files.get("risk-of-bias.csv", "")):
        rob[r.get("Study", "")] = {k.split(":", 1)[1].strip(): v for k, v in r.items()
                                   if k.startswith("Domain (judgement)") and v}
    outcomes = []
    for o in overall:
        key = (o["Analysis group"], o["Analysis number"])
        kind = KIND_NAMES.get(o.get("Data type", "").strip().lower())
        measure = MEASURE_NAMES.get(o.get("Effect measure", "").strip().lower(), o.get("Effect measure", ""))
        method = {"mh": "MH", "iv": "IV", "peto": "PETO", "m-h": "MH"}.get(o.get("Statistical method", "").lower(),
                                                                           o.get("Statistical method", "").upper())
        subgroup_rows = [s for s in subs if (s["Analysis group"], s["Analysis number"]) == key]
        rows = []
        for r in data:
            if (r["Analysis group"], r["Analysis number"]) != key:
                continue
            v = {"EVENTS_1": _number(r.get("Experimental cases")), "TOTAL_1": _number(r.get("Experimental N")),
                 "EVENTS_2": _number(r.get("Control cases")), "TOTAL_2": _number(r.get("Control N")),
                 "MEAN_1": _number(r.get("Experimental mean")), "SD_1": _number(r.get("Experimental SD")),
                 "MEAN_2": _number(r.get("Control mean")), "SD_2": _number(r.get("Control SD")),
                 "EFFECT_SIZE": _number(r.get("Mean")),
                 "SE": _number(r.get("GIV SE")), "O_E": _number(r.get("O-E")), "VAR": _number(r.get("Variance")),
                 "CI_START": _number(r.get("CI start")), "CI_END": _number(r.get("CI end")),
                 "WEIGHT": _number(r.get("Weight"))}
            if v["EFFECT_SIZE"] == v["CI_START"] == v["CI_END"]:
                v.update(EFFECT_SIZE=None, CI_START=None, CI_END=None, WEIGHT=None)  # not computed by RevMan
            if kind == "IV":  # the data: GIV Mean and SE on the analysis scale; "Mean" is RevMan's result shown
                v["SHOWN_ES"], v["EFFECT_SIZE"] = v["EFFECT_SIZE"], _number(r.get("GIV Mean"))
            foot = tuple(x for x in [r.get("Footnotes", "").strip()] if x)
            rows.append(StudyRow(study_id=r.get("Study", ""), name=r.get("Study", ""), year=r.get("Study year", ""),
                                 values=v, subgroup=r.get("Subgroup") or None, footnotes=foot))
        sg = tuple((s["Subgroup"], _stored_pkg(s)) for s in subgroup_rows)
        if not sg and any(r.subgroup for r in rows):
            sg = tuple((name, {}) for name in dict.fromkeys(r.subgroup for r in rows if r.subgroup))
        def level(x):
            return _number(str(x).rstrip("%")) or 95.0
        outcomes.append(Outcome(
            id=_cid(*key), name=o.get("Analysis name", ""), comparison_id=_cid(key[0]),
            comparison=o.get("Analysis group name", ""), kind=kind or "?", measure=measure, method=method,
            random=o.get("Analysis model", "").lower().startswith("random"), ci_study=level(o.get("Study CI", "95")),
            ci_total=level(o.get("Estimate CI", "95")),
            totals="YES" if _true(o.get("Overall estimates", "true")) else "SUB",
            # GIV Mean is on the analysis scale already (R meta's read.cdir logs only the CIs)
            swap_events=_true(o.get("Swap event and non-event", "false")), log_data=False,
            rows=tuple(rows), stored=_stored_pkg(o), subgroups=sg,
            labels={"GROUP_LABEL_1": o.get("Experimental group label", ""),
                    "GROUP_LABEL_2": o.get("Control group label", "")}))
    return Review(path=path, title=os.path.basename(path), revman_version="data package v1",
                  studies={s: (s, "") for s in rob} or {r.name: (r.name, r.year) for o in outcomes for r in o.rows},
                  outcomes=tuple(outcomes), notes=tuple(notes), risk_of_bias=rob,
                  # hatmeta's own packages (revman-export): 10 significant digits; RevMan's, 6 decimals
                  precision="10 significant digits" if overall and all(o.get("ID", "").startswith("analysis:hatmeta-")
                                                      for o in overall) else "6 decimals")


def read_csv_export(path: str | os.PathLike[str]) -> Review:
    """RevMan 5's analyses CSV export as a ``Review`` (values to 8 decimals)."""
    from .trial_table import read_rows

    path = str(path)
    from .revman_formats import CSV_EXPORT_NUMBERS, check_rows

    raw = read_rows(path)
    header = raw[0]
    check_rows(path, ((i + 1, r) for i, r in enumerate(raw) if i), header, CSV_EXPORT_NUMBERS)
    rows = [dict(zip(header, r)) for r in raw[1:] if any(c.strip() for c in r)]
    outcomes: list[dict[str, Any]] = []  # per outcome: key (comparison, outcome), row, studies, subgroups
    comps: dict[int, str] = {}
    current: dict[str, Any] | None = None
    for r in rows:
        c, o, s = (int(_number(r.get(k)) or 0) for k in ("Comparison Number", "Outcome Number", "Subgroup Number"))
        if o == 0:
            comps[c] = r["Name"]
            continue
        if r.get("Data Type"):  # an outcome row: settings and totals
            current = {"key": (c, o), "row": r, "studies": [], "subgroups": []}
            outcomes.append(current)
            continue
        if current is None or current["key"] != (c, o):
            raise InputError(f"study row of outcome {c}.{o} before its outcome row", file=path)
        if s and not r.get("Year of study") and not r.get("Total 1"):  # a subgroup's totals
            current["subgroups"].append((s, r))
            continue
        current["studies"].append((s, r))
    out = []
    for cur in outcomes:
        r = cur["row"]
        kind = KIND_NAMES.get(r["Data Type"].strip().lower(), "?")
        subnames = {s: sr["Name"] for s, sr in cur["subgroups"]}
        study_rows = []
        for s, sr in cur["studies"]:
            v = {"EVENTS_1": _number(sr.get("Events 1")), "TOTAL_1": _number(sr.get("Total 1")),
                 "EVENTS_2": _number(sr.get("Events 2")), "TOTAL_2": _number(sr.get("Total 2")),
                 "MEAN_1": _number(sr.get("Mean 1")), "SD_1": _number(sr.get("SD 1")),
                 "MEAN_2": _number(sr.get("Mean 2")), "SD_2": _number(sr.get("SD 2")),
                 "EFFECT_SIZE": _number(sr.get("Effect Estimate")), "SE": _number(sr.get("SE")),
                 "CI_START": _number(sr.get("CI Start")), "CI_END": _number(sr.get("CI End")),
                 "WEIGHT": _number(sr.get("Weight"))}
            study_rows.append(StudyRow(study_id=sr["Name"], name=sr["Name"], year=sr.get("Year of study", ""),
                                       values=v, subgroup=subnames.get(s)))

        def stored(x):
            return {"effect_size": _number(x.get("Effect Estimate")), "ci_start": _number(x.get("CI Start")),
                    "ci_end": _number(x.get("CI End")), "z": _number(x.get("Z")), "p_z": _number(x.get("P(Z)")),
                    "chi2": _number(x.get("Q")), "df": _number(x.get("df")), "p_chi2": _number(x.get("P(Q)")),
                    "i2": _number(x.get("I²(Q)")), "tau2": _number(x.get("Tau²")), "q": _number(x.get("Qint")),
                    "p_q": _number(x.get("P(Qint)")), "i2_q": _number(x.get("I²(Qint)"))}

        c, o = cur["key"]
        out.append(Outcome(
            id=_cid(c, o), name=r["Name"], comparison_id=_cid(c), comparison=comps.get(c, ""), kind=kind,
            measure=r.get("Effect Measure", "").upper(), method=r.get("Statistical Method", "").upper(),
            random=r.get("Analysis Model", "").lower().startswith("random"), ci_study=95.0, ci_total=95.0,
            totals="YES", swap_events=False, log_data=False, rows=tuple(study_rows), stored=stored(r),
            subgroups=tuple((sr["Name"], stored(sr)) for _, sr in cur["subgroups"]),
            labels={"GROUP_LABEL_1": r.get("Group Label 1", ""), "GROUP_LABEL_2": r.get("Group Label 2", "")}))
    return Review(path=path, title=os.path.basename(path), revman_version="5 (analyses CSV export)",
                  studies={s.name: (s.name, s.year) for o in out for s in o.rows}, outcomes=tuple(out),
                  precision="8 decimals")


def read_any_review(path: str | os.PathLike[str]) -> Review:
    """A RevMan 5 file (.rm5), a data package (zip or folder) or RevMan 5's analyses CSV."""
    from .revman import read_rm5

    p = str(path)
    if is_package(p):
        return read_package(p)
    if p.lower().endswith(".csv"):
        if is_csv_export(p):
            return read_csv_export(p)
        from .revman_formats import refuse_csv
        from .trial_table import read_rows

        raise refuse_csv(p, (read_rows(p) or [[]])[0])
    if p.lower().endswith(".json"):
        from .revman_formats import refuse_json

        raise refuse_json(p)
    return read_rm5(p)


# ---------------------------------------------------------------- writing a data package

DATA_ROWS = ["Analysis group", "Analysis number", "Analysis name", "Subgroup", "Applicability", "Study", "Study year",
             "GIV Mean", "GIV SE", "Experimental mean", "Experimental SD", "Experimental cases", "Experimental N",
             "Control mean", "Control SD", "Control cases", "Control N", "O-E", "Variance", "Weight", "Mean",
             "CI start", "CI end", "Footnotes"]
OVERALL = ["Analysis group", "Analysis number", "Analysis name", "Analysis group name", "Data source",
           "Data source eligibility", "Data type", "Log-scale data", "Outcome", "Intervention grouping",
           "Experimental intervention", "Control intervention", "Subgroup by", "Filter criteria",
           "Experimental group label", "Control group label", "Statistical method", "Effect measure",
           "Unit of effect measure", "Analysis model", "Subgroup estimates", "Overall estimates",
           "Test for subgroup differences", "Swap event and non-event", "Study CI", "Estimate CI",
           "Experimental cases", "Experimental N", "Control cases", "Control N", "Mean", "CI start", "CI end",
           "Heterogeneity Tau²", "Heterogeneity Chi²", "Heterogeneity df", "Heterogeneity P", "Heterogeneity I²",
           "Effect Z", "Effect P", "Subgroup Chi²", "Subgroup df", "Subgroup P", "Subgroup I²", "ID"]
SUBGROUPS = ["Analysis group", "Analysis number", "Subgroup", "Subgroup number", "Experimental cases",
             "Experimental N", "Control cases", "Control N", "Weight", "Mean", "CI start", "CI end",
             "Heterogeneity Tau²", "Heterogeneity Chi²", "Heterogeneity df", "Heterogeneity P", "Heterogeneity I²",
             "Effect Z", "Effect P", "ID"]
LONG_MEASURE = {"OR": "Odds Ratio", "RR": "Risk Ratio", "RD": "Risk Difference", "MD": "Mean Difference",
                "SMD": "Standardized Mean Difference", "HR": "Hazard Ratio", "PETO": "Peto Odds Ratio",
                "ROM": "Ratio of Means", "GEN": "Generic"}
LONG_KIND = {"binary": "Dichotomous", "continuous": "Continuous", "yi_se": "Generic inverse variance",
             "yi_vi": "Generic inverse variance", "estimate_ci": "Generic inverse variance"}


def _csv_text(header, rows) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow(["" if r.get(h) is None else r[h] for h in header])
    return buf.getvalue()


def _res(x):
    """A computed number as hatmeta writes every result: 10 significant digits (hatmeta.precision)."""
    from ..precision import q

    v = q(x)
    return None if v is None else repr(v)


def _fmt(x):
    """An input value as given, in full (17 significant digits) so the round trip is exact."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, float):
        return repr(x)
    return x


# result: a MetaResult, typed Any because hatmeta.results sits above io in the layers (pyproject importlinter)
def package_analysis(table: TrialTable, result: Any, name: str, group: int = 1, number: int = 1,
                     group_name: str = "", subgroup: str | None = None,
                     labels: Sequence[str] = ("Experimental", "Control")) -> dict:
    """The CSV rows of one analysis (a TrialTable pooled by the revman5 preset into ``result``) in the
    version 1 data package layout: {"overall": {...}, "rows": [...], "subgroups": [...]}."""

    ratio = result.scale == "log"
    nat = (lambda x: None if x is None or not math.isfinite(x) else math.exp(x)) if ratio else (lambda x: x)
    layout = table.layout
    method, random = {"MH": ("MH", False), "MH-DL": ("MH", True), "FE": ("IV", False), "DL": ("IV", True),
                      "PETO": ("Peto", False)}.get(result.method, ("IV", True))
    c = table.columns
    subs = table.column(subgroup) if subgroup else None
    weights = {s.study: s for s in result.studies}
    rows = []
    for i, st in enumerate(table.studies):
        r = {"Analysis group": group, "Analysis number": number, "Analysis name": name,
             "Subgroup": subs[i] if subs else "", "Applicability": "SUBGROUP_AND_OVERALL", "Study": st,
             "Study year": (table.extra.get("year") or [""] * table.k)[i]}
        if layout == "binary":
            r.update({"Experimental cases": int(c["events_treat"][i]), "Experimental N": int(c["n_treat"][i]),
                      "Control cases": int(c["events_ctrl"][i]), "Control N": int(c["n_ctrl"][i])})
        elif layout == "continuous":
            r.update({"Experimental mean": _fmt(float(c["mean_treat"][i])),
                      "Experimental SD": _fmt(float(c["sd_treat"][i])),
                      "Experimental N": int(c["n_treat"][i]), "Control mean": _fmt(float(c["mean_ctrl"][i])),
                      "Control SD": _fmt(float(c["sd_ctrl"][i])), "Control N": int(c["n_ctrl"][i])})
        else:
            from .trial_table import LAYOUTS  # noqa: F401  (generic: the estimate and SE on the analysis scale)

            se = float(c["se"][i]) if "se" in c else math.sqrt(float(c["vi"][i])) if "vi" in c else None
            yi = float(c["yi"][i]) if "yi" in c else None
            r.update({"GIV Mean": _fmt(yi), "GIV SE": _fmt(se)})
        s = weights.get(st)
        if s is not None:
            r.update({"Weight": _res(s.weight), "Mean": _res(nat(s.yi)), "CI start": _res(nat(s.ci_low)),
                      "CI end": _res(nat(s.ci_high))})
        rows.append(r)
    tot = {"Mean": _res(nat(result.estimate)), "CI start": _res(nat(result.ci_low)),
           "CI end": _res(nat(result.ci_high)),
           "Heterogeneity Tau²": _res(result.tau2) if random else None, "Heterogeneity Chi²": _res(result.q),
           "Heterogeneity df": result.q_df, "Heterogeneity P": _res(result.q_p), "Heterogeneity I²": _res(result.i2),
           "Effect Z": _res(abs(result.stat)), "Effect P": _res(result.p)}
    if result.subgroup_test is not None:
        t = result.subgroup_test
        tot.update({"Subgroup Chi²": _res(t.q), "Subgroup df": t.df, "Subgroup P": _res(t.p),
                    "Subgroup I²": _res(result.extra.get("subgroup_test_i2"))})
    overall = {"Analysis group": group, "Analysis number": number, "Analysis name": name,
               "Analysis group name": group_name, "Data source": "Custom input", "Data type": LONG_KIND.get(layout, ""),
               "Log-scale data": _fmt(ratio and layout not in ("binary", "continuous")),
               "Experimental group label": labels[0], "Control group label": labels[1], "Statistical method": method,
               "Effect measure": LONG_MEASURE.get(result.measure, result.measure),
               "Analysis model": "Random effects" if random else "Fixed effect",
               "Subgroup estimates": _fmt(bool(subgroup)), "Overall estimates": "true",
               "Test for subgroup differences": _fmt(bool(subgroup)), "Swap event and non-event": "false",
               "Study CI": f"{100 * result.level:g}%", "Estimate CI": f"{100 * result.level:g}%",
               "ID": f"analysis:hatmeta-{group}.{number}", **tot}
    subgroups = []
    for j, g in enumerate(result.subgroups or (), start=1):
        z = g.estimate / g.se
        from ..dist import norm_sf

        subgroups.append({"Analysis group": group, "Analysis number": number, "Subgroup": g.group, "Subgroup number": j,
                          "Mean": _res(nat(g.estimate)), "CI start": _res(nat(g.ci_low)),
                          "CI end": _res(nat(g.ci_high)),
                          "Heterogeneity Tau²": _res(g.tau2) if random else None, "Heterogeneity Chi²": _res(g.q),
                          "Heterogeneity df": g.k - 1, "Heterogeneity I²": _res(g.i2), "Effect Z": _res(abs(z)),
                          "Effect P": _res(float(2 * norm_sf([abs(z)])[0])),
                          "ID": f"subgroup:hatmeta-{group}.{number}.{j}"})
    return {"overall": overall, "rows": rows, "subgroups": subgroups}


def write_package(path: str | os.PathLike[str], analyses: Iterable[Mapping[str, Any]],
                  review_id: str = "hatmeta") -> None:
    """Write a version 1 data package (a zip) of ``analyses`` (``package_analysis`` dicts): the same
    bytes for the same inputs (fixed timestamps, sorted entries)."""
    files = {
        f"{review_id}-analysis-data/{review_id}-overall-estimates-and-settings.csv":
            _csv_text(OVERALL, [a["overall"] for a in analyses]),
        f"{review_id}-analysis-data/{review_id}-data-rows.csv":
            _csv_text(DATA_ROWS, [r for a in analyses for r in a["rows"]]),
        f"{review_id}-analysis-data/{review_id}-subgroup-estimates.csv":
            _csv_text(SUBGROUPS, [s for a in analyses for s in a["subgroups"]]),
    }
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(2024, 9, 23, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, ("\ufeff" + files[name]).encode("utf-8"))  # RevMan writes a byte-order mark
