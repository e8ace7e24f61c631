"""The log hazard ratio and its variance from what trial reports give, after Parmar, Torri & Stewart (1998)
(Stat Med 17:2815-2834) and Tierney, Stewart, Ghersi, Burdett & Sydes (2007) (Trials 8:16), whose spreadsheet
carries out the same steps. Equation numbers are Parmar et al.'s.

- the log-rank O - E and its variance V: log HR = (O - E) / V, var = 1 / V (eqs. 4 and 6); or the observed
  and expected events per arm: log HR = log((O_t / E_t) / (O_c / E_c)), var = 1 / E_t + 1 / E_c (eqs. 3, 5);
- a reported HR with its CI: log HR, var = ((log upper - log lower) / (2 z))^2 (eq. 7); V = 1 / var and
  O - E = log HR / var as Tierney et al. give them for pooling by O - E and V;
- a log-rank p-value with the events: V = O_t O_c / (O_t + O_c) from the events per arm (eq. 12; Tierney's
  eq. 14), or from the total events O and the numbers randomised, V = O n_t n_c / (n_t + n_c)^2 (eq. 11),
  O / 4 with equal allocation (eq. 8); then O - E = sign * sqrt(V) * z_{1 - p/2} (eqs. 10, 13, 14; a one-sided
  p without halving) and log HR = (O - E) / V, var = 1 / V. The p-value carries no direction: the sign
  (-1 when the research arm had fewer events than expected, HR < 1) must be given.

Every result gives ``log_hr``, ``se`` (analysis scale: log), ``hr`` and the O - E and V it implies.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import InputError
from .conversions import Converted, _num, se_from

PARMAR = "Parmar et al. (1998) Stat Med 17:2815"
TIERNEY = "Tierney et al. (2007) Trials 8:16"


def _result(log_hr: float, var: float, method: str, source: str, notes: tuple[str, ...] = ()) -> Converted:
    return Converted({"log_hr": log_hr, "se": math.sqrt(var), "hr": math.exp(log_hr), "o_minus_e": log_hr / var,
                      "v": 1 / var}, method, source, notes)


def log_hr_from_oe(o_minus_e: Any = None, v: Any = None, observed_treat: Any = None, expected_treat: Any = None,
                   observed_ctrl: Any = None, expected_ctrl: Any = None) -> Converted:
    """Log HR (research vs control arm) from the log-rank O - E and V (Parmar eqs. 4, 6), or from observed and
    expected events per arm (eqs. 3, 5).

    Parameters
    ----------
    o_minus_e, v : the research arm's observed minus expected events and the log-rank variance.
    observed_treat, expected_treat, observed_ctrl, expected_ctrl : events per arm (used when O - E and V are not
        both given).

    Returns
    -------
    Converted with ``log_hr``, ``se`` (log scale), ``hr``, ``o_minus_e`` and ``v``.
    """
    oe, vv = _num(o_minus_e, "o_minus_e"), _num(v, "v")
    if oe is not None and vv is not None:
        if vv <= 0:
            raise InputError(f"the log-rank variance V must be positive, got {vv:g}", column="v")
        return _result(oe / vv, 1 / vv, "log HR from log-rank O - E and V", f"{PARMAR} eqs. 4, 6; {TIERNEY}")
    ot, et, oc, ec = (_num(x, k) for x, k in ((observed_treat, "observed_treat"), (expected_treat, "expected_treat"),
                                              (observed_ctrl, "observed_ctrl"), (expected_ctrl, "expected_ctrl")))
    if None in (ot, et, oc, ec):
        raise InputError("give o_minus_e and v, or observed and expected events in both arms", column="o_minus_e")
    for name, x in (("observed_treat", ot), ("expected_treat", et), ("observed_ctrl", oc), ("expected_ctrl", ec)):
        if x <= 0:
            raise InputError(f"{name} must be positive, got {x:g}", column=name)
    return _result(math.log((ot / et) / (oc / ec)), 1 / et + 1 / ec, "log HR from observed and expected events",
                   f"{PARMAR} eqs. 3, 5")


def log_hr_from_ci(hr: Any, ci_low: Any, ci_high: Any, level: float = 0.95) -> Converted:
    """Log HR and its variance from a reported HR and CI (Parmar eq. 7; the CI's width on the log scale).

    Parameters
    ----------
    hr, ci_low, ci_high : the HR and its CI limits (natural scale, positive).
    level : the CI's level.

    Returns
    -------
    Converted with ``log_hr``, ``se`` (log scale), ``hr``, ``o_minus_e`` and ``v`` (Tierney et al.'s V = 1 / var).
    """
    h, lo, hi = _num(hr, "hr"), _num(ci_low, "ci_low"), _num(ci_high, "ci_high")
    if None in (h, lo, hi):
        raise InputError("give hr, ci_low and ci_high", column="hr")
    if not lo <= h <= hi:
        raise InputError(f"hr = {h:g} lies outside its CI ({lo:g}, {hi:g})", column="hr")
    if lo == hi:
        raise InputError("ci_low equals ci_high: no width to take a variance from", column="ci_low")
    s = se_from(h, lo, hi, level=level, log=True).values["se"]  # positivity checked there
    notes: tuple[str, ...] = ()
    mid = math.sqrt(lo * hi)
    if abs(math.log(h / mid)) > 0.1 * (math.log(hi) - math.log(lo)):
        notes = (f"hr = {h:g} is off the CI's geometric midpoint {mid:.4g}: the CI may not be a Wald CI on the log "
                 "scale, or the numbers are rounded",)
    return _result(math.log(h), s * s, f"log HR from the HR and its {100 * level:g}% CI", f"{PARMAR} eq. 7; {TIERNEY}",
                   notes)


def log_hr_from_p(p: Any, sign: Any, events_treat: Any = None, events_ctrl: Any = None, events: Any = None,
                  n_treat: Any = None, n_ctrl: Any = None, sides: int = 2) -> Converted:
    """Log HR and its variance from a log-rank p-value and the numbers of events (Parmar section 4.3; Tierney
    et al.'s method from the p-value and events).

    Parameters
    ----------
    p : the log-rank p-value (two-sided unless ``sides = 1``).
    sign : -1 if the research arm did better (fewer events than expected, HR < 1), +1 if worse.
    events_treat, events_ctrl : events per arm (V = O_t O_c / (O_t + O_c), eq. 12); or
    events : total events, with ``n_treat`` and ``n_ctrl`` randomised (eq. 11) or without them equal allocation
        (V = O / 4, eq. 8).
    sides : 2 (the p-value is halved) or 1.

    Returns
    -------
    Converted with ``log_hr``, ``se`` (log scale), ``hr``, ``o_minus_e`` and ``v``.
    """
    from statistics import NormalDist

    pv, sg = _num(p, "p"), _num(sign, "sign")
    if pv is None or not 0 < pv < 1:
        raise InputError(f"p must lie strictly between 0 and 1, got {p!r}", column="p")
    if sg is None or sg == 0:
        raise InputError("a p-value has no direction: give sign (-1 if the research arm had fewer events than "
                         "expected, HR < 1; +1 if more)", column="sign")
    if sides not in (1, 2):
        raise InputError(f"sides must be 1 or 2, got {sides}", column="sides")
    ot, oc, o = _num(events_treat, "events_treat"), _num(events_ctrl, "events_ctrl"), _num(events, "events")
    nt, nc = _num(n_treat, "n_treat"), _num(n_ctrl, "n_ctrl")
    for name, x in (("events_treat", ot), ("events_ctrl", oc), ("events", o), ("n_treat", nt), ("n_ctrl", nc)):
        if x is not None and x <= 0:
            raise InputError(f"{name} must be positive, got {x:g}", column=name)
    if ot is not None and oc is not None:
        if o is not None and abs(o - (ot + oc)) > 1e-9 * o:
            raise InputError(f"events = {o:g} is not events_treat + events_ctrl = {ot + oc:g}", column="events")
        var_v, how, eq = ot * oc / (ot + oc), "events per arm", "eq. 12"
    elif o is not None and nt is not None and nc is not None:
        var_v, how, eq = o * nt * nc / (nt + nc) ** 2, "total events and numbers randomised", "eq. 11"
    elif o is not None:
        if nt is not None or nc is not None:
            raise InputError("give both n_treat and n_ctrl, or neither (equal allocation)", column="n_treat")
        var_v, how, eq = o / 4, "total events, equal allocation", "eq. 8"
    else:
        raise InputError("give events_treat and events_ctrl, or the total events", column="events_treat")
    z = NormalDist().inv_cdf(1 - pv / sides)
    oe = math.copysign(1.0, sg) * math.sqrt(var_v) * z
    return _result(oe / var_v, 1 / var_v, f"log HR from a {'two' if sides == 2 else 'one'}-sided log-rank p and {how}",
                   f"{PARMAR} {eq}, 10-14; {TIERNEY}")
