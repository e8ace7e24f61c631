"""hatmeta: evidence synthesis of heroin-assisted treatment (HAT) trials.

The data flow is one direction, and the folders show its stages:
input readers (`io`) -> effect sizes and model fits (`fit`) -> post-fit methods (`methods`)
-> immutable results (`results`) -> text, tables, figures and the report (`render`).
The HAT evidence (extraction, analysis specs) lives apart in `evidence`; `bayes` holds the
Bayesian engines; `api` is the one entry point and `cli`/`commands` the thin command line.

Public API (imported lazily so that `import hatmeta` stays cheap)::

    from hatmeta import read_table, escalc, rma
    table = read_table("trials.csv")
    es = escalc(table, measure="RR")
    res = rma(es, method="REML")
    print(res.summary())
"""

__version__ = "0.1.0"

_LAZY = {
    "read_table": "hatmeta.io.trial_table",
    "TrialTable": "hatmeta.io.trial_table",
    "InputError": "hatmeta.errors",
    "escalc": "hatmeta.fit.effects",
    "EffectSizes": "hatmeta.fit.effects",
    "rma": "hatmeta.fit.models",
    "MetaResult": "hatmeta.results",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hatmeta' has no attribute {name!r}")


__all__ = sorted(_LAZY)
