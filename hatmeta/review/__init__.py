"""The HAT evidence base: extraction files (data/extracted/) and analysis specifications (analyses/).

    from hatmeta.review import load_analysis
    analysis = load_analysis("retention")   # validated extraction + analyses/retention.toml
    analysis.table                          # hatmeta.io.trial_table.TrialTable, one row per trial
    analysis.omitted, analysis.notes        # what was left out and why; choices made

Data flow: CSV files -> validated rows (extraction) -> one comparison per trial (analysis,
standardise) -> TrialTable for the engine.
"""

from .analysis import Analysis, Comparison, Skip, build_analysis, check_trial, load_analysis, trial_label
from .extraction import Extraction, Row, default_data_dir, load_extraction, validate_extraction
from .spec import AnalysisSpec, default_analyses_dir, list_analyses, read_spec

__all__ = [
    "Analysis", "AnalysisSpec", "Comparison", "Skip", "check_trial", "Extraction", "Row", "build_analysis",
    "default_analyses_dir",
    "default_data_dir", "list_analyses", "load_analysis", "load_extraction", "read_spec", "trial_label",
    "validate_extraction",
]
