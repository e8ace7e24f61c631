"""One entry point from options to a result: what the command line and notebooks call.

``pool_table`` runs the whole chain on a TrialTable (escalc -> rma -> optional analyses);
``pool_file`` reads a CSV first; ``pool_by`` pools every group of rows at once.
"""

from __future__ import annotations

from dataclasses import replace

from .effects import escalc
from .errors import InputError
from .models import rma
from .table import read_table


def pool_table(table, measure, method="REML", ci="wald", pi="t", level=0.95, cc=0.5, preset=None,
               leave_one_out=False, cumulative=None, subgroup=None, moderators=(), small_study=None):
    """Pool a validated TrialTable; returns a MetaResult (analysis scale)."""
    if not 0 < level < 1:
        raise InputError(f"level must lie between 0 and 1, got {level}", column="--level")
    es = escalc(table, measure, cc=cc)
    res = rma(es, method=method, ci=ci, pi=pi, level=level, preset=preset)
    method = "DL" if preset else res.method  # the preset's sequences use its DL random effects
    extra = {}
    if leave_one_out:
        from .sensitivity import leave_one_out as loo

        extra["leave_one_out"] = loo(es, method=method, ci=res.ci_method, level=level)
    if cumulative:
        from .sensitivity import cumulative as cum

        extra["cumulative"] = cum(es, cumulative, method=method, ci=res.ci_method, level=level)
    if subgroup:
        from .sensitivity import subgroups

        extra["subgroups"], extra["subgroup_test"] = subgroups(es, subgroup, method=method,
                                                                ci=res.ci_method, level=level)
    if moderators:
        from .metareg import meta_regression

        extra["meta_regression"] = meta_regression(es, list(moderators), ci=res.ci_method, level=level)
    if small_study:
        if str(small_study).lower() != "egger":
            raise InputError(f"unknown small-study test {small_study!r}; choose egger", column="--small-study")
        from .smallstudy import egger

        extra["egger"] = egger(es)
        if extra["egger"].warning:
            extra["notes"] = res.notes + (extra["egger"].warning,)
    return replace(res, **extra) if extra else res


def pool_file(path, measure, **options):
    """Read a trial table CSV and pool it (see ``pool_table`` for the options)."""
    return pool_table(read_table(path, measure=measure), measure, **options)


def pool_by(table, by, measure, method="REML", ci="wald", pi="t", level=0.95, cc=0.5):
    """Pool every group of rows (column ``by``) separately, all groups in one vectorised fit.

    Returns MetaResults in the order groups first appear. Groups too small for the method get a
    result whose notes say why (with NaN numbers) rather than stopping the run.
    """
    from .batch import pool_groups

    return pool_groups(table, by, measure, method=method, ci=ci, pi=pi, level=level, cc=cc)


def pool_analysis(name, data_dir=None, analyses_dir=None, **overrides):
    """Pool a bundled analysis (e.g. "retention"): its spec's settings, overridden by ``overrides``.

    Returns (MetaResult, Analysis).
    """
    from .evidence import load_analysis

    analysis = load_analysis(name, data_dir=data_dir, analyses_dir=analyses_dir)
    spec = analysis.spec
    options = {"method": spec.method, "ci": spec.ci, "pi": spec.pi}
    options.update({k: v for k, v in overrides.items() if v is not None})
    measure = options.pop("measure", None) or spec.measure
    table = analysis.table
    if table.k < 2 and str(options.get("method", "REML")).upper() not in ("FE", "MH", "PETO"):
        raise InputError(f"only {table.k} trial ({', '.join(table.studies)}) reports {spec.outcome} by arm; "
                         f"pooling needs at least 2 ({len(analysis.omitted)} omitted: "
                         + ", ".join(t for t, _ in analysis.omitted) + "; see hatmeta trials)",
                         file=spec.path, column="trials")
    res = pool_table(table, measure, **options)
    notes = tuple(f"omitted {trial}: {reason}" for trial, reason in analysis.omitted) + tuple(analysis.notes)
    return replace(res, notes=res.notes + notes, extra={**res.extra, "analysis": spec.name,
                                                         "omitted": [{"study": t, "reason": r}
                                                                     for t, r in analysis.omitted]}), analysis
