"""`hatmeta pool NAME` for a named multivariate analysis (one outcome at several time points, from the
provider's ``multivariate``): JSON or text, and every other pool option refused by name, never ignored."""

from __future__ import annotations

import click

from ..errors import InputError

# pool's parameters this path reads; any other given is refused.
SUPPORTED = {"analysis", "fmt", "level", "verbose"}


def run_named(ctx: click.Context, analysis: str) -> bool:
    """Pool and print ``analysis`` if the provider knows it as multivariate; False when it does not."""
    from ..precision import dumps
    from .multilevel import _flag, _given
    from .named import analyses

    provider = analyses(ctx)
    ask = getattr(provider, "multivariate", None)
    params = ctx.params
    named = ask(analysis, level=params.get("level", 0.95)) if ask is not None else None
    if named is None:
        return False
    extra = sorted(_flag(n) for n, v in params.items() if n not in SUPPORTED and _given(n, v))
    if extra:
        raise InputError(f"{', '.join(extra)} cannot be combined with the multivariate analysis {analysis!r} "
                         "(it takes --level and --format json|text; its model is set in its spec)", option=extra[0])
    fmt = str(params.get("fmt", "text")).lower()
    if fmt not in ("json", "text"):
        raise InputError(f"the multivariate analysis writes --format json or text, not {fmt}", option="--format")
    click.echo(dumps(named.result.to_dict()) if fmt == "json" else named.text, nl=fmt == "json")
    return True
