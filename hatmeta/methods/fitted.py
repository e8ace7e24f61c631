"""What a post-fit method needs of its input: the effect sizes and the fit's settings.

Every post-fit method (``trim_fill(res)``, ``leave_one_out(res)``, ``influence(res)``, ...) takes a
fitted ``MetaResult``, as metafor's generics take an ``rma`` object, and refits with the result's own
estimator, CI method and level unless told otherwise. Inside the package they may also be given the
``EffectSizes`` directly (the pooling pipeline has them at hand).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import InputError
from ..fit.effects import EffectSizes

if TYPE_CHECKING:
    from ..results import MetaResult


@dataclass(frozen=True)
class Fitted:
    """The effect sizes of a fit and its settings (estimator, CI method, level, measure, scale)."""

    es: EffectSizes
    method: str
    ci: str
    level: float


def fitted(obj: MetaResult | EffectSizes, method: str | None = None, ci: str | None = None,
           level: float | None = None) -> Fitted:
    """``obj``: a MetaResult from ``rma`` / ``pool_table`` (or EffectSizes); the keywords override its
    settings. RevMan's M-H random-effects preset refits with DerSimonian-Laird (its tau² estimator)."""
    if isinstance(obj, EffectSizes):
        return Fitted(obj, method or "REML", ci or "wald", 0.95 if level is None else level)
    es = getattr(obj, "effects", None)
    if not isinstance(es, EffectSizes):
        raise InputError("a post-fit method needs a result fitted by hatmeta.rma or hatmeta.pool_table "
                         f"(got {type(obj).__name__})")
    own = "DL" if obj.method == "MH-DL" else obj.method
    return Fitted(es, method or own, ci or obj.ci_method, obj.level if level is None else level)
