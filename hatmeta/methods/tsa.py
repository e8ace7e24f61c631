"""Trial sequential analysis (TSA): is the accumulated evidence firm, or could repeated updating
have produced a false positive, and how much more information is needed?

Method (Wetterslev et al. 2008, J Clin Epidemiol 61:64; Thorlund et al. 2011/2017, *User manual for
Trial Sequential Analysis*, Copenhagen Trial Unit), computed as R's RTSA package (Soerensen et al.,
CRAN 0.2.2) computes it, so that the numbers can be checked against it (tests/fixtures/tsa):

- Required information size (participants), heterogeneity-adjusted by diversity D^2:
  ``RIS = ceil(ceil(4 (z_{1-a/s} + z_{1-b})^2 p(1-p) / (pC - pI)^2) / (1 - D^2))`` for a binary
  outcome (pI = pC (1 - RRR), p = (pC + pI)/2) and ``4 (z + z)^2 SD^2 / MD^2`` for a mean difference
  (Wetterslev et al. 2009, BMC Med Res Methodol 9:86). D^2 = 1 - V_F / V_R from the random-effects
  model of all included trials (DerSimonian-Laird by default).
- Lan-DeMets alpha spending (O'Brien-Fleming or Pocock type) on the information fraction; the
  boundaries are found by recursive numerical integration on Jennison & Turnbull's grid
  (Group Sequential Methods, 2000, ch. 19; the same grid, r = 18, and the same search as RTSA).
- Optional non-binding futility boundaries by O'Brien-Fleming-type beta spending (RTSA's
  ``futility = "non-binding"``; its analysis step always spends beta O'Brien-Fleming-wise).
- Cumulative z: the random-effects (Wald) z after each trial in order; with tau^2 = 0 it is the
  common-effect z, inverse-variance by default (``weights="IV"``) or Mantel-Haenszel
  (``weights="MH"``, RTSA's default, binary measures). TSA-adjusted CI: estimate +/- |boundary at
  the last look| x SE.

Conventions where RTSA and the TSA program's manual differ (README, "Trial sequential analysis"):

1. Sequential inflation (RTSA's default ``power_adj``): alpha is spent over fractions of R x RIS,
   where R is the factor a group sequential design with looks at the trials' fractions needs to
   keep the stated power. Followed because it keeps the stated power and is what RTSA validates;
   the TSA program spends over the RIS itself (``inflate=False``).
2. Heterogeneity by D^2 (the TSA program's default; RTSA's is tau^2 with a number of future
   trials): D^2 needs no assumption about future trials and is what reviewers report.
3. Wald z from DerSimonian-Laird random effects (the TSA program; RTSA's default adds the
   Hartung-Knapp adjustment, which the TSA manual does not use for the z-curve).
4. Looks only at trials adding more than 1% of the RIS and below the inflated RIS (RTSA); a trial
   past the RIS is held against the final boundary (the TSA program's reading), where RTSA takes no
   look. Where the last trial adds no look, the adjusted CI uses the last look's boundary around the
   current estimate (RTSA reports the last look's own CI).
5. Trials with no events in either arm are left out and named (RTSA, metafor); the TSA program can
   keep them with a continuity correction.
6. Common-effect looks (tau^2 = 0) use inverse-variance weights by default: the DerSimonian-Laird
   random-effects model the TSA program monitors reduces to the inverse-variance one at tau^2 = 0,
   so the z-curve is one model throughout. RTSA's default ``weights = "MH"`` (``weights="MH"``
   here) takes the Mantel-Haenszel z (Greenland-Robins variance for RR, Robins-Breslow-Greenland
   for OR) at every look where the DL tau^2 is 0 and the DL z elsewhere (RTSA's ``synthesize``);
   tau^2, D^2 and the random-effects looks stay inverse-variance in both. RTSA adds 0.5 to every
   cell of a trial with a zero-event arm for MH too; so does hatmeta (the escalc correction).

Estimates are on the analysis scale (log for RR and OR). Information is in participants.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ..dist import norm_cdf, norm_ppf
from ..errors import InputError
from ..results import _plain, _Record
from ..vocabulary import DEFAULT_LABELS

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from ..io.trial_table import TrialTable

ZINF = 20.0  # RTSA's stand-in for an infinite boundary (no alpha spent yet)
TOL = 1e-9  # spending below this counts as none (RTSA's tol)
STEP = 0.01  # a look needs more than 1% of the RIS more information than the last (RTSA)
GRID_R = 18
# --- spending functions (one-sided level a, information fraction t in [0, 1]) -------------------

def spend(a: float, t: ArrayLike, kind: str = "obf") -> Any:
    """Cumulative alpha (or beta) spent by fraction ``t``: Lan-DeMets O'Brien-Fleming or Pocock type."""
    t = np.asarray(t, float)
    if kind == "obf":
        with np.errstate(divide="ignore"):
            return 2.0 * (1.0 - norm_cdf(norm_ppf(1.0 - a / 2.0) / np.sqrt(t)))
    if kind == "pocock":
        return a * np.log1p((math.e - 1.0) * t)
    raise InputError(f"unknown spending function {kind!r}; choose obf or pocock", column="--spending")


# --- Jennison & Turnbull recursive integration ---------------------------------------------------

def _grid(shift, lo, hi, r=GRID_R):
    """Simpson grid points and weights for one look (Jennison & Turnbull 2000, section 19.2)."""
    if hi <= lo:  # no continuation region (futility and efficacy boundaries meet): nothing goes on
        return np.array([lo]), np.array([0.0])
    j = np.arange(1, 6 * r, dtype=float)
    x = np.where(j < r, -3 - 4 * np.log(r / j),
                 np.where(j <= 5 * r, -3 + 3 * (j - r) / (2 * r), 3 + 4 * np.log(r / np.maximum(6 * r - j, 1e-300))))
    x = x + shift
    below = np.flatnonzero(x < lo)
    if below.size:
        x = x[below[-1]:].copy()
        x[0] = lo
    above = np.flatnonzero(x > hi)
    if above.size:
        x = x[:above[0] + 1].copy()
        x[-1] = hi
    m = 2 * x.size - 1
    z = np.empty(m)
    z[0::2] = x
    z[1::2] = (x[:-1] + x[1:]) / 2
    w = np.empty(m)
    w[1::2] = 4 / 6 * (z[2::2] - z[:-2:2])
    w[2:-1:2] = 1 / 6 * (z[4::2] - z[:-4:2])
    w[0] = (z[2] - z[0]) / 6
    w[-1] = (z[-1] - z[-3]) / 6
    return z, w


class _Process:
    """Z statistics at looks with information ``info`` (any scale), drift ``theta`` per sqrt(info):
    E[Z_k] = theta sqrt(info_k). Carries the sub-density of Z_k on the continuation region."""

    def __init__(self, info, theta) -> None:
        self.proc = np.sqrt(np.asarray(info, float))
        self.incr = np.sqrt(np.diff(np.concatenate([[0.0], np.asarray(info, float)])))
        self.theta = theta
        self.k = 0
        self.z: Any = None  # grid and density of the current look (arrays once advanced)
        self.dens: Any = None

    def first_cross(self, b):
        """P(Z_1 > b)."""

        return float(norm_cdf(self.theta * self.proc[0] - b))

    def advance(self, lo, hi) -> None:
        """Move to the next look's continuation region (lo, hi) of Z (the look self.k)."""
        k = self.k
        z, w = _grid(self.theta * self.incr[k], lo, hi)
        if k == 0:
            dens = w * np.exp(-0.5 * (z - self.theta * self.incr[0]) ** 2) / math.sqrt(2 * math.pi)
        else:
            s = self.incr[k]
            u = (z[:, None] * self.proc[k] - self.z[None, :] * self.proc[k - 1]) / s - self.theta * s
            dens = w * ((np.exp(-0.5 * u * u) / math.sqrt(2 * math.pi)) @ self.dens) * self.proc[k] / s
        self.z, self.dens = z, dens
        self.k = k + 1

    def cross(self, b, lower: bool = False):
        """P(continue to look self.k - 1, then cross ``b`` at look self.k): above b, or below if ``lower``."""

        k = self.k
        s = self.incr[k]
        u = (b * self.proc[k] - self.z * self.proc[k - 1]) / s - self.theta * s
        return float(self.dens @ (norm_cdf(u) if lower else norm_cdf(-u)))


def alpha_bounds(spend_t: Sequence[float] | np.ndarray, info: ArrayLike, alpha1: float, sides: int,
                 kind: str = "obf") -> np.ndarray:
    """Upper z boundaries at looks with spending fractions ``spend_t`` (cumulative, in (0, 1]) and
    information ``info`` (any scale); one-sided level ``alpha1``. Two-sided designs are symmetric.
    A look where less than 1e-9 is spent gets ZINF (RTSA's convention)."""

    cum = spend(alpha1, spend_t, kind)
    inc = np.diff(np.concatenate([[0.0], cum]))
    inc[0] = min(max(inc[0], 0.0), alpha1)
    n = len(spend_t)
    zb = np.empty(n)
    proc = _Process(info, 0.0)
    for i in range(n):
        a = min(max(inc[i], 0.0), 1.0)
        if i == 0:
            zb[0] = ZINF if a < TOL else -norm_ppf(a)
        elif a < TOL:
            zb[i] = ZINF
        else:
            zb[i] = _search(proc, a, zb[i - 1])
        if i < n - 1:
            proc.advance(-zb[i] if sides == 2 else -ZINF, zb[i])
    return zb


def _search(proc, a, previous, maxnn=50):
    """The z boundary at look ``proc.k`` that spends ``a``: RTSA's step search (``searchfunc``),
    followed step for step so that the boundaries agree with RTSA's. It stops once the probability
    is within 1e-9 of ``a``, so where almost nothing is spent (|z| above about 5) the boundary is
    approximate (by < 1%), in RTSA as here; no conclusion turns on such a boundary."""
    sp = proc.proc[proc.k]
    upper = previous * sp
    step = 10.0
    q = proc.cross(upper / sp)
    for _ in range(200):
        if abs(q - a) <= TOL:
            break
        if q > a + TOL:
            step /= 10
            for _ in range(maxnn):
                upper += step
                q = proc.cross(upper / sp)
                if q <= a + TOL:
                    break
        if q < a - TOL:
            step /= 10
            for _ in range(maxnn):
                upper -= step
                q = proc.cross(upper / sp)
                if q >= a - TOL:
                    break
    return upper / sp


def power(zb: np.ndarray, za: np.ndarray, info: ArrayLike, theta: float) -> float:
    """P(cross an upper boundary ``zb`` before leaving below ``za``) with drift ``theta``."""
    proc = _Process(info, theta)
    total = proc.first_cross(zb[0])
    for i in range(1, len(zb)):
        proc.advance(za[i - 1], zb[i - 1])
        total += proc.cross(zb[i])
    return total


def _root(f, lo, hi, tol=1e-13):
    """Root of an increasing ``f`` bracketed by (lo, hi): the Illinois variant of regula falsi
    (no SciPy optimiser import at start-up; converges superlinearly on these smooth curves)."""
    flo, fhi = f(lo), f(hi)
    side, x_old = 0, lo
    for _ in range(200):
        x = (lo * fhi - hi * flo) / (fhi - flo)
        fx = f(x)
        if fx == 0 or abs(x - x_old) < tol * max(1.0, abs(x)):
            return x
        x_old = x
        if fx > 0:
            hi, fhi = x, fx
            if side == -1:
                flo /= 2
            side = -1
        else:
            lo, flo = x, fx
            if side == 1:
                fhi /= 2
            side = 1
    return x


def inflation(timing: ArrayLike, zb: np.ndarray, za: np.ndarray, theta: float, beta: float) -> float:
    """RTSA's design root R: information R x RIS gives power 1 - beta with looks at ``timing`` x R."""
    timing = np.asarray(timing, float)
    g = lambda x: power(zb, za, timing * x, theta) - (1 - beta)  # noqa: E731
    lo, hi = 0.5, 1.5
    while g(hi) < 0:
        hi *= 1.5
    return _root(g, lo, hi)


def beta_bounds(inf_frac: ArrayLike, beta: float, zb: np.ndarray, theta: float, rm_bs: int = 0,
                design_R: float | None = None, warp_root: float | None = None) -> np.ndarray:
    """Non-binding futility boundaries by O'Brien-Fleming-type beta spending (RTSA's
    ``beta_boundary``): at each look the lower z boundary below which the probability of stopping,
    under the anticipated effect (drift ``theta`` at the RIS), is the beta spent there; the process
    continues between it and the alpha boundaries ``zb``. ``rm_bs`` looks at the start spend no beta
    (RTSA drops futility boundaries below zero and re-spends); ``warp_root`` scales the
    information (design), ``design_R`` gives the spending fractions as inf_frac / R (analysis).
    -ZINF marks a look without a futility boundary."""

    inf_frac = np.asarray(inf_frac, float)
    org = inf_frac * warp_root if warp_root is not None else inf_frac
    bt = inf_frac.copy()
    if design_R is not None:
        bt = inf_frac / design_R
        org = inf_frac if inf_frac.max() >= design_R else np.append(inf_frac, design_R)
        bt = np.append(bt[bt < 1], 1.0)
    if np.any(bt > 1):
        bt = np.append(bt[bt < 1], 1.0)
    nn = bt.size
    if rm_bs:
        bt = np.concatenate([np.zeros(rm_bs), bt[rm_bs:]])
    inc = np.diff(np.concatenate([[0.0], spend(beta, bt, "obf")]))
    proc = _Process(org, theta)
    za = np.empty(nn)
    a = min(max(inc[0], 0.0), beta)
    za[0] = -ZINF if a == 0 else 0.0 if a == beta else proc.proc[0] * theta + norm_ppf(a)
    for i in range(1, nn):
        proc.advance(za[i - 1], zb[i - 1])
        a = min(max(inc[i], 0.0), 1.0)
        if a < 1e-15:
            za[i] = -ZINF
        elif a == beta:
            za[i] = 0.0
        else:
            f = lambda b, a=a: proc.cross(b, lower=True) - a  # noqa: E731  (increasing in b)
            hi = zb[i]
            for _ in range(40):
                if f(hi) >= 0:
                    break
                hi += 1.0
            # if even a boundary far above cannot spend it, the rest of beta is spent here: meet zb
            za[i] = _root(f, -ZINF, hi, tol=1e-14) if f(hi) >= 0 else zb[i]
    return za


def futility_root(t: ArrayLike, zb: np.ndarray, theta: float, beta: float, rm_bs: int = 0) -> float | None:
    """Design inflation with futility: R where the last futility boundary meets the last alpha one."""
    g = lambda x: beta_bounds(t, beta, zb, theta, rm_bs=rm_bs, warp_root=x)[-1] - zb[-1]  # noqa: E731
    # Windows upwards from 0.9 as RTSA's uniroot calls do (far-off x can make the boundaries cross).
    lo = 0.9
    g_lo = g(lo)
    if g_lo > 0:
        return None
    for _ in range(60):
        hi = lo + 0.05
        g_hi = g(hi)
        if g_hi >= 0:
            return _root(g, lo, hi, tol=1e-12)
        lo = hi
    return None  # e.g. a single look, where all beta is spent at once (z = 0)


# --- required information size ---------------------------------------------------------------------

def required_information(alpha: float, beta: float, sides: int, diversity: float = 0.0,
                         control_risk: float | None = None, rrr: float | None = None, md: float | None = None,
                         sd: float | None = None) -> tuple[int, int]:
    """(fixed-design RIS, heterogeneity-adjusted RIS) in participants, both rounded up as RTSA does.

    Binary: ``control_risk`` and ``rrr`` (relative risk reduction; negative for an increase).
    Mean difference: ``md`` and ``sd`` (the SD of the outcome in each arm)."""

    zz = (norm_ppf(1 - alpha / sides) + norm_ppf(1 - beta)) ** 2
    if md is None:
        pc, rrr = cast(float, control_risk), cast(float, rrr)  # both given for binary data (tsa_table)
        if not 0 < pc < 1:
            raise InputError(f"control event proportion must lie in (0, 1), got {pc:g}", column="--control-risk")
        pi = pc * (1 - rrr)
        if not (0 < pc < 1 and 0 < pi < 1):
            raise InputError(f"control risk {pc:g} with relative risk reduction {rrr:g} gives an intervention "
                             f"risk {pi:g} outside (0, 1)", column="--rrr")
        p = (pc + pi) / 2
        nf = 4 * zz * p * (1 - p) / (pc - pi) ** 2
    else:
        if not md or not sd or sd <= 0:
            raise InputError("a mean-difference TSA needs a non-zero --md and a positive --sd", column="--md")
        nf = 4 * zz * sd**2 / md**2
    nf = math.ceil(nf)
    if not 0 <= diversity < 1:
        raise InputError(f"diversity D2 must lie in [0, 1), got {diversity:g}", column="--d2")
    return nf, math.ceil(nf / (1 - diversity))


# --- cumulative random-effects z --------------------------------------------------------------------

def cumulative_dl(yi: ArrayLike, vi: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DerSimonian-Laird pooled estimate, SE and tau^2 after each of the first 1..k studies."""
    yi = np.asarray(yi, float)
    vi = np.asarray(vi, float)
    k = yi.size
    est = np.empty(k)
    se = np.empty(k)
    tau2 = np.zeros(k)
    for j in range(1, k + 1):
        y, v = yi[:j], vi[:j]
        w = 1 / v
        sw = w.sum()
        mu = (w @ y) / sw
        t2 = 0.0
        if j > 1:
            q = w @ (y - mu) ** 2
            t2 = max(0.0, (q - (j - 1)) / (sw - (w @ w) / sw))
        wr = 1 / (v + t2)
        est[j - 1] = (wr @ y) / wr.sum()
        se[j - 1] = math.sqrt(1 / wr.sum())
        tau2[j - 1] = t2
    return est, se, tau2


def diversity(vi: ArrayLike, tau2: float) -> float:
    """D^2 = 1 - V_F / V_R (Wetterslev et al. 2009): variances of the common- and random-effects means."""
    vi = np.asarray(vi, float)
    if vi.size < 2 or tau2 <= 0:
        return 0.0
    return float(1 - (1 / np.sum(1 / vi)) / (1 / np.sum(1 / (vi + tau2))))


# --- results ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TsaTrial(_Record):
    """One trial in order: cumulative participants, cumulative z (estimate / SE on the analysis scale,
    so its sign is the measure's, not the benefit's), and the signed z boundaries that apply there
    (None where none applies; ``look`` says whether a monitoring look is taken at this trial)."""

    study: str
    information: int
    z: float
    boundary_benefit: float | None
    boundary_harm: float | None
    look: bool
    note: str | None = None
    futility: float | None = None  # benefit-side edge of the futility region (z; two-sided: |z| below it)


@dataclass(frozen=True)
class TsaResult(_Record):
    """A trial sequential analysis. Estimates on the analysis scale; information in participants."""

    measure: str
    scale: str
    method: str
    benefit: str
    sides: int
    alpha: float
    beta: float
    power: float
    spending: str
    inflate: bool
    anticipated_effect: float  # RRR (binary) or mean difference
    control_risk: float | None
    control_risk_source: str | None
    sd: float | None
    diversity: float
    diversity_source: str
    required_information_size_fixed: int
    required_information_size: int
    inflation_factor: float | None
    required_information_size_inflated: int | None
    accrued_information: int
    trials: tuple
    estimate: float | None
    se: float | None
    tau2: float | None
    ci_low: float | None
    ci_high: float | None
    adjusted_ci_low: float | None
    adjusted_ci_high: float | None
    conclusion: str
    crossed_at: str | None
    more_needed: int
    sentence: str
    final_boundary: float | None = None
    futility: bool = False
    notes: tuple = ()
    weights: str = "IV"  # common-effect weights at looks where tau^2 = 0: IV or MH (RTSA's default)
    arms: tuple = DEFAULT_LABELS  # names of the (experimental, control) arms
    study_labels: dict[str, str] = field(default_factory=dict)  # study id -> display name (named analyses)
    pool_model: str | None = None  # the model `hatmeta pool` uses for the same trials (for the text)
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = {k: _plain(getattr(self, k)) for k in self.__dataclass_fields__ if k != "extra"}
        if not self.futility:  # the futility key only when futility boundaries were asked for
            for row in out["trials"]:
                row.pop("futility", None)
        out.update(_plain(self.extra))
        return out

    def natural(self, x: float | None) -> float | None:
        return None if x is None else (math.exp(x) if self.scale == "log" else x)

    def label(self, study: str) -> str:
        """The display name of ``study`` (its id where no label is known)."""
        return self.study_labels.get(study, study)

    def summary(self) -> str:
        from .tsa_text import tsa_text

        return tsa_text(self)


# --- the analysis -----------------------------------------------------------------------------------

def _looks(timing, cap, keep_over):
    """RTSA's choice of looks: fractions ``timing`` (cumulative, of the RIS) below ``cap`` (the last
    appended at ``cap`` when ``keep_over``), dropping those that add 1% or less. Returns
    (fractions, index of the trial at each look or -1 for the appended final look)."""
    t = np.asarray(timing, float)
    idx = np.arange(t.size)
    if keep_over:  # analysis: looks below R, then R itself
        if t.size == 0 or t.max() != cap:
            sel = t < cap if (t.size and t.max() > cap) else np.ones(t.size, bool)
            t = np.concatenate([t[sel], [cap]])
            idx = np.concatenate([idx[sel], [-1]])
    else:  # design: trials up to the RIS
        sel = t <= 1
        t, idx = t[sel], idx[sel]
    if t.size > 1:
        inc = np.diff(np.concatenate([[0.0], t]))
        if np.any(inc <= STEP):
            keep = t > STEP
            t, idx = t[keep], idx[keep]
            inc = np.diff(np.concatenate([[0.0], t]))
            keep = inc > STEP
            t, idx = t[keep], idx[keep]
    return t, idx


def tsa(studies: Sequence[str], yi: ArrayLike, vi: ArrayLike, participants: ArrayLike, *, measure: str, scale: str,
        benefit: str = "lower", alpha: float = 0.05, beta: float = 0.2, sides: int = 2, spending: str = "obf",
        rrr: float | None = None, md: float | None = None, sd: float | None = None, control_risk: float | None = None,
        control_risk_source: str | None = None, d2: float | None = None, inflate: bool = True,
        notes: Sequence[str] = (), cumulative: Any = None, method: str = "DL", futility: bool = False,
        weights: str = "IV", arms: Sequence[str | None] | None = None, study_labels: Mapping[str, str] | None = None,
        pool_model: str | None = None) -> TsaResult:
    """Trial sequential analysis of studies in order (``yi``, ``vi`` on the analysis scale,
    ``participants`` per trial). ``rrr`` (binary) or ``md`` (+ ``sd``) is the anticipated effect,
    always given as a benefit (positive); ``d2`` a stated diversity (default: D^2 of the DL model).
    ``cumulative``: (estimates, SEs, tau^2) after each trial where not DL's; ``weights`` names the
    common-effect weights they used at tau^2 = 0. ``arms`` (experimental, control) and
    ``study_labels`` (id -> name) are for the text and plot. Returns a TsaResult."""

    if sides not in (1, 2):
        raise InputError(f"sides must be 1 or 2, got {sides}", column="--sides")
    if not 0 < alpha < 1:
        raise InputError(f"alpha must lie in (0, 1), got {alpha:g}", column="--alpha")
    if not 0 < beta < 1:
        raise InputError(f"power must lie in (0, 1), got {1 - beta:g}", column="--power")
    spending = spending.lower()
    if spending not in ("obf", "pocock"):
        raise InputError(f"unknown spending function {spending!r}; choose obf or pocock", column="--spending")
    yi = np.asarray(yi, float)
    vi = np.asarray(vi, float)
    n = np.asarray(participants, float)
    k = yi.size
    notes = list(notes)
    sign = -1.0 if benefit == "lower" else 1.0  # z in the benefit direction = sign * z
    study_labels = {str(sid): str(name) for sid, name in (study_labels or {}).items()}
    arms = tuple(a or d for a, d in zip(arms or (None, None), DEFAULT_LABELS))  # an unnamed arm: the neutral name

    if k:
        est, se, tau2 = cumulative_dl(yi, vi) if cumulative is None else map(np.asarray, cumulative)
        z = est / se
        div_est = diversity(vi, tau2[-1])
    else:
        est = se = tau2 = z = np.empty(0)
        div_est = 0.0
    if d2 is None:
        div, div_source = div_est, (f"D2 of the {method} random-effects model of the included trials"
                                    if k else "none (no trial): D2 = 0")
    else:
        div, div_source = float(d2), "stated"
    effect = md if md is not None else rrr
    nf, ris = required_information(alpha, beta, sides, div, control_risk=control_risk, rrr=rrr, md=md, sd=sd)
    theta = abs(norm_ppf(alpha / sides) + norm_ppf(beta))  # drift at the (inflated) RIS
    a1 = alpha / sides
    cum_n = np.cumsum(n)
    accrued = int(round(cum_n[-1])) if k else 0

    # Design: looks at the trials' fractions of the RIS (up to it), final look at the RIS.
    root = None
    if inflate and k:
        t_design, _ = _looks(cum_n / ris, 1.0, keep_over=False)
        if t_design.size == 0 or t_design[-1] < 1:
            t_design = np.concatenate([t_design, [1.0]])
        zb_d = alpha_bounds(t_design, t_design, a1, sides, spending)
        za_d = -zb_d if sides == 2 else np.full_like(zb_d, -ZINF)
        root = None
        if futility:  # RTSA's non-binding design: futility and alpha boundaries meet at the end
            root = futility_root(t_design, zb_d, theta, beta)
            if sides == 2 and root is not None:
                lb = beta_bounds(t_design, beta, zb_d, theta, warp_root=root)
                root = futility_root(t_design, zb_d, theta, beta, rm_bs=int(np.sum(lb < 0)))
            if root is None:
                futility = False
                notes.append("no futility boundaries: the design has a single look (every trial is past the "
                             "required information size)")
        if root is None:
            root = inflation(t_design, zb_d, za_d, theta, beta)
    elif inflate:
        notes.append("no trial yet: the inflation for a sequential design depends on when the looks will be "
                     "taken, so only the fixed-design required information size is given")
    cap = root if root is not None else 1.0
    ris_inflated = math.ceil(ris * root) if root is not None else None

    rows = []
    final_b = None
    zb = np.empty(0)
    look_idx = np.empty(0, int)
    if k:
        t_an, look_idx = _looks(cum_n / ris, cap, keep_over=True)
        spend_t = t_an / t_an.max() if t_an.max() > 1 else t_an
        zb = alpha_bounds(spend_t, t_an * cap, a1, sides, spending)
        final_b = float(zb[-1]) if look_idx[-1] == -1 or t_an[-1] >= cap else None
        bound_of = {int(i): float(b) for i, b in zip(look_idx, zb) if i >= 0}
        fut_of, final_f = {}, None
        if futility:
            fut = beta_bounds(t_an, beta, zb, theta, design_R=cap)
            if sides == 2:
                for _ in range(2):
                    fut = beta_bounds(t_an, beta, zb, theta, design_R=cap, rm_bs=int(np.sum(fut < 0)))
            fut = fut[:zb.size]
            if fut[-1] > zb[-1]:
                fut[-1] = zb[-1]
            fut_of = {int(i): float(f) for i, f in zip(look_idx, fut) if i >= 0 and abs(f) < ZINF}
            final_f = float(fut[-1]) if final_b is not None and abs(fut[-1]) < ZINF else None
        for i in range(k):
            b = bound_of.get(i)
            note = None
            if b is None:
                if cum_n[i] / ris >= cap:
                    b = final_b
                    note = "beyond the required information size: the final boundary applies"
                else:
                    note = "adds 1% or less of the required information: no look (RTSA's rule)"
            elif b >= ZINF:
                note = "no alpha spent yet at this information: no boundary"
                b = None
            ben = None if b is None else sign * b
            harm = None if (b is None or sides == 1) else -sign * b
            f = fut_of.get(i, final_f if (futility and i not in bound_of and cum_n[i] / ris >= cap) else None)
            rows.append(TsaTrial(study=str(studies[i]), information=int(round(cum_n[i])), z=float(z[i]),
                                 boundary_benefit=ben, boundary_harm=harm, look=i in bound_of, note=note,
                                 futility=None if f is None else sign * f))

    # Conclusion: the first look (or trial past the RIS) where z crosses a boundary.
    conclusion, crossed, crossed_n = "inconclusive", None, None
    for row in rows:
        zb_dir = sign * row.z
        if row.boundary_benefit is not None:
            b = abs(row.boundary_benefit)
            if zb_dir > b:
                conclusion, crossed, crossed_n = "benefit", row.study, row.information
                break
            if sides == 2 and zb_dir < -b:
                conclusion, crossed, crossed_n = "harm", row.study, row.information
                break
        if row.futility is not None:
            f = sign * row.futility  # inside the futility region: |z| < f (two-sided), z < f (one-sided)
            if (abs(zb_dir) < f) if sides == 2 else (zb_dir < f):
                conclusion, crossed, crossed_n = "futility", row.study, row.information
                break
    target = ris_inflated if ris_inflated is not None else ris
    if conclusion == "inconclusive" and k and accrued >= target:
        conclusion = "futility"
    more = 0 if conclusion != "inconclusive" else max(0, target - accrued)

    # TSA-adjusted CI at the last trial.
    adj_lo = adj_hi = ci_lo = ci_hi = None
    if k:
        zc = float(norm_ppf(1 - alpha / 2))
        ci_lo, ci_hi = est[-1] - zc * se[-1], est[-1] + zc * se[-1]
        last_b = None
        for row in reversed(rows):
            if row.boundary_benefit is not None:
                last_b = abs(row.boundary_benefit)
                break
        if last_b is not None:
            adj_lo, adj_hi = est[-1] - last_b * se[-1], est[-1] + last_b * se[-1]
        else:
            notes.append("no boundary has been reached yet (too little information): the TSA-adjusted CI is "
                         "unbounded")
            adj_lo, adj_hi = -math.inf, math.inf

    what = "benefit" if conclusion == "benefit" else "harm"
    if conclusion == "futility" and crossed is not None:
        sentence = (f"Futility: the cumulative z-curve crosses the futility boundary at {crossed_n:,} participants "
                    f"({study_labels.get(crossed, crossed)}); an effect of the anticipated size is unlikely.")
    elif conclusion in ("benefit", "harm"):  # crossed is set (a boundary was crossed); mypy cannot see it
        sentence = (f"Firm evidence of {what}: the cumulative z-curve crosses the monitoring boundary for "
                    f"{what} at {crossed_n:,} participants ({study_labels.get(crossed, crossed)}).")  # type: ignore[arg-type]
    elif conclusion == "futility":
        sentence = (f"Futility: the required information size ({target:,}) is reached ({accrued:,} participants) "
                    f"without the z-curve crossing a boundary for benefit or harm; an effect of the anticipated "
                    f"size is unlikely.")
    elif not k:
        sentence = (f"No information has accrued (no trial reports this outcome by arm): the required "
                    f"information size is {target:,} participants.")
    else:
        sentence = (f"Not yet conclusive: {accrued:,} of {target:,} participants accrued; "
                    f"{more:,} more needed.")
    return TsaResult(
        measure=measure, scale=scale, method=method, benefit=benefit, sides=sides, alpha=alpha, beta=beta,
        power=1 - beta, spending=spending, inflate=inflate, anticipated_effect=float(cast(float, effect)),
        control_risk=None if control_risk is None else float(control_risk), control_risk_source=control_risk_source,
        sd=None if sd is None else float(sd), diversity=float(div), diversity_source=div_source,
        required_information_size_fixed=int(nf), required_information_size=int(ris),
        inflation_factor=None if root is None else float(root),
        required_information_size_inflated=ris_inflated, accrued_information=accrued, trials=tuple(rows),
        estimate=float(est[-1]) if k else None, se=float(se[-1]) if k else None,
        tau2=float(tau2[-1]) if k else None, ci_low=ci_lo, ci_high=ci_hi,
        adjusted_ci_low=adj_lo, adjusted_ci_high=adj_hi, conclusion=conclusion, crossed_at=crossed,
        more_needed=int(more), sentence=sentence, final_boundary=final_b, futility=bool(futility),
        notes=tuple(notes), weights=weights, arms=arms, study_labels=study_labels, pool_model=pool_model)


# --- from a trial table ------------------------------------------------------------------------------

BINARY = ("RR", "OR", "RD")
SUPPORTED = BINARY + ("MD", "SMD")


def _order(table, order):
    """Positions of the rows in TSA order: by column ``order`` (numeric where it parses, stable),
    or by 'year' where the table has it, else as given. Returns (positions, description)."""
    col = order or ("year" if "year" in table.extra else None)
    if col is None:
        return np.arange(table.k), "as listed"
    if col not in table.extra:
        raise InputError(f"no column {col!r} to order the trials by; columns: "
                         + ", ".join(sorted(table.extra)), file=table.path, column="--order")
    values = table.extra[col]

    def key(i):
        try:
            return (0, float(values[i]), "")
        except (TypeError, ValueError):
            return (1, 0.0, str(values[i]))

    return np.array(sorted(range(table.k), key=key), dtype=int), f"by {col}"


def tsa_table(table: TrialTable | None, measure: str, *, benefit: str = "lower", rrr: float | None = None,
              md: float | None = None, sd: float | None = None, control_risk: float | None = None,
              d2: float | None = None, alpha: float = 0.05, power: float = 0.8, sides: int = 2, spending: str = "obf",
              inflate: bool = True, order: str | None = None, method: str = "DL", cc: float = 0.5,
              notes: Sequence[str] = (), futility: bool = False, weights: str = "IV",
              arms: Sequence[str | None] | None = None, study_labels: Mapping[str, str] | None = None,
              pool_model: str | None = None) -> TsaResult:
    """TSA of a TrialTable (binary or continuous arm data) in trial order.

    ``rrr``: anticipated relative risk reduction in the benefit direction (for ``benefit='higher'`` a
    relative risk increase, e.g. 0.2 for RR 1.2); ``md``: anticipated mean difference (its size is
    used) with ``sd`` the outcome SD per arm (default: the pooled SD of the trials' arms).
    ``control_risk`` defaults to the pooled control-arm proportion of the included trials. ``method``
    is the random-effects tau^2 estimator of the z-curve and D^2 (DL as the TSA program and RTSA).
    ``weights``: the common-effect weights at looks where tau^2 = 0, "IV" (inverse variance, the
    default: the DL model's own at tau^2 = 0, as the TSA program) or "MH" (Mantel-Haenszel, RTSA's
    default; binary measures, RR and OR validated against RTSA 0.2.2). ``arms``: names of the
    (experimental, control) arms (default "experimental", "control"); ``study_labels``: study id ->
    display name; ``pool_model``: how `hatmeta pool` models the same trials (named in the text)."""
    from ..fit.effects import escalc, normalise_measure

    measure = normalise_measure(measure)
    if measure not in SUPPORTED:
        raise InputError(f"TSA needs a binary (RR, OR, RD) or continuous (MD, SMD) measure, not {measure}",
                         column="--measure")
    if table is not None and table.layout not in ("binary", "continuous"):
        raise InputError("TSA needs arm-level counts or means (participants per arm give the information)",
                         file=table.path, column="--data")
    notes = list(notes)
    binary = measure in BINARY
    weights = str(weights).upper()
    if weights not in ("IV", "MH"):
        raise InputError(f"unknown weights {weights!r}; choose IV (inverse variance) or MH (Mantel-Haenszel)",
                         column="--weights")
    if weights == "MH" and not binary:
        notes.append(f"Mantel-Haenszel weights are for binary outcomes: the {measure} z-curve uses "
                     "inverse-variance weights (as RTSA)")
        weights = "IV"
    if binary and rrr is None:
        raise InputError("state the anticipated effect: --rrr (relative risk reduction, or for an outcome where "
                         "higher favours the intervention --rri, relative risk increase)", column="--rrr")
    if not binary and md is None:
        raise InputError("state the anticipated effect: --md (mean difference)", column="--md")
    if binary and benefit == "higher":
        assert rrr is not None  # required above for binary data
        rrr = -rrr  # an increase: intervention risk = control risk x (1 + rri)
    studies: Sequence[str]
    studies, yi, vi, n, cum = (), np.empty(0), np.empty(0), np.empty(0), None
    source = None
    if table is not None and table.k:
        pos, how = _order(table, order)
        table = table.subset(pos)
        es = escalc(table, measure, cc=cc)
        for study, reason in es.dropped:
            notes.append(f"{study} left out: {reason} (no information on the {measure})")
        kept = es.table
        c = kept.columns
        studies, yi, vi = kept.studies, es.yi, es.vi
        n = c["n_treat"] + c["n_ctrl"]
        notes.insert(0, f"trials in order {how}")
        if binary and control_risk is None and len(studies):
            control_risk = float(c["events_ctrl"].sum() / c["n_ctrl"].sum())
            source = f"pooled control-arm proportion of the {len(studies)} included trials"
        if not binary and sd is None and len(studies):
            dof = np.concatenate([c["n_treat"] - 1, c["n_ctrl"] - 1])
            var = np.concatenate([c["sd_treat"], c["sd_ctrl"]]) ** 2
            sd = float(math.sqrt((dof @ var) / dof.sum()))
            notes.append(f"SD {sd:.4g}: pooled SD of the trials' arms")
        if method.upper() != "DL" and len(studies) > 1:
            from ..fit.models import rma

            fits = [rma(es.subset(np.arange(j)), method="FE" if j == 1 else method) for j in range(1, len(studies) + 1)]
            cum = ([f.estimate for f in fits], [f.se for f in fits], [f.tau2 if j else 0.0 for j, f in enumerate(fits)])
        if weights == "MH" and len(studies):
            cum = _mh_where_common(es, *(cum if cum is not None else cumulative_dl(yi, vi)))
    if measure == "SMD":
        sd = 1.0  # the SMD is in SD units
    if binary and control_risk is None:
        raise InputError("no trial gives a control-arm risk: state --control-risk", column="--control-risk")
    if binary and source is None:
        source = "stated"
    scale = "log" if measure in ("RR", "OR") else "identity"
    return tsa(studies, yi, vi, n, measure=measure, scale=scale, benefit=benefit, alpha=alpha, beta=1 - power,
               sides=sides, spending=spending, rrr=rrr if binary else None, md=None if binary else abs(cast(float, md)),
               sd=None if binary else sd, control_risk=control_risk if binary else None,
               control_risk_source=source if binary else None, d2=d2, inflate=inflate, notes=notes,
               cumulative=cum, method=method.upper(), futility=futility, weights=weights, arms=arms,
               study_labels=study_labels, pool_model=pool_model)


def _mh_where_common(es, est, se, tau2):
    """Cumulative (estimates, SEs, tau^2) with the Mantel-Haenszel estimate and SE at each look whose
    random-effects tau^2 is 0 (the first trial included), as RTSA's ``synthesize`` with
    ``weights = "MH"``: its z_random falls back to the MH z_fixed when tau^2 = 0. The zero-cell
    increment escalc added is kept (RTSA's metaPrepare adds 0.5 to such trials before MH too)."""
    from ..fit.models import mh_estimate

    est, se, tau2 = (np.array(x, dtype=float) for x in (est, se, tau2))
    for j in np.flatnonzero(tau2 <= 0):
        est[j], se[j] = mh_estimate(es.subset(np.arange(j + 1)), corrected=True)
    return est, se, tau2


# --- analysis specs ---------------------------------------------------------------------------------


def merge_settings(settings: Mapping[str, Any], given: Mapping[str, Any], benefit: str | None, measure: str,
                   analysis: str | None = None, has_table: bool = True) -> dict[str, Any]:
    """The spec's [tsa] settings overridden by ``given`` (None = not given), as keyword arguments of
    ``tsa_table``: a relative risk increase (``rri``) becomes a negative-direction ``rrr``."""
    settings = dict(settings)
    given = {k: v for k, v in given.items() if v is not None}
    if "rrr" in given and "rri" in given:
        raise InputError("give --rrr or --rri, not both", column="--rri")
    if "rrr" in given or "rri" in given:
        settings.pop("rrr", None)
        settings.pop("rri", None)
    settings.update(given)
    settings.pop("reason", None)
    effect = settings.pop("rri", None)
    if effect is not None:
        if not (math.isfinite(effect) and effect > 0):
            raise InputError(f"must be a relative risk increase above 0 (0.2 for 20%), got {effect:g}",
                             column="--rri")
        if benefit != "higher":
            raise InputError("--rri is for outcomes where higher favours the intervention; use --rrr",
                             column="--rri")
        settings["rrr"] = effect
    elif settings.get("rrr") is not None and benefit == "higher":
        raise InputError("higher values favour the intervention here: state the effect as --rri "
                         "(relative risk increase)", column="--rrr")
    if analysis and settings.get("rrr") is None and settings.get("md") is None:
        flag = "--md" if measure.upper() in ("MD", "SMD") else "--rri" if benefit == "higher" else "--rrr"
        raise InputError(f"analysis {analysis!r} states no anticipated effect (no [tsa] table in its spec): "
                         f"give {flag}" + ("" if has_table else " and --control-risk"), column=flag)
    return settings
