"""One RevMan outcome as the inputs every command takes from a ``--data`` table.

``pool``, ``forest``, ``funnel``, ``influence``, ``baujat``, ``table``, ``posterior``, ``tsa``, ``sof`` and
``pool --compare`` read a RevMan 5 file (``.rm5``), a Cochrane data package or RevMan's analyses CSV through
``outcome_source``: the outcome's rows as a TrialTable (columns as a ``--data`` CSV names them, plus
``revman_id``, ``label``, ``year`` and ``subgroup``), the measure, the review's stored analysis as
``pool_table`` options (the revman5 preset, RevMan's method and model, its CI level, its subgroups),
the arms' names, a title, the notes on what reading changed, and each study's risk-of-bias judgements.
One implementation: the commands differ only in what they do with these inputs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:
    from .revman import Outcome, Review
    from .trial_table import TrialTable


@dataclass(frozen=True)
class OutcomeSource:
    """A RevMan outcome ready to pool: ``table`` and ``measure`` as ``read_data`` gives them, and
    ``options`` (method, preset, level, subgroup) for ``api.pool_table``, RevMan's stored settings."""

    review: Review
    outcome: Outcome
    table: TrialTable
    measure: str
    options: dict[str, Any]
    notes: tuple[str, ...] = ()
    labels: tuple[str, str] = ("experimental", "control")
    risk_of_bias: dict[str, dict[str, str]] = field(default_factory=dict)  # table study -> {domain: judgement}

    @property
    def title(self) -> str:
        """'Review title: outcome name' (the file's name when the review has no title)."""
        head = self.review.title or os.path.basename(self.review.path)
        return f"{head}: {self.outcome.id} {self.outcome.name}".strip()

    @property
    def model_text(self) -> str:
        """RevMan's analysis in its own words, e.g. 'M-H, Random (95% CI), as stored in the review'."""
        names = {"MH": "M-H", "IV": "IV", "PETO": "Peto"}
        o = self.outcome
        return (f"{names.get(o.method, o.method)}, {'Random' if o.random else 'Fixed'} ({o.ci_total:g}% CI), "
                "as stored in the review")


def wants_review(data_file: str | os.PathLike[str] | None, outcome: str | None) -> bool:
    """Whether ``--data`` names a RevMan review: a ``.rm5`` file, or any RevMan source with ``--outcome``."""
    from .revman import is_rm5

    return data_file is not None and (outcome is not None or is_rm5(data_file))


def outcome_source(data_file: Any, outcome_id: str | None, measure: str | None = None) -> OutcomeSource:
    """Outcome ``outcome_id`` of a RevMan review (a path, or a ``Review`` already read) as command inputs.

    Parameters
    ----------
    data_file : str, os.PathLike or Review
        A ``.rm5`` file, a Cochrane data package (zip or folder) or RevMan 5's analyses CSV.
    outcome_id : str
        RevMan's id of the outcome (``CMP-001.01``); None is an error that lists the ids.
    measure : str, optional
        ``--measure`` as given: must be the review's own measure when given.

    Returns
    -------
    OutcomeSource
        The rows, the measure (log scale for ratios), the stored analysis as pooling options.
    """
    from .revman import outcome_table, preset_method
    from .revman_package import read_any_review

    review = data_file if hasattr(data_file, "outcomes") else read_any_review(data_file)
    if not outcome_id:
        known = ", ".join(o.id for o in review.outcomes) or "none"
        raise InputError(f"a RevMan file holds many outcomes: choose one with --outcome ({known})",
                         file=review.path, option="--outcome")
    o = review.outcome(outcome_id)
    table, rm_measure, notes = outcome_table(review, o)
    if measure and measure.upper() != rm_measure:
        raise InputError(f"outcome {o.id} is analysed as {rm_measure} in the review; drop --measure {measure}",
                         option="--measure")
    options = {"method": preset_method(o), "preset": "revman5", "level": o.ci_total / 100,
               "subgroup": "subgroup" if o.subgroups else None}
    labels = (o.labels.get("GROUP_LABEL_1") or "experimental", o.labels.get("GROUP_LABEL_2") or "control")
    # judgements by the table's study ids (RevMan's names): the forest plot's lights, the JSON's annotations
    rob = review.risk_of_bias
    judged = {s: rob[s] for s in table.studies if s in rob}
    return OutcomeSource(review=review, outcome=o, table=table, measure=rm_measure, options=options,
                         notes=tuple(notes), labels=labels, risk_of_bias=judged)
