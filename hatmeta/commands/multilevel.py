"""`hatmeta pool --random ...` and `--cluster COL --robust CR1|CR2`: multilevel / multivariate models
(hatmeta/fit/multilevel.py) and cluster-robust inference (hatmeta/methods/robust.py) on a --data table.

``pool`` hands over here when any of these options is given; everything the multilevel path does not
support is refused by name, never ignored.
"""

from __future__ import annotations

from typing import Any

import click

from ..errors import InputError

# The options this path owns (added to `hatmeta pool` by hatmeta/commands/pool.py).
MV_OPTIONS = ("random", "struct", "v_cov_cluster", "v_rho", "v_columns", "cluster", "robust_type", "profile_ci",
              "mv_test")

# pool's options that this path supports; every other option given is refused.
SUPPORTED = {"data_file", "measure", "method", "level", "cc", "moderators", "fmt", "input_level", "scale",
             "drop_incomplete", "verbose", *MV_OPTIONS}

# pool's defaults (an option left at its default was not given).
DEFAULTS: dict[str, Any] = {"level": 0.95, "cc": 0.5, "engine": "exact", "likelihood": "normal", "seed": 1,
                            "draws": 1500,
            "fmt": "text", "input_level": 0.95, "trim_fill_estimator": "L0", "steps": "0.025"}


def _option_list():
    """(name, click option) of the multilevel path, in --help order."""
    return [
        ("random", click.option("--random", "random", metavar="FORMULA", multiple=True,
                                help="Random term in metafor's syntax (repeatable): '~ 1 | district/school' (nested), "
                                "'~ 1 | study', '~ outcome | study' (with --struct).")),
        ("struct", click.option("--struct", type=click.Choice(["CS", "HCS", "UN", "DIAG", "AR"], case_sensitive=False),
                                help="Structure of an '~ inner | outer' term (default CS).")),
        ("v_cov_cluster", click.option("--v-cov-cluster", metavar="COL",
                                       help="Rows sharing COL's value have correlated sampling errors (with --v-rho "
                                       "or --v-columns).")),
        ("v_rho", click.option("--v-rho", type=float, metavar="R",
                               help="Sampling correlation within a --v-cov-cluster block.")),
        ("v_columns", click.option("--v-columns", metavar="C1,C2,...",
                                   help="Sampling covariances as columns: in a block's j-th row, Ci is the covariance "
                                   "with the block's i-th row (berkey1998's v1i,v2i).")),
        ("cluster", click.option("--cluster", metavar="COL",
                                 help="Cluster of the cluster-robust inference (with --robust).")),
        ("robust_type", click.option("--robust", "robust_type", type=click.Choice(["CR1", "CR2"], case_sensitive=False),
                                     help="Cluster-robust SEs: CR1 (metafor robust, adjust=TRUE) or CR2 (clubSandwich, "
                                     "Satterthwaite df).")),
        ("profile_ci", click.option("--profile-ci", is_flag=True,
                                    help="With --random: profile-likelihood CIs for the variance components and "
                                    "correlations (metafor confint).")),
        ("mv_test", click.option("--test", "mv_test", type=click.Choice(["z", "t"], case_sensitive=False),
                                 help="With --random: z (default) or t tests (t on k-p df, F for the moderators; "
                                 "metafor's rma.mv test='t').")),
    ]


def options(f, names=MV_OPTIONS):
    """The click options of the multilevel path (those in ``names``), for `hatmeta pool` (all) and
    `hatmeta forest --random` (the model's)."""
    for name, o in reversed(_option_list()):
        if name in names:
            f = o(f)
    return f


def wanted(params: dict) -> bool:
    """Whether `hatmeta pool` should hand over to this path."""
    return bool(params.get("random") or params.get("cluster") or params.get("robust_type")
                or params.get("v_cov_cluster") or params.get("struct") or params.get("v_rho") is not None
                or params.get("v_columns") or params.get("profile_ci") or params.get("mv_test"))


def _given(name, value):
    if value is None or value is False or value == () or value == "":
        return False
    if name in DEFAULTS:
        d = DEFAULTS[name]
        return (value.lower() != d.lower()) if isinstance(value, str) else value != d
    return True


def _flag(name):
    return "--" + {"fmt": "format", "robust_type": "robust", "mv_test": "test", "data_file": "data",
                   "compare_ref": "compare", "dask_spec": "dask", "moderators": "moderator",
                   "small_study": "small-study"}.get(
        name, name).replace("_", "-")


def run(params: dict) -> None:
    """Fit, then print JSON or text. ``params``: the click parameters of `hatmeta pool`."""
    from ..precision import dumps

    res = fit(params)
    fmt = params.get("fmt", "text").lower()
    if fmt == "json":
        click.echo(dumps(res.to_dict()))
        return
    if params.get("random"):
        click.echo(res.summary(), nl=False)
        return
    from ..summary import format_result

    click.echo(format_result(res, verbose=params.get("verbose", False)))
    click.echo(res.extra["robust"].summary())


def fit(params: dict) -> Any:
    """The checks and the fit of `run` (also `hatmeta forest --random`): an MvResult, or with --robust alone a
    univariate result carrying its robust block."""
    from .. import api
    from ..fit.effects import escalc

    extra = sorted(_flag(n) for n, v in params.items() if n not in SUPPORTED and _given(n, v))
    if params.get("analysis"):
        raise InputError("--random, --cluster and --robust fit a --data table, not a bundled analysis",
                         option="--random")
    if extra:
        which = "--random" if params.get("random") else "--robust"
        raise InputError(f"{', '.join(extra)} cannot be combined with {which} (the multilevel and "
                         "cluster-robust fits support --measure, --method REML|ML, --moderator, --level, --cc, "
                         "--input-level, --scale, --drop-incomplete and --format json|text)", option=extra[0])
    fmt = params.get("fmt", "text").lower()
    if fmt not in ("json", "text"):
        raise InputError(f"--random and --robust write --format json or text, not {fmt}", option="--format")
    if not params.get("data_file"):
        raise InputError("--random, --cluster and --robust need --data FILE", option="--data")
    cluster, kind = params.get("cluster"), params.get("robust_type")
    if bool(cluster) != bool(kind):
        raise InputError("--cluster COL and --robust CR1|CR2 go together", option="--cluster" if kind else "--robust")
    random = list(params.get("random") or ())
    if not random and (params.get("struct") or params.get("v_cov_cluster") or params.get("profile_ci")
                       or params.get("mv_test")):
        which = "--struct" if params.get("struct") else "--v-cov-cluster" if params.get("v_cov_cluster") \
            else "--profile-ci" if params.get("profile_ci") else "--test"
        hint = " (a univariate model's t-based CI is --ci hksj)" if which == "--test" else ""
        raise InputError(f"{which} needs --random{hint}", option=which)
    method = (params.get("method") or "REML").upper()
    table, measure = api.read_data(params["data_file"], params.get("measure"),
                                   drop_incomplete=params.get("drop_incomplete", False))
    opts = {}
    if params.get("input_level", 0.95) != 0.95:
        opts["input_level"] = params["input_level"]
    if params.get("scale"):
        opts["scale"] = params["scale"].lower()
    es = escalc(table, measure, cc=params.get("cc", 0.5), **opts)
    moderators = tuple(params.get("moderators") or ())
    level = params.get("level", 0.95)
    res: Any
    if random:
        from ..fit.multilevel import rma_mv, sampling_cov

        columns = tuple(c.strip() for c in (params.get("v_columns") or "").split(",") if c.strip())
        if columns and es.dropped:
            raise InputError("--v-columns addresses rows by their place in the block, and rows were left out ("
                             + "; ".join(f"{s}: {why}" for s, why in es.dropped) + ")", option="--v-columns")
        V = sampling_cov(es, params.get("v_cov_cluster"), params.get("v_rho"), columns)
        if method not in ("REML", "ML"):
            raise InputError(f"--random fits REML or ML, not {method}", option="--method")
        res = rma_mv(es, random=random, struct=params.get("struct") or "CS", V=V, moderators=moderators,
                     method=method, level=level, profile=bool(params.get("profile_ci")),
                     test=(params.get("mv_test") or "z").lower())
    else:
        from ..fit.models import rma

        if moderators:
            raise InputError("--robust with --moderator needs the model written with --random (e.g. "
                             "--random '~ 1 | study' for one effect per study)", option="--moderator")
        res = rma(es, method=method, level=level)
    if kind and cluster:
        from ..methods.robust import robust

        if random:
            res = robust(res, cluster, kind.upper())
        else:
            key = cluster.strip().lower()
            values = table.given if key == "study" and table.given else es.table.column(cluster)
            res = robust(res, values, kind.upper(), name=cluster)
    return res
