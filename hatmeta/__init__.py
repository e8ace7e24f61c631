"""hatmeta: meta-analysis that agrees with R's metafor, and the evidence synthesis of heroin-assisted
treatment (HAT) trials built on it.

The engine flows one way, and its folders are its stages (an import-linter contract in
pyproject.toml keeps it so): base helpers (errors, precision, numbers, vocabulary, dist) < ``io``
(read and validate trial tables) < ``results`` (frozen results) < ``fit`` (escalc, rma, batch) and
``bayes`` < ``methods`` (post-fit generics: take a result, return one) < ``render`` (text, tables,
figures) < ``api`` < ``commands``. The HAT review (extraction, analysis specs, appraisal, report,
reproduce) lives apart in ``review``, and only the command line reaches it.

Public API (imported lazily so that ``import hatmeta`` stays cheap)::

    import hatmeta
    res = hatmeta.rma(hatmeta.escalc(hatmeta.read_table("bcg.csv"), measure="RR"), method="REML")
    print(res.summary())              # metafor-like text; res.to_dict() is the JSON contract
    res.to_frame()                    # one row per study (pandas)
    hatmeta.leave_one_out(res)        # post-fit methods take the result, as metafor's generics do
    hatmeta.trim_fill(res).to_dict()
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
    # post-fit methods: each takes a fitted MetaResult and returns a result
    "leave_one_out": "hatmeta.methods.sensitivity",
    "cumulative": "hatmeta.methods.sensitivity",
    "subgroups": "hatmeta.methods.sensitivity",
    "influence": "hatmeta.methods.influence",
    "trim_fill": "hatmeta.methods.publication_bias",
    "selection_model": "hatmeta.methods.publication_bias",
    "small_study_test": "hatmeta.methods.publication_bias",
    "egger": "hatmeta.methods.publication_bias",
    "pet_peese": "hatmeta.methods.publication_bias",
    # network meta-analysis
    "nma": "hatmeta.methods.network",
    "netheat": "hatmeta.methods.netheat",
    "bayes_nma": "hatmeta.bayes.network",  # the [bayes] extra: PyMC is imported only when it samples
}
_SUBMODULES = ("api", "results", "errors", "io", "fit", "methods", "render", "bayes", "review", "cli")

if TYPE_CHECKING:  # what type checkers see: the real objects behind the lazy names
    from . import api as api, errors as errors, results as results
    from .api import pool_by as pool_by, pool_file as pool_file, pool_table as pool_table
    from .bayes.network import bayes_nma as bayes_nma
    from .errors import InputError as InputError
    from .fit.batch import BatchResult as BatchResult
    from .fit.effects import EffectSizes as EffectSizes, escalc as escalc
    from .fit.models import rma as rma
    from .io.trial_table import TrialTable as TrialTable, read_table as read_table
    from .methods.influence import influence as influence
    from .methods.publication_bias import (
        egger as egger,
        pet_peese as pet_peese,
        selection_model as selection_model,
        small_study_test as small_study_test,
        trim_fill as trim_fill,
    )
    from .methods.sensitivity import (
        cumulative as cumulative,
        leave_one_out as leave_one_out,
        subgroups as subgroups,
    )
    from .results import MetaResult as MetaResult


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:  # `import hatmeta; hatmeta.api` works like `import hatmeta.api`
        return importlib.import_module(f"hatmeta.{name}")
    raise AttributeError(f"module 'hatmeta' has no attribute {name!r}")


__all__ = sorted(_LAZY)
