"""hatmeta: evidence synthesis of heroin-assisted treatment (HAT) trials.

The data flow is one direction:
extraction files -> validated records (`table`) -> effect sizes (`effects`)
-> model fit (`models`) -> immutable result (`results`) -> figures and reports.

Public API (imported lazily so that `import hatmeta` stays cheap)::

    from hatmeta import read_table, escalc, rma
    table = read_table("trials.csv")
    es = escalc(table, measure="RR")
    res = rma(es, method="REML")
    print(res.summary())
"""

__version__ = "0.1.0"

_LAZY = {
    "read_table": "hatmeta.table",
    "TrialTable": "hatmeta.table",
    "InputError": "hatmeta.errors",
    "escalc": "hatmeta.effects",
    "EffectSizes": "hatmeta.effects",
    "rma": "hatmeta.models",
    "MetaResult": "hatmeta.results",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hatmeta' has no attribute {name!r}")


__all__ = sorted(_LAZY)
