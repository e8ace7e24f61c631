"""Priors for the heterogeneity tau (the between-trial SD, analysis scale).

Text forms (the CLI's ``--tau-prior``):
  halfnormal:S      half-normal on tau with scale S (default S = 0.5 for log ratios)
  halfcauchy:S      half-Cauchy on tau with scale S
  uniform:A         uniform on tau over [0, A]
  lognormal:M,S     log-normal on tau^2: log(tau^2) ~ N(M, S^2)
  turner:OUTCOME/COMPARISON   Turner et al. 2015's empirical log-normal prior on tau^2 (Table IV);
                    ``turner:marginal`` is their prior for a general setting. Names: turner_names().
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

DEFAULT = "halfnormal:0.5"


@dataclass(frozen=True)
class TauPrior:
    """A prior density on tau >= 0. ``kind``: halfnormal, halfcauchy, uniform or lognormal (on tau^2)."""

    kind: str
    params: tuple[float, ...]
    text: str
    source: str = ""

    def logpdf(self, tau: ArrayLike) -> np.ndarray:
        """Log density of tau (vectorised; -inf outside the support)."""
        tau = np.asarray(tau, float)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.kind == "halfnormal":
                (s,) = self.params
                out = math.log(2) - 0.5 * math.log(2 * math.pi) - math.log(s) - 0.5 * (tau / s) ** 2
            elif self.kind == "halfcauchy":
                (s,) = self.params
                out = math.log(2 / (math.pi * s)) - np.log1p((tau / s) ** 2)
            elif self.kind == "uniform":
                (a,) = self.params
                out = np.where(tau <= a, -math.log(a), -np.inf)
            else:  # log-normal on tau^2, transformed to tau: p(tau) = p(tau^2) * 2 tau
                m, s = self.params
                t2 = tau**2
                out = (math.log(2) + np.log(tau) - np.log(t2) - math.log(s) - 0.5 * math.log(2 * math.pi)
                       - 0.5 * ((np.log(t2) - m) / s) ** 2)
                out = np.where(tau > 0, out, -np.inf)
        return np.where(tau >= 0, out, -np.inf)

    def pdf(self, tau: ArrayLike) -> np.ndarray:
        out: np.ndarray = np.exp(self.logpdf(tau))
        return out

    def upper(self) -> float:
        """A tau beyond which the prior has negligible mass (for integration bounds)."""
        if self.kind == "halfnormal":
            return 12 * self.params[0]
        if self.kind == "halfcauchy":
            return 1e4 * self.params[0]
        if self.kind == "uniform":
            return self.params[0]
        m, s = self.params
        return math.exp(0.5 * (m + 12 * s))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tau_prior": self.text, "kind": self.kind, "params": list(self.params)}
        if self.kind == "lognormal":
            out["scale"] = "log(tau^2) ~ N(mu, sigma^2)"
        if self.source:
            out["source"] = self.source
        return out


@lru_cache(maxsize=1)
def _turner() -> dict[str, Any]:
    table: dict[str, Any] = json.loads((Path(__file__).with_name("turner2015.json")).read_text())
    return table


def _slug(text: str) -> str:
    """'pharmacological vs. placebo / control' -> 'pharmacological-vs-placebo-control'."""
    import re

    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def turner_names() -> list[str]:
    """Names accepted after 'turner:' (outcome/comparison), plus 'marginal'."""
    return ["marginal"] + sorted(f"{_slug(r['outcome'])}/{_slug(r['comparison'])}" for r in _turner()["rows"])


def parse_tau_prior(text: str | None) -> TauPrior:
    """A TauPrior from its text form; InputError naming --tau-prior on a mistake."""
    text = str(text or DEFAULT).strip()
    kind, _, rest = text.partition(":")
    kind = kind.lower()

    def numbers(n: int) -> tuple[float, ...]:
        try:
            vals = tuple(float(x) for x in rest.split(","))
        except ValueError:
            vals = ()
        if len(vals) != n or not all(math.isfinite(v) for v in vals):
            raise InputError(f"{kind} needs {n} number{'s' if n > 1 else ''} after ':', got {rest!r}",
                             column="--tau-prior")
        return vals

    if kind in ("halfnormal", "halfcauchy", "uniform"):
        vals = numbers(1)
        if vals[0] <= 0:
            raise InputError(f"{kind} scale must be positive, got {vals[0]:g}", column="--tau-prior")
        return TauPrior(kind, vals, text)
    if kind == "lognormal":
        m, s = numbers(2)
        if s <= 0:
            raise InputError(f"lognormal sigma must be positive, got {s:g}", column="--tau-prior")
        return TauPrior("lognormal", (m, s), text)
    if kind == "turner":
        data = _turner()
        key = rest.strip().lower()
        if key == "marginal":
            p = data["marginal"]
        else:
            match = [r for r in data["rows"] if f"{_slug(r['outcome'])}/{_slug(r['comparison'])}" == key]
            if not match:
                # 80 names are too many for one line: name the two parts, and the nearest full names.
                outcomes = sorted({_slug(r["outcome"]) for r in data["rows"]})
                comparisons = sorted({_slug(r["comparison"]) for r in data["rows"]})
                near = difflib.get_close_matches(key, turner_names(), n=3, cutoff=0.5)
                raise InputError(f"unknown Turner prior {rest!r}; give turner:marginal or turner:OUTCOME/COMPARISON"
                                 + (f" (nearest: {', '.join(near)})" if near else "")
                                 + f", OUTCOME one of {', '.join(outcomes)}; COMPARISON one of "
                                 + ", ".join(comparisons), column="--tau-prior")
            p = match[0]
        return TauPrior("lognormal", (float(p["mu"]), float(p["sigma"])), text, source=data["source"])
    raise InputError(f"unknown tau prior {text!r}; use halfnormal:S, halfcauchy:S, uniform:A, lognormal:M,S "
                     "or turner:NAME", column="--tau-prior")
