"""Text of a trial sequential analysis, laid out like the TSA program's summary."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .tsa import TsaResult
    from .tsa_plan import NextTrialPlan

SPENDING = {"obf": "Lan-DeMets O'Brien-Fleming", "pocock": "Lan-DeMets Pocock"}


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
    lines.append(f"measure {res.measure}; {res.benefit} values favour the intervention; random effects: {res.method}")
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
        rows: list[tuple[str, ...]] = [
            (t.study, f"{t.information:,}", f"{t.z:+.3f}", _z(t.boundary_benefit), _z(t.boundary_harm))
            for t in res.trials]
        if res.futility:
            head += ("futility",)
            rows = [r + (_z(t.futility),) for r, t in zip(rows, res.trials)]
        widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
        lines.append("  " + "  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                                      for i, (h, w) in enumerate(zip(head, widths))))
        for r, t in zip(rows, res.trials):
            cells = "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
            lines.append("  " + cells + (f"  ({t.note})" if t.note else ""))
        if res.final_boundary is not None:
            lines.append(f"  boundary at the required information size: +/-{res.final_boundary:.3f}")
        lines.append("")
        scale = " (natural scale)" if res.scale == "log" else ""
        lines.append(f"Pooled {res.measure}{scale}: {_nat(res, res.estimate)}, 95% CI {_nat(res, res.ci_low)} to "
                     f"{_nat(res, res.ci_high)}; TSA-adjusted CI {_nat(res, res.adjusted_ci_low)} to "
                     f"{_nat(res, res.adjusted_ci_high)}")
    lines.append("")
    lines.append("Conclusion: " + res.sentence)
    from ..summary import NOTE_CHARS

    for note in res.notes:  # cut in the middle as the pooled output does; JSON keeps them whole
        if len(note) > NOTE_CHARS:
            note = note[:NOTE_CHARS - 75].rsplit(" ", 1)[0] + " ... " + note[-70:].split(" ", 1)[-1]
        lines.append(f"Note: {note}")
    return "\n".join(lines)


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
    return "\n".join(lines)


