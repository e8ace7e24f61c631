"""The HAT review's analyses in Python: a named analysis (``analyses/<name>.toml`` over the extraction in
``data/extracted/``) pooled, compared with an earlier state, or put through a trial sequential analysis.

    from hatmeta.review.api import pool_analysis
    result, analysis = pool_analysis("retention")
"""

from __future__ import annotations

from dataclasses import replace

from ..api import pool_table
from ..errors import InputError
from ..vocabulary import COMMON_EFFECT_METHODS


def pool_analysis(name, data_dir=None, analyses_dir=None, **overrides):
    """Pool a bundled analysis (e.g. "retention"): its spec's settings, overridden by ``overrides``.

    Returns (MetaResult, Analysis).
    """
    from ..errors import NotPooled
    from .analysis import load_analysis
    from .appraisal import analysis_extras, refusal_details

    try:
        analysis = load_analysis(name, data_dir=data_dir, analyses_dir=analyses_dir)
    except NotPooled as exc:
        refusal_details(exc, exc.spec, exc.extraction)
        raise
    spec = analysis.spec
    options = {"method": spec.method, "ci": spec.ci, "pi": spec.pi, "benefit": spec.benefit, **spec.robustness}
    if getattr(spec, "compare_methods", False):
        options["compare_methods"] = True
    options.update({k: v for k, v in overrides.items() if v is not None})
    if str(options.get("method", "")).upper().startswith("GLMM") and overrides.get("ci") is None:
        options["ci"] = "wald"  # the spec's CI belongs to its own method; a GLMM gives a Wald CI
    # What the spec asks for must not stop the analysis (too few trials becomes a note); what the
    # caller asks for explicitly still does.
    options.setdefault("lenient", tuple(k for k in spec.robustness if not overrides.get(k)))
    measure = options.pop("measure", None) or spec.measure
    table = analysis.table
    if table.k < 2 and str(options.get("method", "REML")).upper() not in COMMON_EFFECT_METHODS:
        exc = NotPooled(f"only {table.k} trial ({', '.join(table.studies)}) reports {spec.outcome} by arm; "
                        "pooling needs at least 2", omitted=analysis.omitted, file=spec.path)
        refusal_details(exc, spec, analysis.extraction)
        raise exc
    res = pool_table(table, measure, **options)
    notes = tuple(f"omitted {trial}: {reason}" for trial, reason in analysis.omitted) + tuple(analysis.notes)
    return replace(res, notes=res.notes + notes, extra={**res.extra, "analysis": spec.name,
                                                         "omitted": analysis.omitted_dicts(),
                                                         **analysis_extras(res, analysis)}), analysis


def compare_with(result, ref, analysis=None, data_dir=None, benefit="lower", labels=None, measure=None,
                 analyses_dir=None, reference=None, **options):
    """``result`` beside the same analysis at ``ref`` (a git revision of the data and specs, or a saved
    result JSON): the ``compare`` JSON of hatmeta.review.compare (before, after, entered, left, crossed).

    ``analysis``: the analysis name (None for a --data table: then ``ref`` must be a saved JSON);
    ``options``: the pooling options used now, applied to the reference too; ``reference``: the
    reference's result JSON when the caller pooled it already (another version of a RevMan review)."""
    from .compare import compare, reference_result, summary

    if reference is not None:
        return compare(summary(reference), summary(result.to_dict()), scale=result.scale, benefit=benefit,
                       labels=labels)

    if analysis is None and not str(ref).lower().endswith(".json"):
        raise InputError("with --data, --compare takes a saved result JSON (hatmeta pool ... --format json)",
                         option="--compare")

    def pool_then(spec_file, data):
        return pool_analysis(str(spec_file), data_dir=data, measure=measure, **options)[0]

    before = reference_result(ref, analysis, data_dir, pool_then, analyses_dir)
    return compare(summary(before), summary(result.to_dict()), scale=result.scale, benefit=benefit, labels=labels)


def tsa_analysis(name, data_dir=None, analyses_dir=None, **options):
    """Trial sequential analysis of a bundled analysis: its spec's [tsa] settings, overridden by
    ``options`` (``tsa_table``'s keywords, plus ``rri``). Returns (TsaResult, AnalysisSpec, table or
    None when no trial reports the outcome)."""
    from ..methods.tsa import merge_settings, tsa_table

    table, spec, notes, extra = tsa_inputs(name, data_dir=data_dir, analyses_dir=analyses_dir)
    measure = options.pop("measure", None) or spec.measure
    benefit = options.pop("benefit", None) or spec.benefit
    settings = merge_settings(extra.pop("settings"), options, benefit, measure, name, table is not None)
    return tsa_table(table, measure, benefit=benefit, notes=notes, arms=extra["labels"],
                     study_labels=extra["study_labels"], pool_model=extra["pool_model"], **settings), spec, table


def tsa_inputs(name, data_dir=None, analyses_dir=None):
    """(table or None, spec, notes, extra) of a bundled analysis for a TSA: ``extra`` has the spec's
    [tsa] ``settings``, the arms' ``labels`` (experimental, control), ``study_labels`` (trial id ->
    name, omitted trials included, as `hatmeta pool` names them) and ``pool_model``, the model
    `hatmeta pool` fits to the same trials, in words (the TSA text says why the two estimates differ)."""
    from ..methods.tsa_text import model_text
    from .analysis import trial_labels

    table, spec, notes, extraction = _load_for_tsa(name, data_dir=data_dir, analyses_dir=analyses_dir)
    labels = trial_labels(extraction) if extraction is not None else {}
    if table is not None and "label" in table.extra:
        labels.update({str(s): str(lab) for s, lab in zip(table.studies, table.extra["label"]) if lab})
    method, ci = spec.method, spec.ci
    if str(method).upper().startswith("GLMM"):
        ci = "wald"  # pool_analysis: a GLMM gives a Wald CI whatever the spec's CI
    return table, spec, notes, {"settings": spec_settings(spec),
                                "labels": (spec.experimental_label, spec.control_label),
                                "study_labels": labels, "pool_model": model_text(method, ci)}


# [tsa] keys of an analysis spec, and their kinds.
SPEC_KEYS = {"rrr": float, "rri": float, "md": float, "sd": float, "control_risk": float, "alpha": float,
             "power": float, "sides": int, "spending": str, "d2": float, "order": str, "method": str,
             "weights": str, "inflate": bool, "futility": bool, "reason": str}


def spec_settings(spec):
    """The [tsa] table of an analysis spec, checked: unknown keys and wrong types are errors."""
    raw = spec.raw.get("tsa", {})
    if not isinstance(raw, dict):
        raise InputError("must be a table", file=spec.path, column="tsa")
    out = {}
    for key, value in raw.items():
        kind = SPEC_KEYS.get(key)
        if kind is None:
            raise InputError(f"unknown key; allowed: {', '.join(sorted(SPEC_KEYS))}", file=spec.path,
                             column=f"tsa.{key}")
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise InputError(f"must be a {kind.__name__}", file=spec.path, column=f"tsa.{key}")
        if key == "weights" and value.upper() not in ("IV", "MH"):
            raise InputError(f"must be IV or MH, got {value!r}", file=spec.path, column="tsa.weights")
        out[key] = value
    return out


def load_for_tsa(analysis, data_dir=None, analyses_dir=None):
    """(table or None, spec, omitted notes) for a bundled analysis; a spec with no contributing trial
    still gives its settings (the required information size needs no data)."""
    return _load_for_tsa(analysis, data_dir=data_dir, analyses_dir=analyses_dir)[:3]


def _load_for_tsa(analysis, data_dir=None, analyses_dir=None):
    """load_for_tsa's (table or None, spec, notes) and the extraction (None where unknown)."""
    from .analysis import load_analysis
    from .spec import read_spec, spec_path

    try:
        an = load_analysis(analysis, data_dir=data_dir, analyses_dir=analyses_dir)
    except InputError as exc:
        if "no trial contributes" not in exc.message:
            raise
        spec = getattr(exc, "spec", None) or read_spec(spec_path(analysis, analyses_dir))
        omitted = tuple(getattr(exc, "omitted", ()))
        return None, spec, ([f"no trial reports {spec.outcome} by arm ({len(omitted)} trials checked; see "
                             "hatmeta trials)"] + [f"omitted {t}: {r}" for t, r in omitted]), \
            getattr(exc, "extraction", None)
    notes = [f"omitted {t}: {r}" for t, r in an.omitted] + list(an.notes)
    return an.table, an.spec, notes, an.extraction
