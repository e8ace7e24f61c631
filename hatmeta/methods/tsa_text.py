"""Text of a trial sequential analysis, laid out like the TSA program's summary."""

from __future__ import annotations

import math
import textwrap
from typing import TYPE_CHECKING

from ..printable import join_lines

if TYPE_CHECKING:
    from .tsa import TsaResult
    from .tsa_plan import NextTrialPlan

SPENDING = {"obf": "Lan-DeMets O'Brien-Fleming", "pocock": "Lan-DeMets Pocock"}
ESTIMATORS = {"DL": "DerSimonian-Laird", "REML": "REML", "ML": "ML", "PM": "Paule-Mandel", "HE": "Hedges",
              "SJ": "Sidik-Jonkman", "EB": "empirical Bayes", "HS": "Hunter-Schmidt", "GENQ": "generalised Q"}
CI_TEXT = {"wald": "a Wald (normal) CI", "hksj": "a Hartung-Knapp-Sidik-Jonkman (t) CI"}


def model_text(method: str, ci: str | None = "wald") -> str:
    """'REML random effects with a Hartung-Knapp-Sidik-Jonkman (t) CI': a pooling model in words, to
    say beside the TSA's own model which one `hatmeta pool` uses."""
    from ..vocabulary import METHOD_TEXT

    m = str(method).upper()
    if m in METHOD_TEXT:
        what = METHOD_TEXT[m][0].lower() + METHOD_TEXT[m][1:]
    else:
        what = f"{ESTIMATORS.get(m, m)} random effects"
    ci = str(ci or "wald").lower()
    return f"{what} with {CI_TEXT.get(ci, f'a {ci} CI')}"


def tsa_model_text(res: TsaResult) -> str:
    """The TSA's own model of the pooled estimate and z-curve in words."""
    common = " (Mantel-Haenszel where tau2 = 0)" if res.weights == "MH" else ""
    return f"{ESTIMATORS.get(res.method, res.method)} random effects{common} with a Wald (normal) CI"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _z(x: float | None) -> str:
    return "" if x is None else f"{x:+.3f}"


def _nat(res: TsaResult, x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "unbounded" if x is not None else "-"
    return f"{res.natural(x):.4g}"


def tsa_text(res: TsaResult, title: str | None = None) -> str:
    """Summary of a TsaResult (numbers on the natural scale for ratios; z on the analysis scale)."""
    lines = []
    side = "two-sided" if res.sides == 2 else "one-sided"
    lines.append(f"Trial sequential analysis{': ' + title if title else ''}")
    common = "Mantel-Haenszel" if res.weights == "MH" else "inverse variance"
    lines.append(f"measure {res.measure}; {res.benefit} values favour {res.arms[0]} (vs {res.arms[1]}); "
                 f"random effects: {res.method}; common-effect looks (tau2 = 0): {common}")
    lines.append("")
    lines.append("Assumptions")
    lines.append(f"  type I error (alpha):      {_pct(res.alpha)} ({side})")
    lines.append(f"  power (1 - beta):          {_pct(res.power)}")
    if res.control_risk is not None:
        eff = res.anticipated_effect
        kind = "relative risk reduction" if eff >= 0 else "relative risk increase"
        lines.append(f"  anticipated effect:        {kind} {_pct(abs(eff))}")
        lines.append(f"  control event proportion:  {_pct(res.control_risk)} ({res.control_risk_source})")
    else:
        lines.append(f"  anticipated effect:        mean difference {res.anticipated_effect:g} (SD {res.sd:.4g})")
    lines.append(f"  heterogeneity correction:  diversity D2 = {_pct(res.diversity)} ({res.diversity_source})")
    lines.append(f"  alpha spending:            {SPENDING[res.spending]}")
    if res.futility:
        lines.append("  futility:                  non-binding, Lan-DeMets O'Brien-Fleming beta spending "
                     + ("(z between the futility boundaries: futility)" if res.sides == 2 else
                        "(z below the futility boundary: futility)"))
    lines.append("")
    lines.append("Information (participants)")
    lines.append(f"  required information size, heterogeneity-adjusted:  {res.required_information_size:,}"
                 f"  (without heterogeneity: {res.required_information_size_fixed:,})")
    if res.required_information_size_inflated is not None:
        lines.append(f"  inflated for the sequential design (x{res.inflation_factor:.4f}):  "
                     f"{res.required_information_size_inflated:,}")
    target = res.required_information_size_inflated or res.required_information_size
    if res.accrued_information:
        lines.append(f"  accrued information:  {res.accrued_information:,} ({_pct(res.accrued_information / target)}"
                     " of the required)")
    else:
        lines.append("  accrued information:  none (no trial reports this outcome by arm)")
    if res.trials:
        lines.append("")
        head: tuple[str, ...] = ("trial", "participants", "cumulative z", "benefit boundary", "harm boundary")
        rows: list[tuple[str, ...]] = [(res.label(t.study), f"{t.information:,}", f"{t.z:+.3f}", _z(t.boundary_benefit),
                 _z(t.boundary_harm)) for t in res.trials]
        if res.futility:
            head += ("futility",)
            rows = [r + (_z(t.futility),) for r, t in zip(rows, res.trials)]
        from ..summary import text_table

        table = text_table(head, rows)
        lines.append(table[0])
        lines += [line + (f"  ({t.note})" if t.note else "") for line, t in zip(table[1:], res.trials)]
        if res.final_boundary is not None:
            lines.append(f"  boundary at the required information size: +/-{res.final_boundary:.3f}")
        lines.append("")
        scale = " (natural scale)" if res.scale == "log" else ""
        lines.append(f"Pooled {res.measure}{scale}: {_nat(res, res.estimate)}, 95% CI {_nat(res, res.ci_low)} to "
                     f"{_nat(res, res.ci_high)}; TSA-adjusted CI {_nat(res, res.adjusted_ci_low)} to "
                     f"{_nat(res, res.adjusted_ci_high)}")
        # The TSA's estimate is the TSA program's model, not necessarily the one `hatmeta pool` reports.
        why = f"The TSA pools by {tsa_model_text(res)}, as the TSA program does" + (
            f"; hatmeta pool uses {res.pool_model}, so its estimate and CI differ." if res.pool_model else ".")
        lines.extend(textwrap.wrap(why, 96, initial_indent="  ", subsequent_indent="  "))
    lines.append("")
    lines.append("Conclusion: " + res.sentence)
    from ..summary import NOTE_CHARS, _relabel

    for note in res.notes:  # cut in the middle as the pooled output does; JSON keeps them whole
        note = _relabel(note, res.study_labels)  # trials by name, as `hatmeta pool` names them
        if len(note) > NOTE_CHARS:
            note = note[:NOTE_CHARS - 75].rsplit(" ", 1)[0] + " ... " + note[-70:].split(" ", 1)[-1]
        lines.append(f"Note: {note}")
    return join_lines(lines)


def plan_text(plan: NextTrialPlan) -> str:
    """Summary of a NextTrialPlan."""
    lines = ["", "Planning the next trial (conditional power of the updated random-effects meta-analysis)"]
    lines.append(f"  control risk of the new trial: {plan.control_risk_text}; target power {_pct(plan.target_power)}; "
                 f"{plan.draws:,} simulated trials per size (seed {plan.seed})")
    lines.append("  per arm  power   " + ("interval of effects the trial could show" if plan.interval_label else ""))
    for n, p, lo, hi in zip(plan.sizes, plan.power, plan.effect_low, plan.effect_high):
        lines.append(f"  {n:>7,}  {p:5.1%}   {lo:.4g} to {hi:.4g}")
    lines.append("  " + plan.sentence)
    lines.extend(f"  Note: {n}" for n in plan.notes)
    return join_lines(lines)


