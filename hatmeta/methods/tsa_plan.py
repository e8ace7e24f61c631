"""Planning the next trial: how large must one new trial be for the updated random-effects
meta-analysis to reach significance with a stated power?

Conditional power by simulation (Sutton, Cooper, Jones, Lambert, Thompson & Abrams 2007, Stat Med
26:2479; Roloff, Higgins & Sutton 2013, Stat Med 32:11). For each of ``draws`` simulated trials:

1. its true effect is drawn from the predictive distribution of the current random-effects
   meta-analysis, N(mu, SE(mu)^2 + tau^2) (the frequentist counterpart of Sutton et al.'s Bayesian
   predictive distribution; DerSimonian-Laird estimates);
2. its data are drawn for each candidate size n per arm: events ~ Binomial(n, p) in each arm
   (control risk p stated, intervention risk from the drawn effect), or for a mean difference an
   observed difference ~ N(effect, 2 SD^2 / n);
3. the meta-analysis is refitted with the new trial (DerSimonian-Laird, Wald z), and the draw counts
   as a success if the updated z lies beyond z_{1-alpha/2} in the direction of benefit.

Everything is vectorised across draws and sizes (one array of draws x sizes x studies); the same
drawn effects are used at every size (common random numbers), so the power curve is smooth in n.
With tau^2 > 0 a single trial, however large, cannot make the random-effects mean arbitrarily
precise (its weight is at most 1/tau^2; Roloff et al. 2013), so the power may level off below the
target: the plan then says so. Sizes are per arm; effects on the natural scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np

from ..errors import InputError
from ..results import _Record

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from ..io.trial_table import TrialTable
    from .tsa import TsaResult

DEFAULT_SIZES = tuple(int(round(x / 5.0) * 5) for x in np.geomspace(25, 10000, 20))


@dataclass(frozen=True)
class NextTrialPlan(_Record):
    """Conditional power of the updated meta-analysis for a new trial of each size (per arm)."""

    measure: str
    control_risk: float | None
    control_risk_source: str | None
    sd: float | None
    alpha: float
    target_power: float
    draws: int
    seed: int
    sizes: tuple[int, ...]
    power: tuple[float, ...]
    effect_low: tuple[float, ...]  # 2.5% quantile of the new trial's observed effect (natural scale)
    effect_high: tuple[float, ...]  # 97.5% quantile
    smallest_size: int | None
    sentence: str
    notes: tuple[str, ...] = ()

    @property
    def interval_label(self) -> bool:
        return True

    @property
    def control_risk_text(self) -> str:
        if self.control_risk is None:
            return f"n/a (mean difference, SD {self.sd:.4g})"
        return f"{100 * self.control_risk:.1f}% ({self.control_risk_source})"


def _dl(y: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DerSimonian-Laird pooled estimate and SE along the last axis (vectorised)."""
    w = 1.0 / v
    sw = w.sum(-1)
    mu = (w * y).sum(-1) / sw
    q = (w * (y - mu[..., None]) ** 2).sum(-1)
    c = sw - (w * w).sum(-1) / sw
    tau2 = np.maximum(0.0, (q - (y.shape[-1] - 1)) / c)
    wr = 1.0 / (v + tau2[..., None])
    swr = wr.sum(-1)
    return (wr * y).sum(-1) / swr, 1.0 / np.sqrt(swr)


def simulate(yi: ArrayLike, vi: ArrayLike, measure: str, *, control_risk: float | None = None,
             sd: float | None = None, sizes: Sequence[int] | np.ndarray = DEFAULT_SIZES, draws: int = 10000,
             seed: int = 1, alpha: float = 0.05, benefit: str = "lower", cc: float = 0.5,
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(power per size, 2.5% and 97.5% quantiles of the new trial's effect per size, analysis scale)."""
    from ..dist import norm_ppf

    yi = np.asarray(yi, float)
    vi = np.asarray(vi, float)
    sizes = np.asarray(sizes, dtype=np.int64)
    mu, se = _dl(yi, vi)
    w = 1 / vi
    q = float(w @ (yi - (w @ yi) / w.sum()) ** 2)
    tau2 = max(0.0, (q - (yi.size - 1)) / (w.sum() - (w @ w) / w.sum())) if yi.size > 1 else 0.0
    rng = np.random.default_rng(seed)
    theta = mu + math.sqrt(se**2 + tau2) * rng.standard_normal(draws)  # true effect of the new trial
    n = sizes[None, :].astype(float)
    if measure in ("RR", "OR", "RD"):
        pc = float(cast(float, control_risk))  # given for binary measures (plan_next_trial)
        if measure == "RR":
            pt = pc * np.exp(theta)
        elif measure == "OR":
            odds = pc / (1 - pc) * np.exp(theta)
            pt = odds / (1 + odds)
        else:
            pt = pc + theta
        pt = np.clip(pt, 0.0, 1.0)
        et = rng.binomial(np.broadcast_to(sizes, (draws, sizes.size)), pt[:, None]).astype(float)
        ec = rng.binomial(np.broadcast_to(sizes, (draws, sizes.size)), pc).astype(float)
        zero = (et == 0) | (ec == 0) | (et == n) | (ec == n)
        add = np.where(zero, cc, 0.0)
        a, c = et + add, ec + add
        n1 = n + 2 * add
        if measure == "RR":
            y_new = np.log(a / n1) - np.log(c / n1)
            v_new = 1 / a - 1 / n1 + 1 / c - 1 / n1
        elif measure == "OR":
            y_new = np.log(a / (n1 - a)) - np.log(c / (n1 - c))
            v_new = 1 / a + 1 / (n1 - a) + 1 / c + 1 / (n1 - c)
        else:
            p1, p2 = a / n1, c / n1
            y_new = p1 - p2
            v_new = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n1
        # a trial with no events (or only events) in both arms adds nothing to a ratio measure
        useless = ((et == 0) & (ec == 0)) | ((et == n) & (ec == n)) if measure != "RD" else np.zeros_like(zero)
    else:
        v_new = np.broadcast_to(2 * cast(float, sd) ** 2 / n, (draws, sizes.size))
        y_new = theta[:, None] + np.sqrt(v_new) * rng.standard_normal((draws, sizes.size))
        useless = np.zeros(y_new.shape, bool)
    y_all = np.concatenate([np.broadcast_to(yi, y_new.shape + yi.shape), y_new[..., None]], axis=-1)
    v_all = np.concatenate([np.broadcast_to(vi, v_new.shape + vi.shape), v_new[..., None]], axis=-1)
    v_all = np.where(useless[..., None] & (np.arange(yi.size + 1) == yi.size), np.inf, v_all)
    y_all = np.where(np.isfinite(v_all), y_all, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        est, se_new = _dl(y_all, v_all)
    z = est / se_new
    crit = norm_ppf(1 - alpha / 2)
    win = (-z if benefit == "lower" else z) > crit
    power = win.mean(0)
    y_ok = np.where(useless, np.nan, y_new)
    lo = np.nanquantile(y_ok, 0.025, axis=0)
    hi = np.nanquantile(y_ok, 0.975, axis=0)
    return power, lo, hi


def plan_next_trial(table: TrialTable | None, measure: str, res: TsaResult, *, control_risk: float | None = None,
                    sd: float | None = None, target_power: float | None = None, sizes: Sequence[int] | None = None,
                    draws: int = 10000, seed: int = 1, method: str = "DL", order: str | None = None,
                    cc: float = 0.5) -> NextTrialPlan:
    """Plan the next trial after the TSA ``res`` of ``table`` (see the module docstring)."""
    from ..fit.effects import escalc

    if table is None or not res.trials:
        raise InputError("planning the next trial needs the current meta-analysis: no trial reports this outcome "
                         "yet, so the first trial's size follows from the required information size",
                         column="--plan-next")
    if draws < 100:
        raise InputError(f"--draws must be at least 100, got {draws}", column="--draws")
    sizes = tuple(sorted(set(sizes))) if sizes else DEFAULT_SIZES
    if any(s < 2 for s in sizes):
        raise InputError("--sizes must be at least 2 per arm", column="--sizes")
    target = res.power if target_power is None else target_power
    if not 0 < target < 1:
        raise InputError(f"--target-power must lie in (0, 1), got {target:g}", column="--target-power")
    es = escalc(table, measure, cc=cc)
    notes = []
    binary = measure in ("RR", "OR", "RD")
    source = None
    if binary:
        if control_risk is None:
            control_risk, source = res.control_risk, res.control_risk_source
        else:
            source = "stated"
        if not 0 < cast(float, control_risk) < 1:  # the TSA's pooled control risk when not given
            raise InputError(f"--control-risk must lie in (0, 1), got {control_risk:g}", column="--control-risk")
    else:
        sd = sd if sd is not None else res.sd
    if method.upper() != "DL":
        notes.append(f"the simulation refits with DerSimonian-Laird (the TSA used {method.upper()})")
    power, lo, hi = simulate(es.yi, es.vi, measure, control_risk=control_risk, sd=sd, sizes=sizes, draws=draws,
                             seed=seed, alpha=res.alpha if res.sides == 2 else 2 * res.alpha, benefit=res.benefit,
                             cc=cc)
    from ..dist import norm_ppf

    z_now = cast(float, res.estimate) / cast(float, res.se)  # a plan needs the current meta-analysis (checked)
    if (-z_now if res.benefit == "lower" else z_now) > norm_ppf(1 - res.alpha / 2):
        notes.append("the current meta-analysis is already significant by the conventional test: the power "
                     "is the chance that it stays so after the new trial (the TSA boundaries decide firmness)")
    nat = np.exp if res.scale == "log" else (lambda x: x)
    ok = np.flatnonzero(power >= target)
    smallest = int(sizes[ok[0]]) if ok.size else None
    if smallest is not None:
        i = ok[0]
        sentence = (f"A new trial of {smallest:,} per arm ({2 * smallest:,} participants; the smallest of the sizes "
                    f"tried) gives the updated "
                    f"random-effects meta-analysis a {power[i]:.0%} chance of significant benefit "
                    f"(target {target:.0%}); such a trial could show a {measure} from {nat(lo[i]):.3g} to "
                    f"{nat(hi[i]):.3g} (95% of simulated trials).")
    else:
        sentence = (f"No single trial up to {sizes[-1]:,} per arm reaches {target:.0%} power (at most "
                    f"{power.max():.0%}): with heterogeneity tau^2 = {res.tau2:.3g} one trial cannot settle the "
                    "random-effects meta-analysis alone (Roloff et al. 2013); more than one trial is needed.")
    return NextTrialPlan(measure=measure, control_risk=control_risk if binary else None,
                         control_risk_source=source, sd=None if binary else sd,
                         alpha=res.alpha, target_power=float(target), draws=int(draws), seed=int(seed),
                         sizes=tuple(int(s) for s in sizes), power=tuple(float(p) for p in power),
                         effect_low=tuple(float(x) for x in nat(lo)), effect_high=tuple(float(x) for x in nat(hi)),
                         smallest_size=smallest, sentence=sentence, notes=tuple(notes))
