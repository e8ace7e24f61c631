"""The HAT review as the command line's provider of named analyses (`hatmeta.commands.named.Analyses`).

`hatmeta.cli` builds one per run with the global --data-dir and --analyses-dir; the generic commands
(`pool`, `forest`, `tsa`, ...) ask it for an analysis by name and never import the review themselves.
"""

from __future__ import annotations

from typing import Any

from ..commands.named import Named, NamedMultivariate, NamedNetwork, NamedTsa


class ReviewAnalyses:
    """Named analyses of the review in ``data_dir`` (None: the project's data/extracted/) with the specs
    in ``analyses_dir`` (None: the default folder, see `hatmeta.review.spec.default_analyses_dir`)."""

    def __init__(self, data_dir: str | None = None, analyses_dir: str | None = None) -> None:
        self.data_dir = data_dir
        self.analyses_dir = analyses_dir

    def pool(self, name: str, measure: str | None = None, **options: Any) -> Named:
        from ..results import study_labels
        from .analysis import trial_labels
        from .api import pool_analysis
        from .appraisal import risk_of_bias_of

        result, an = pool_analysis(name, data_dir=self.data_dir, analyses_dir=self.analyses_dir, measure=measure,
                                   **options)
        spec = an.spec
        labels = study_labels(result)
        if result.extra.get("omitted"):  # omitted trials are named as `hatmeta trials` names them
            labels = {**trial_labels(an.extraction), **labels}

        def text_blocks(verbose: bool) -> list[str]:
            from .reconciliation import gaps_text, reconciliation_text

            # The gaps repeat the omitted-trial notes with where each figure was sought: shown with -v.
            blocks = [reconciliation_text(result, result.extra.get("published")),
                      gaps_text(result.extra.get("gaps"), verbose=True) if verbose else ""]
            return [b for b in blocks if b]

        return Named(result=result, table=an.table, benefit=spec.benefit,
                     labels=(spec.experimental_label, spec.control_label), title=spec.title,
                     study_labels=labels, risk_of_bias=risk_of_bias_of(result), text_blocks=text_blocks)

    def table(self, name: str):
        from .analysis import load_analysis

        return load_analysis(name, data_dir=self.data_dir, analyses_dir=self.analyses_dir).table

    def tsa(self, name: str, measure: str | None = None, benefit: str | None = None) -> NamedTsa:
        from .api import tsa_inputs

        table, spec, notes, extra = tsa_inputs(name, data_dir=self.data_dir, analyses_dir=self.analyses_dir)
        return NamedTsa(table=table, settings=extra.pop("settings"), measure=measure or spec.measure,
                        benefit=benefit or spec.benefit, title=spec.title, notes=list(notes), **extra)

    def compare(self, result, ref: str, name: str | None, benefit: str, labels, measure: str | None,
                **options: Any) -> dict[str, Any]:
        from .api import compare_with

        return compare_with(result, ref, analysis=name, data_dir=self.data_dir, benefit=benefit, labels=labels,
                            measure=measure, analyses_dir=self.analyses_dir, **options)

    def network(self, name: str, **options: Any) -> NamedNetwork:
        from .network import network_text, pool_network

        result, an = pool_network(name, data_dir=self.data_dir, analyses_dir=self.analyses_dir, **options)
        return NamedNetwork(result=result, text=network_text(an), json={
            "analysis": an.spec.name, "title": an.spec.title, "trials": list(an.notes),
            "omitted": [{"trial": t, "reason": r} for t, r in an.omitted],
            "transitivity": " ".join(an.spec.transitivity.split())})

    def multivariate(self, name: str, level: float = 0.95) -> NamedMultivariate | None:
        """The multivariate analysis ``name`` (analyses/multivariate/), or None when no such spec exists."""
        from .multivariate import is_multivariate, pool_multivariate

        if not is_multivariate(name, self.analyses_dir):
            return None
        result, _ = pool_multivariate(name, data_dir=self.data_dir, analyses_dir=self.analyses_dir, level=level)
        return NamedMultivariate(result=result, text=result.summary())

    def compare_text(self, compared: dict[str, Any], ref: str, result) -> str:
        from .compare import compare_text

        return compare_text(compared, ref, result.measure, result.scale, result.level)

