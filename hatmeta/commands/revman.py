"""`hatmeta revman FILE.rm5`: list a RevMan 5 review's comparisons and outcomes; and the
`pool --data FILE.rm5 --outcome ID` branch (RevMan's stored settings, its stored totals beside ours)."""

from __future__ import annotations

import math
from typing import Any

import click

from ..errors import InputError

# Agreement with RevMan's stored totals: RevMan 5 writes doubles with 16-17 significant digits.
REL_TOL, ABS_TOL = 1e-8, 1e-10
# RevMan 5's P for the overall effect is not the exact normal tail of its own stored Z: in "Antibiotics
# for sore throat" (CD000023.pub4, RevMan 5.2.11; 20 outcomes) it differs from 2 (1 - Phi(|Z|)) by up to
# 2.4e-8 (absolute; 1.2e-7 relative) while Z, the estimates and the CIs agree to 1e-15. P is compared to this.
P_ABS_TOL = 5e-8


@click.command()
@click.argument("file", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json"], case_sensitive=False), default="text",
              show_default=True)
def revman(file, fmt):
    """List the comparisons and outcomes of a RevMan 5 review (.rm5): id, names, data type, measure,
    method, model, number of studies and subgroups. Pool one with `hatmeta pool --data FILE --outcome ID`."""
    from ..io.revman_package import read_any_review

    review = read_any_review(file)
    info = review.describe()
    if fmt.lower() == "json":
        from ..precision import dumps

        click.echo(dumps(info, indent=True))
        return
    import textwrap

    def say(text: str, first: str = "", rest: str = "  ") -> None:  # at 80 columns, "k = 7" kept whole
        lines = textwrap.wrap(text.replace(" = ", "\xa0=\xa0"), 80, initial_indent=first, subsequent_indent=rest,
                              break_on_hyphens=False)
        click.echo("\n".join(lines).replace("\xa0", " "))

    say(f"{info['title'] or info['file']} (RevMan {info['revman_version']}; {info['studies']} studies)")
    for c in info["comparisons"]:
        click.echo("")
        say(f"{c['id']}  {c['name']}")
        for o in c["outcomes"]:
            sub = f"; subgroups: {', '.join(o['subgroups'])}" if o["subgroups"] else ""
            pooled = "" if o["pooled_by_revman"] else "; no total from RevMan (none stored, or 'Not estimable')"
            say(f"{o['id']}  {o['name']}: {o['data_type']}, {o['measure']}, {o['method']}, {o['model']}, "
                f"k = {o['k']}{sub}{pooled}", "  ", "      ")


def pool_rm5(data_file, outcome_id, measure, options):
    """Pool outcome ``outcome_id`` of a RevMan 5 file (a path, or a ``Review`` from ``read_rm5``) with its
    stored settings (the revman5 preset; inputs from ``io.revman_source.outcome_source``);
    the result's ``extra["revman"]`` holds RevMan's stored totals beside ours and ``agrees``."""
    from dataclasses import replace

    from .. import api
    from ..io.revman_source import outcome_source

    src = outcome_source(data_file, outcome_id, measure)
    review, o, table = src.review, src.outcome, src.table
    notes = src.notes
    given = {k: v for k, v in options.items() if v not in (None, False, (), 0.95, 0.5)}
    passed = ("leave_one_out", "cumulative", "small_study", "trim_fill", "trim_fill_estimator")
    allowed = {"method", "preset", "benefit", *passed}
    if given.get("subgroup") not in (None, "subgroup"):
        raise InputError("--outcome pools the review's own subgroups (RevMan's); drop --subgroup", option="--subgroup")
    given.pop("subgroup", None)
    extra_opts = set(given) - allowed
    if extra_opts:
        raise InputError("--outcome pools with the review's stored settings; drop "
                         + ", ".join("--" + k.replace("_", "-") for k in sorted(extra_opts)), option="--outcome")
    preset = (options.get("preset") or "revman5").lower()
    opts = {**src.options, "preset": preset, "method": options.get("method") or src.options["method"]}
    try:
        result = api.pool_table(table, src.measure, **{k: options[k] for k in passed if options.get(k)}, **opts)
    except InputError as exc:  # the outcome named, and RevMan's 'Not estimable' where it stored one
        said = " (RevMan: Not estimable)" if o.stored and not o.pooled_by_revman and o.totals != "NO" else ""
        raise InputError(f"outcome {o.id} ({o.name}): {exc.message}{said}", file=review.path,
                         option="--outcome") from None
    from ..io.revman import estimable_total

    notes += tuple(f"subgroup {name}: not estimable (RevMan's stored total is 'Not estimable')"
                   for name, stored in o.subgroups
                   if stored and stored.get("effect_size") is not None and not estimable_total(stored, o.measure))
    if o.totals == "NO":
        notes += (f"the review shows no total for outcome {o.id} (RevMan's TOTALS=NO): the total here is "
                  "hatmeta's, with the stored method",)
    if o.ci_study != o.ci_total:
        notes += (f"study CIs at {o.ci_study:g}% (RevMan's CI_STUDY), the totals at {o.ci_total:g}%",)
    block: dict[str, Any] = compare_stored(o, result, review.precision) if preset in ("revman5", "revman") else {
        "outcome": o.id, "agrees": None, "note": f"preset {preset} is not RevMan 5's analysis: not compared"}
    if block.get("agrees") is True:
        block["note"] = (f"RevMan's stored results for {o.id} reproduced ({len(block['totals'])} total(s), "
                         f"{len(block['studies'])} studies; to {_tol_text(review.precision)})")
    notes += (block["note"],) if block.get("note") else ()
    if o.kind == "IPD":
        notes += ("O-E and variance rows pooled as (O - E) / V with SE 1 / sqrt(V): the inverse-variance total "
                  "is Peto's",)
    # each study keeps its RevMan id (and subgroup, and risk-of-bias judgements) in the JSON rows
    ids = dict(zip(table.studies, table.extra.get("revman_id", ())))
    groups = dict(zip(table.studies, table.extra.get("subgroup", ()))) if o.subgroups else {}
    rob = src.risk_of_bias
    annotations = {s: {"revman_id": i, **({"subgroup": groups[s]} if s in groups else {}),
                       **({"risk_of_bias": rob[s]} if s in rob else {})} for s, i in ids.items()}
    return replace(result, notes=tuple(result.notes) + tuple(notes),
                   extra={**result.extra, "revman": block, "revman_outcome": o.describe(),
                          "study_annotations": annotations})


def compare_reference(ref, result, measure, options) -> dict[str, Any]:
    """``pool --data FILE.rm5 --outcome ID --compare REF``: the same outcome of another version of the
    review (REF a .rm5 file, a data package or RevMan's analyses CSV) pooled with its own stored settings,
    as a result JSON (a saved result JSON as REF is read as for any --data table)."""
    from ..io.revman import is_rm5
    from ..io.revman_package import is_csv_export, is_package

    ref_s = str(ref)
    if not (is_rm5(ref_s) or is_package(ref_s) or (ref_s.lower().endswith(".csv") and is_csv_export(ref_s))):
        raise InputError("with --data FILE.rm5, --compare takes another version of the review (OTHER.rm5, a "
                         "data package or RevMan's analyses CSV) or a saved result JSON", option="--compare")
    oid = result.extra["revman_outcome"]["id"]
    try:
        return pool_rm5(ref_s, oid, measure, options).to_dict()
    except InputError as exc:
        raise InputError(f"the reference cannot be pooled: {exc.message}", file=ref_s, option="--compare") from None


def _tol_text(precision):
    return "1e-8 relative" if precision == "full" else f"RevMan's {precision}"


def _scale(o, x):
    """A stored total on hatmeta's analysis scale (log for ratios)."""
    from ..io.revman import RATIO

    if x is None:
        return None
    if o.measure in RATIO:
        return math.log(x) if x > 0 else None
    return x


# Tolerance by the stored precision: (relative, absolute), on the scale RevMan stores (natural for ratios).
TOLERANCE = {"full": (REL_TOL, ABS_TOL), "10 significant digits": (2e-9, 1e-13), "8 decimals": (1e-12, 5.1e-9),
             "6 decimals": (1e-12, 5.1e-7)}


def _agree(ours, theirs, precision="full"):
    if theirs is None or ours is None or (isinstance(ours, float) and not math.isfinite(ours)):
        return None
    rel, abs_ = TOLERANCE.get(precision, TOLERANCE["full"])
    return bool(abs(float(ours) - theirs) <= max(abs_, rel * abs(theirs)))


EFFECT_KEYS = ("estimate", "ci_low", "ci_high", "yi")


def _check(o, key, ours, raw, precision):
    """(hatmeta, RevMan, agrees) of one value: both on hatmeta's analysis scale for the output; the
    agreement judged on the scale and precision RevMan stored (ratios: natural scale)."""
    from ..io.revman import RATIO

    if raw is None:
        return ours, None, None
    if key == "p" and precision == "full":
        return ours, raw, None if ours is None else bool(abs(ours - raw) <= P_ABS_TOL)
    if key in EFFECT_KEYS and o.measure in RATIO:
        theirs = _scale(o, raw)
        if precision == "full":
            return ours, theirs, _agree(ours, theirs, precision)
        return ours, theirs, _agree(None if ours is None else math.exp(ours), raw, precision)
    return ours, raw, _agree(ours, raw, precision)


def _pairs(o, stored, res_like):
    """[(name, ours, RevMan's)] of one total (overall or a subgroup)."""
    return [("estimate", res_like["estimate"], stored["effect_size"]),
            ("ci_low", res_like["ci_low"], stored["ci_start"]),
            ("ci_high", res_like["ci_high"], stored["ci_end"]),
            ("z", abs(res_like["z"]) if res_like["z"] is not None else None, stored["z"]),
            ("p", res_like["p"], stored["p_z"]),
            ("q", res_like["q"], stored["chi2"]),
            ("i2", res_like["i2"], stored["i2"]),
            ("tau2", res_like["tau2"], stored["tau2"])]


def compare_stored(o, res, precision="full") -> dict[str, Any]:
    """RevMan's stored totals beside ours (analysis scale), per total and per study, with ``agrees``:
    True when every stored value is reproduced to 1e-8 relative (RevMan stores 16-17 digits),
    None when RevMan stored no totals for this outcome."""
    from ..io.revman import RATIO

    totals = []
    if o.totals != "SUB" and o.pooled_by_revman:
        ours = {"estimate": res.estimate, "ci_low": res.ci_low, "ci_high": res.ci_high, "z": res.stat, "p": res.p,
                "q": res.q, "i2": res.i2, "tau2": res.tau2}
        totals.append(("overall", o.stored, ours))
    for sg in res.subgroups or ():
        stored = dict(o.subgroups).get(sg.group)
        if stored and stored.get("effect_size") is not None:
            from ..fit.revman5 import two_sided_p

            z = sg.estimate / sg.se if sg.se > 0 else None
            ours = {"estimate": sg.estimate, "ci_low": sg.ci_low, "ci_high": sg.ci_high, "z": z,
                    "p": two_sided_p(z) if z is not None else None, "q": sg.q, "i2": sg.i2,
                    "tau2": sg.tau2}
            totals.append((sg.group, stored, ours))
    out = {"outcome": o.id, "method": f"{o.method}, {'Random' if o.random else 'Fixed'}",
           "stored_precision": precision, "totals": [], "studies": []}
    checks = []
    for name, stored, ours in totals:
        rows = []
        for key, a, raw in _pairs(o, stored, ours):
            a, b, ok = _check(o, key, a, raw, precision)
            if b is not None:
                checks.append(ok)
            rows.append({"value": key, "hatmeta": a, "revman": b, "agrees": ok})
        out["totals"].append({"total": name, "values": rows})
    if res.subgroup_test is not None and o.stored.get("q") is not None and o.subgroups:
        ok = _agree(res.subgroup_test.q, o.stored["q"], precision)
        checks.append(ok)
        out["subgroup_test"] = {"hatmeta": res.subgroup_test.q, "revman": o.stored["q"],
                                "p_hatmeta": res.subgroup_test.p, "p_revman": o.stored.get("p_q"), "agrees": ok}
    by_name: dict[str, Any] = {}  # study -> its StudyResult (the first of a repeated name)
    for s in res.studies:
        by_name.setdefault(s.study, s)
    for r in o.rows:
        s = by_name.get(r.name)
        es = r.values.get("SHOWN_ES", r.values.get("EFFECT_SIZE"))  # the effect RevMan shows for the study
        if (es is not None and o.kind == "IV" and "SHOWN_ES" not in r.values and not o.log_data
                and o.measure in RATIO):
            es = math.exp(es)  # an .rm5 generic estimate entered on the log scale: compared as the ratio
        if s is None or es is None:
            continue
        pairs = [("yi", s.yi, es), ("weight", s.weight, r.values.get("WEIGHT")),
                 ("ci_low", s.ci_low, r.values.get("CI_START")), ("ci_high", s.ci_high, r.values.get("CI_END"))]
        if o.subgroups:  # weights: percent of which total differs between RevMan's layouts; not compared
            pairs = [p for p in pairs if p[0] != "weight"]
        vals = {}
        for k, a, raw in pairs:
            a, b, ok = _check(o, k, a, raw, precision)
            if b is not None:
                vals[k] = {"hatmeta": a, "revman": b, "agrees": ok}
        checks += [v["agrees"] for v in vals.values()]
        out["studies"].append({"study": r.name, "revman_id": r.study_id, **vals})
    if not checks:
        out["agrees"] = None
        out["note"] = f"RevMan stored no totals for outcome {o.id}: nothing to compare"
    else:
        out["agrees"] = all(c is True for c in checks)
        if not out["agrees"]:
            bad = [f"{t['total']} {v['value']}" for t in out["totals"] for v in t["values"] if v["agrees"] is False]
            bad += [f"{s['study']} {k}" for s in out["studies"] for k, v in s.items()
                    if isinstance(v, dict) and v.get("agrees") is False]
            out["note"] = f"differs from RevMan's stored results: {', '.join(bad[:8])}"
    return out


@click.command("revman-export")
@click.option("--data", "data_file", required=True, type=click.Path(), help="A trial table (CSV): binary counts, "
              "means and SDs, or yi with se.")
@click.option("--measure", required=True, help="RR, OR, RD, MD, SMD, HR or GEN.")
@click.option("--method", help="RevMan's analysis (as --preset revman5): MH, MH-DL, FE, IV-DL, PETO; default DL.")
@click.option("--subgroup", metavar="COL", help="Subgroups by COL.")
@click.option("--name", default="Analysis 1", show_default=True, help="The analysis's name.")
@click.option("--level", type=float, default=0.95, show_default=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The data package to write (.zip).")
def revman_export(data_file, measure, method, subgroup, name, level, output):
    """Write a trial table as a Cochrane version 1 data package (zip: analysis-data/ CSVs with RevMan 5's
    totals), which `hatmeta revman` and `pool --data OUT.zip --outcome CMP-001.01` read back."""
    from .. import api
    from ..io.revman_package import package_analysis, write_package

    if not str(output).lower().endswith(".zip"):
        raise InputError("the data package is a .zip file", option="--output")
    table, measure = api.read_data(data_file, measure)
    res = api.pool_table(table, measure, method=method or "DL", preset="revman5", subgroup=subgroup, level=level)
    write_package(output, [package_analysis(table, res, name, subgroup=subgroup)])
    click.echo(f"wrote {output}: 1 analysis, {table.k} studies ({res.extra.get('revman5')})")
