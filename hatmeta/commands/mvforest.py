"""`hatmeta forest --data FILE --random ...`: the forest plot of a multilevel / multivariate model
(hatmeta/render/plots/mvforest.py), fitted as `hatmeta pool --random` fits it (commands/multilevel.py).

`forest` hands over here when --random (or another option of the multilevel model) is given; the
univariate forest's options that have no meaning here are refused by name, never ignored.
"""

from __future__ import annotations

from typing import Any

import click

from ..errors import InputError

# forest's options of the univariate plot, refused with --random (name -> flag)
UNIVARIATE_ONLY = {"analysis": "ANALYSIS", "ci": "--ci", "pi": "--pi", "subgroup": "--subgroup", "bayes": "--bayes",
                   "tau_prior": "--tau-prior", "mu_prior_sd": "--mu-prior-sd", "sort": "--sort",
                   "cumulative": "--cumulative", "leave_one_out": "--leave-one-out", "preset": "--preset",
                   "benefit": "--benefit", "labels": "--labels"}


def options(f: Any) -> Any:
    """The model options of `hatmeta forest --random`: `hatmeta pool`'s, and --moderator."""
    from .multilevel import options as model_options

    f = click.option("--moderator", "moderators", metavar="COL", multiple=True,
                     help="With --random: a moderator (a factor draws one summary per level).")(f)
    return model_options(f, ("random", "struct", "v_cov_cluster", "v_rho", "v_columns", "mv_test"))


def wanted(params: dict) -> bool:
    return bool(params.get("random") or params.get("struct") or params.get("v_cov_cluster")
                or params.get("v_rho") is not None or params.get("v_columns") or params.get("moderators")
                or params.get("mv_test"))


def run(params: dict) -> None:
    """Fit the multilevel model of ``params`` (forest's click parameters) and draw its forest plot."""
    from ..render import plots
    from . import multilevel
    from .figures import _out_path, _save

    if not params.get("random"):
        raise InputError("--struct, --v-cov-cluster, --v-rho, --v-columns, --moderator and --test draw a "
                         "multilevel model: give it with --random", option="--random")
    given = [flag for name, flag in UNIVARIATE_ONLY.items() if params.get(name) not in (None, False, ())]
    if given:
        raise InputError(f"{', '.join(given)} cannot be combined with --random (the multilevel forest takes "
                         "--data, --measure, --method REML|ML, --level, --moderator, --test, --title, --out and "
                         "--format)", option=given[0])
    fit_params = {k: params.get(k) for k in ("data_file", "measure", "method", "random", "struct", "v_cov_cluster",
                                              "v_rho", "v_columns", "moderators", "mv_test")}
    if params.get("level") is not None:
        fit_params["level"] = params["level"]
    res = multilevel.fit(fit_params)
    title = params.get("title")
    if title is None:
        from pathlib import Path

        title = f"{Path(params['data_file']).name}: multilevel model ({', '.join(res.random)})"
    path, fmt = _out_path(params.get("out"), "forest-data", params.get("fmt"))
    _save(plots, plots.forest, path, fmt, res=res, title=title or None)
    click.echo(str(path))
