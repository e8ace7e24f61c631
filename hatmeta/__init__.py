"""hatmeta: evidence synthesis of heroin-assisted treatment (HAT) trials.

The data flow is one direction, and the folders show its stages:
input readers (`io`) -> effect sizes and model fits (`fit`) -> post-fit methods (`methods`)
-> immutable results (`results`) -> text, tables, figures and the report (`render`).
The HAT evidence (extraction, analysis specs) lives apart in `evidence`; `bayes` holds the
Bayesian engines; `api` is the one entry point and `cli`/`commands` the thin command line.

Public API (imported lazily so that `import hatmeta` stays cheap)::

    import pandas as pd, hatmeta
    res = hatmeta.rma(hatmeta.escalc(pd.read_csv("trials.csv"), measure="RR"), method="REML")
    res.to_frame()          # one row per study
    res.summary_frame()     # one row per pooled estimate
    print(res.summary())
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "read_table": "hatmeta.io.trial_table",
    "TrialTable": "hatmeta.io.trial_table",
    "InputError": "hatmeta.errors",
    "escalc": "hatmeta.fit.effects",
    "EffectSizes": "hatmeta.fit.effects",
    "rma": "hatmeta.fit.models",
    "MetaResult": "hatmeta.results",
    "pool_table": "hatmeta.api",
    "pool_file": "hatmeta.api",
    "pool_by": "hatmeta.api",
    "BatchResult": "hatmeta.fit.batch",
    "forest": "hatmeta.render.plots",
    "nma": "hatmeta.methods.network",
}
_SUBMODULES = ("api", "results", "errors", "io", "fit", "methods", "render", "bayes", "evidence", "cli")

if TYPE_CHECKING:  # what type checkers see: the real objects behind the lazy names
    from . import api as api, results as results, errors as errors  # noqa: F401
    from .api import pool_by as pool_by, pool_file as pool_file, pool_table as pool_table  # noqa: F401
    from .errors import InputError as InputError  # noqa: F401
    from .fit.batch import BatchResult as BatchResult  # noqa: F401
    from .fit.effects import EffectSizes as EffectSizes, escalc as escalc  # noqa: F401
    from .fit.models import rma as rma  # noqa: F401
    from .io.trial_table import TrialTable as TrialTable, read_table as read_table  # noqa: F401
    from .results import MetaResult as MetaResult  # noqa: F401


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:  # `import hatmeta; hatmeta.api` works like `import hatmeta.api`
        return importlib.import_module(f"hatmeta.{name}")
    raise AttributeError(f"module 'hatmeta' has no attribute {name!r}")


__all__ = sorted(_LAZY)
