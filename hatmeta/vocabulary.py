"""The package's words, one of each: method sets and the display names of measures, methods and tests.

Every stage reads these from here, so that a method added to a set, or a name changed, changes
everywhere at once.
"""

from __future__ import annotations

# Common-effect (fixed-effect) methods: no tau², and no prediction interval.
COMMON_EFFECT_METHODS = frozenset({"FE", "MH", "PETO"})
# Binomial/Poisson GLMMs on the arm counts (hatmeta/fit/glmm.py).
GLMM_METHODS = ("GLMM-FS", "GLMM-RS", "GLMM-EXACT")

# Measures in running text (lower case) and on figures and tables (RevMan's capitalised names).
MEASURE_TEXT = {"RR": "risk ratio", "OR": "odds ratio", "RD": "risk difference", "MD": "mean difference",
                "SMD": "standardised mean difference (Hedges' g)", "IRR": "incidence rate ratio",
                "GEN": "generic effect", "PETO": "Peto odds ratio", "HR": "hazard ratio",
                "ROM": "ratio of means", "IRD": "incidence rate difference", "PR": "proportion",
                "PLO": "log odds of a proportion", "PFT": "Freeman-Tukey double-arcsine proportion",
                "COR": "correlation", "ZCOR": "Fisher's z-transformed correlation"}
MEASURE_TITLES = {"RR": "Risk Ratio", "OR": "Odds Ratio", "RD": "Risk Difference", "MD": "Mean Difference",
                  "SMD": "Std. Mean Difference", "IRR": "Rate Ratio", "GEN": "Effect", "PETO": "Peto Odds Ratio"}

# Models in the text summary, and as RevMan labels them on a forest plot ("M-H, Random").
METHOD_TEXT = {
    "FE": "Common-effect model (inverse variance)",
    "MH": "Common-effect model (Mantel-Haenszel)",
    "PETO": "Common-effect model (Peto)",
    "MH-DL": "Random-effects model (RevMan 5 M-H, Random: DerSimonian-Laird)",
    "GLMM-FS": "Random-effects GLMM, fixed study intercepts (metafor UM.FS; ML)",
    "GLMM-RS": "Random-effects GLMM, random study intercepts (metafor UM.RS; ML)",
    "GLMM-EXACT": "Random-effects conditional GLMM, exact likelihood (metafor CM.EL; ML)",
}
METHOD_TITLES = {"MH": "M-H, Fixed", "PETO": "Peto, Fixed", "FE": "IV, Fixed", "MH-DL": "M-H, Random",
                 "GLMM-FS": "GLMM (UM.FS), Random", "GLMM-RS": "GLMM (UM.RS), Random",
                 "GLMM-EXACT": "GLMM (CM.EL), Random"}

# Small-study and publication-bias tests.
TEST_NAMES = {"egger": "Egger's regression test", "peters": "Peters' test", "harbord": "Harbord's score test",
              "begg": "Begg's rank correlation test"}

# The two arms when the caller names neither (figures, tables and text alike).
DEFAULT_LABELS = ("experimental", "control")


def is_common_effect(method: str) -> bool:
    """True for a common-effect method (FE, MH, PETO; any case)."""
    return str(method).upper() in COMMON_EFFECT_METHODS
