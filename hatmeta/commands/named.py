"""Named analyses on the command line: `hatmeta pool NAME`, `forest NAME`, `tsa NAME`, ...

The generic commands pool any trial table (``--data FILE``). A *named* analysis (a review's analysis
spec over its extraction) comes from a provider that the command-line entry (`hatmeta.cli`) puts in
the click context; the commands ask it through the small interface below and never import the
review that implements it, so the engine's command line stays free of any one review.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import click

from ..errors import InputError

if TYPE_CHECKING:
    from ..io.trial_table import TrialTable
    from ..results import MetaResult


@dataclass(frozen=True)
class Named:
    """A named analysis pooled for a command: its result and what the output needs of the spec.

    ``text_blocks(verbose)`` gives the review's text shown after the pooled result (published results
    beside ours, the gaps); ``study_labels`` maps study ids (omitted trials included) to display names.
    """

    result: MetaResult
    table: TrialTable
    benefit: str
    labels: tuple[str, str]
    title: str
    study_labels: dict[str, str] = field(default_factory=dict)
    risk_of_bias: dict[str, Any] | None = None
    text_blocks: Callable[[bool], list[str]] = lambda verbose: []


@dataclass(frozen=True)
class NamedTsa:
    """Inputs of a named trial sequential analysis: the table (None when no trial reports the outcome),
    the spec's settings, measure, benefit direction, title and the notes on omitted trials; the arms'
    names, study id -> display name, and the model `pool` fits to the same trials (in words)."""

    table: TrialTable | None
    settings: dict[str, Any]
    measure: str
    benefit: str
    title: str
    notes: list[str]
    labels: tuple[str, str] = ("experimental", "control")
    study_labels: dict[str, str] = field(default_factory=dict)
    pool_model: str | None = None


@dataclass(frozen=True)
class NamedNetwork:
    """A named network analysis pooled for ``hatmeta nma NAME``: the NMAResult, the review's text shown
    after it (trials in and out, transitivity assumptions) and the keys it adds to the JSON."""

    result: Any
    text: str
    json: dict[str, Any]


@dataclass(frozen=True)
class NamedMultivariate:
    """A named multivariate analysis (one outcome at several time points, ``hatmeta pool NAME``): its
    result (``to_dict()`` is the JSON) and text."""

    result: Any
    text: str


class Analyses(Protocol):
    """What a provider of named analyses offers the commands."""

    def pool(self, name: str, measure: str | None = None, **options: Any) -> Named: ...

    def table(self, name: str) -> TrialTable: ...

    def tsa(self, name: str, measure: str | None = None, benefit: str | None = None) -> NamedTsa: ...

    def compare(self, result: MetaResult, ref: str, name: str | None, benefit: str,
                labels: tuple[str, str] | None, measure: str | None, **options: Any) -> dict[str, Any]: ...

    def compare_text(self, compared: dict[str, Any], ref: str, result: MetaResult) -> str: ...

    def network(self, name: str, **options: Any) -> NamedNetwork: ...

    def multivariate(self, name: str, level: float = 0.95) -> NamedMultivariate | None: ...


def analyses(ctx: click.Context | None) -> Analyses:
    """The provider of named analyses this command line was started with."""
    obj = (ctx.obj or {}) if ctx is not None else {}
    make = obj.get("analyses")
    if make is None:
        raise InputError("no named analyses are available here: give --data FILE", column="ANALYSIS")
    provider = obj.get("_analyses_provider")
    if provider is None:
        provider = obj["_analyses_provider"] = make()
    return provider


def source(analysis: str | None, data_file: str | None) -> None:
    """Exactly one of a named analysis and a --data table."""
    if (analysis is None) == (data_file is None):
        raise InputError("give either an analysis name (e.g. 'retention') or --data FILE", column="ANALYSIS")
