"""Bayesian network meta-analysis by MCMC (PyMC): the NICE DSU generalised linear models.

Models (Dias, Welton, Sutton & Ades, NICE DSU Technical Support Document 2, 2011, last updated
2016, "TSD2"; Dias et al., TSD4 on inconsistency, 2011, updated 2014, "TSD4"):

- likelihoods: binomial with a logit link for arm-level events (``study, treatment, events, n``):
  r_ik ~ Bin(n_ik, p_ik), logit(p_ik) = mu_i + delta_i,bk (TSD2 programs 1-2); normal for
  arm-level means (``study, treatment, mean, sd, n``): y_ik ~ N(theta_ik, se_ik^2),
  theta_ik = mu_i + delta_i,bk, se = sd / sqrt(n) (TSD2 program 5); normal for contrast-level
  data (``study, treat1, treat2, yi, se``): the differences of a study's arms from its baseline
  arm b are multivariate normal around delta_i, with variances se_bk^2 and, in a multi-arm study,
  covariance V_i, the variance of the baseline arm (TSD2 program 7). hatmeta's contrast table
  gives every pair of a multi-arm study's arms (as netmeta's ``pairwise()``), so V_i is found from
  the pairs: V_i = (se_bk^2 + se_bl^2 - se_kl^2) / 2. Study baselines mu_i ~ N(0, 100^2).
- consistency model: delta_i,bk ~ N(d_k - d_b, tau^2), d_reference = 0, d_k ~ N(0, 100^2)
  (TSD2). In a multi-arm study the random effects correlate 1/2 (shared heterogeneity): TSD2's
  conditional formulation, delta_i,k given delta_i,2..k-1 normal with mean
  d_bk + mean_j<k(delta_i,j - d_bj) and variance tau^2 k / (2 (k - 1)), is the sequence of
  conditionals of the multivariate normal with covariance tau^2 (I + J) / 2, sampled here as
  delta = (d_k - d_b) + tau L z, L that covariance's Cholesky factor and z standard normal (each
  row of L is one of TSD2's conditionals). Common effect: delta_i,bk = d_k - d_b.
- unrelated mean effects (UME, TSD4 section 3): one parameter d_bk ~ N(0, 100^2) per comparison
  of a study's baseline with another of its arms; no consistency relation. A study's baseline is
  its arm earliest in the treatment order (the reference first, then R's sort order of names).
  Under random effects the multi-arm correlation 1/2 is kept by default (``ume_multiarm=
  "correlated"``); TSD4's printed analyses draw a multi-arm study's random effects independently
  (``ume_multiarm="independent"``).
- heterogeneity: tau ~ U(0, 5), TSD2's default, or any ``hatmeta.bayes.priors`` form, e.g.
  Turner et al. 2015's log-normal on tau^2 (``turner:NAME``).

Outputs: posterior mean, median, SD and equal-tailed interval of every effect against the
reference and of every pair (consistency), of every comparison parameter (UME), of tau; rank
probabilities and SUCRA (Salanti, Ades & Ioannidis 2011: the mean of the cumulative rank
probabilities over ranks 1..T-1); the residual deviance per data point and in total
(``totresdev``, TSD2: 2 sum[r log(r / rhat) + (n - r) log((n - r) / (n - rhat))] for binomial data,
(y - theta)^2 / se^2 for normal, (y - delta)' Sigma^-1 (y - delta) per contrast-level study);
DIC = Dbar + pD with pD = Dbar - Dhat, Dhat the deviance at the posterior mean of the linear
predictor (WinBUGS's plug-in, which TSD2's printed values use; ``_plugin_deviance``), and
pV = var(D) / 2 as an alternative; PSIS-LOO (Vehtari, Gelman & Gabry 2017, ArviZ's
``loo``) over the same data points (contrast-level: studies). Fitted values are kept as
deterministic nodes, and the deviance is computed from the draws after sampling.

Sampling, seeding and diagnostics are ``hatmeta.bayes.mcmc``'s (NUTS, seeded, R-hat and bulk ESS
over d and tau, warnings when they are not met). Everything is on the analysis scale (log odds
ratios for OR).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..io.network_table import NetworkTable, components, r_order, read_network
from .mcmc import MIN_DRAWS, _summary, _tau, diagnose, pymc_session, sample
from .priors import TauPrior, parse_tau_prior

if TYPE_CHECKING:
    import pandas as pd

    from ..io.network_table import NetworkSource

MODELS = ("consistency", "ume")
DEFAULT_TAU_PRIOR = "uniform:5"  # TSD2's tau ~ U(0, 5)
VAGUE_SD = 100.0  # TSD2: mu_i, d_k ~ N(0, 100^2)
TOL_MULTIARM = 0.001  # a multi-arm study's given contrasts must agree (netmeta's tol.multiarm)
PARETO_K_BAD = 0.7  # PSIS-LOO is unreliable for data points with a larger Pareto k (Vehtari et al. 2017)


# ------------------------------------------------------------------------------------- data

@dataclass(frozen=True)
class _Data:
    """A network laid out for the model. Contrasts c (one per non-baseline arm, or per given
    difference from the baseline) carry their study, baseline treatment and treatment; the arm
    arrays (arm-level likelihoods) map each arm to its study and to its contrast (-1: baseline)."""

    likelihood: str  # "binomial", "normal" (arm means) or "contrast"
    treatments: tuple[str, ...]
    studies: tuple[str, ...]
    c_study: np.ndarray
    c_base: np.ndarray
    c_trt: np.ndarray
    blocks: tuple[tuple[int, int], ...]  # per study: (first contrast, number of contrasts)
    arm_study: np.ndarray = field(default_factory=lambda: np.empty(0, np.intp))
    arm_contrast: np.ndarray = field(default_factory=lambda: np.empty(0, np.intp))
    arm_trt: np.ndarray = field(default_factory=lambda: np.empty(0, np.intp))
    r: np.ndarray = field(default_factory=lambda: np.empty(0))
    n: np.ndarray = field(default_factory=lambda: np.empty(0))
    y: np.ndarray = field(default_factory=lambda: np.empty(0))  # arm means or contrasts
    se: np.ndarray = field(default_factory=lambda: np.empty(0))  # arm SEs
    cov: tuple[np.ndarray, ...] = ()  # contrast-level: each study's covariance of its contrasts
    path: str = "<table>"

    @property
    def arm_level(self) -> bool:
        return self.likelihood != "contrast"

    def points(self) -> list[dict[str, str]]:
        """The data points of the deviance and LOO: arms (arm-level) or studies (contrast-level)."""
        t, s = self.treatments, self.studies
        if self.arm_level:
            return [{"study": s[i], "treatment": t[k]} for i, k in zip(self.arm_study, self.arm_trt)]
        return [{"study": s[i]} for i in range(len(s))]

    @property
    def n_data(self) -> int:
        """TSD2's number of data points: arms, or contrasts for contrast-level data."""
        return int(self.arm_study.size if self.arm_level else self.c_study.size)


def _order(names: set[str], reference: str | None, path: str) -> tuple[str, ...]:
    ordered = sorted(names, key=r_order)
    if reference is None:
        reference = ordered[0]
    if reference not in names:
        raise InputError(f"treatment {reference!r} is not in the network; treatments are: " + ", ".join(ordered),
                         option="--reference")
    return (reference, *[t for t in ordered if t != reference])


def prepare(table: NetworkTable, measure: str, reference: str | None = None) -> _Data:
    """Lay a network table out for the model (conventions in the module docstring); InputError
    for a measure the table cannot give, a one-arm study, a multi-arm contrast-level study
    without every pair or with contrasts that disagree, or a disconnected network."""
    measure = str(measure).strip().upper()
    allowed = {"arm_binary": ("OR",), "arm_continuous": ("MD",)}.get(table.layout)
    if allowed is not None and measure not in allowed:
        what = "events" if table.layout == "arm_binary" else "means"
        raise InputError(f"the Bayesian network model of {what} per arm is on the "
                         f"{'log odds ratio (binomial, logit link)' if what == 'events' else 'mean difference'}"
                         f" scale: use --measure {allowed[0]}", option="--measure")
    study = table.text["study"]
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(study):
        groups.setdefault(s, []).append(i)
    studies = tuple(groups)
    if table.layout == "contrast":
        t1, t2 = table.text["treat1"], table.text["treat2"]
        names = set(t1) | set(t2)
    else:
        names = set(table.text["treatment"])
    treatments = _order(names, reference, table.path)
    pos = {t: i for i, t in enumerate(treatments)}
    c_study: list[int] = []
    c_base: list[int] = []
    c_trt: list[int] = []
    blocks: list[tuple[int, int]] = []
    if table.layout != "contrast":
        trt = table.text["treatment"]
        arm_study, arm_contrast, arm_trt = [], [], []
        for si, (s, idx) in enumerate(groups.items()):
            if len(idx) < 2:
                raise InputError(f"study {s!r} has one arm; every study of a network needs two or more",
                                 file=table.path, line=table.line_of(idx[0]), column="treatment")
            arms = sorted(idx, key=lambda i: pos[trt[i]])
            b = pos[trt[arms[0]]]
            blocks.append((len(c_study), len(arms) - 1))
            for j, i in enumerate(arms):
                arm_study.append(si)
                arm_trt.append(pos[trt[i]])
                if j == 0:
                    arm_contrast.append(-1)
                else:
                    arm_contrast.append(len(c_study))
                    c_study.append(si)
                    c_base.append(b)
                    c_trt.append(pos[trt[i]])
        order = np.array([i for idx in groups.values() for i in sorted(idx, key=lambda i: pos[trt[i]])])
        cols = table.columns
        extra: dict[str, Any] = {}
        if table.layout == "arm_binary":
            extra = {"r": cols["events"][order], "n": cols["n"][order]}
            likelihood = "binomial"
        else:
            extra = {"y": cols["mean"][order], "se": cols["sd"][order] / np.sqrt(cols["n"][order])}
            likelihood = "normal"
        data = _Data(likelihood, treatments, studies, np.array(c_study, np.intp), np.array(c_base, np.intp),
                     np.array(c_trt, np.intp), tuple(blocks), np.array(arm_study, np.intp),
                     np.array(arm_contrast, np.intp), np.array(arm_trt, np.intp), path=table.path, **extra)
    else:
        yi, se = table.columns["yi"], table.columns["se"]
        ys, covs = [], []
        for si, (s, idx) in enumerate(groups.items()):
            pair: dict[tuple[int, int], tuple[float, float, int]] = {}  # (a, b) a < b: effect of b vs a
            for i in idx:
                a, b = pos[t1[i]], pos[t2[i]]  # a row is the effect of treat1 (a) against treat2 (b)
                key = (min(a, b), max(a, b))
                if key in pair:
                    raise InputError(f"study {s!r} gives the {treatments[key[1]]} vs {treatments[key[0]]} comparison "
                                     f"twice (also on line {table.line_of(pair[key][2])})", file=table.path,
                                     line=table.line_of(i), column="treat2")
                pair[key] = (float(yi[i]) if a > b else -float(yi[i]), float(se[i]), i)
            arms = sorted({k for p in pair for k in p})
            need = len(arms) * (len(arms) - 1) // 2
            if len(pair) != need:
                raise InputError(f"multi-arm study {s!r} gives {len(pair)} of its {need} comparisons: give every "
                                 f"pair of its arms ({', '.join(treatments[a] for a in arms)})", file=table.path,
                                 line=table.line_of(idx[0]), column="treat1")
            b = arms[0]
            blocks.append((len(c_study), len(arms) - 1))
            others = arms[1:]
            y_s = np.array([pair[(b, k)][0] for k in others])
            v = {p: val[1] ** 2 for p, val in pair.items()}
            m = len(others)
            cov = np.empty((m, m))
            for j, k in enumerate(others):
                for l_, kk in enumerate(others):
                    cov[j, l_] = v[(b, k)] if j == l_ else (v[(b, k)] + v[(b, kk)] - v[(min(k, kk), max(k, kk))]) / 2
            for j, k in enumerate(others):  # the pairs between later arms must follow from those with b
                for kk in others[j + 1:]:
                    got, _, row = pair[(k, kk)]
                    want = pair[(b, kk)][0] - pair[(b, k)][0]
                    if abs(got - want) > TOL_MULTIARM:
                        raise InputError(f"multi-arm study {s!r}: the {treatments[kk]} vs {treatments[k]} effect "
                                         f"({got:g}) differs from the difference of the effects against "
                                         f"{treatments[b]} ({want:g})", file=table.path,
                                         line=table.line_of(row), column="yi")
            if m > 1 and np.linalg.eigvalsh(cov)[0] <= 0:
                raise InputError(f"multi-arm study {s!r}: its comparisons' standard errors do not fit one set of "
                                 f"arms (no positive arm variance makes them)", file=table.path,
                                 line=table.line_of(idx[0]), column="se")
            for k in others:
                c_study.append(si)
                c_base.append(b)
                c_trt.append(k)
            ys.append(y_s)
            covs.append(cov)
        data = _Data("contrast", treatments, studies, np.array(c_study, np.intp), np.array(c_base, np.intp),
                     np.array(c_trt, np.intp), tuple(blocks), y=np.concatenate(ys), cov=tuple(covs),
                     path=table.path)
    parts = components(len(treatments), data.c_base, data.c_trt)
    if len(parts) > 1:
        shown = "; ".join("{" + ", ".join(treatments[t] for t in p) + "}" for p in parts)
        raise InputError(f"the network is disconnected: {len(parts)} separate sub-networks, {shown}; no "
                         "comparison links them, so they cannot be analysed as one network", file=table.path)
    return data


def _block_diag(mats: list[np.ndarray]) -> np.ndarray:
    from scipy.linalg import block_diag

    if not mats:  # block_diag() of nothing is 1 x 0
        return np.zeros((0, 0))
    return np.asarray(block_diag(*mats), dtype=float)


def _ume_comparisons(data: _Data) -> list[tuple[int, int]]:
    return sorted(set(zip(data.c_base.tolist(), data.c_trt.tolist())))


# ------------------------------------------------------------------------------------- result

@dataclass(frozen=True)
class BayesNMAResult:
    """Posterior of a Bayesian network meta-analysis (analysis scale: log odds ratios for OR).

    ``estimates``: the model's basic parameters with posterior summaries (dicts of treatment,
    versus, mean, median, sd, low, high, r_hat, ess_bulk): every treatment against the reference
    (consistency) or every comparison of a study's baseline with another arm (UME); ``contrasts``:
    every pair (consistency; the UME parameters again under UME); ``tau``: None under common
    effects; ``ranks``: {treatment: [P(rank 1), ..., P(rank T)]} and ``sucra`` {treatment: value},
    rank 1 best in the ``benefit`` direction (consistency only); ``fit``: totresdev, Dbar, Dhat,
    pD, DIC, pV, DIC_pV, n_data; ``residual_deviance``: per data point; ``loo``: PSIS-LOO."""

    model: str
    effects: str
    measure: str
    likelihood: str
    treatments: tuple[Any, ...]
    reference: str
    benefit: str
    level: float
    estimates: tuple[Any, ...]
    contrasts: tuple[Any, ...]
    tau: dict[str, Any] | None
    ranks: dict[str, Any]
    sucra: dict[str, Any]
    fit: dict[str, Any]
    residual_deviance: tuple[Any, ...]
    loo: dict[str, Any]
    prior: dict[str, Any]
    diagnostics: dict[str, Any]
    k: int
    warnings: tuple[Any, ...] = ()
    notes: tuple[Any, ...] = ()
    pointwise: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # deviance, elpd per point

    def to_dict(self) -> dict[str, Any]:
        """JSON form (numbers through hatmeta.precision)."""
        from ..precision import plain

        out: dict[str, Any] = plain({
            "engine": "pymc", "bayes": True, "model": self.model, "effects": self.effects, "measure": self.measure,
            "likelihood": self.likelihood, "treatments": list(self.treatments), "reference": self.reference,
            "benefit": self.benefit, "level": self.level, "k": self.k,
            "estimates": [dict(e) for e in self.estimates], "contrasts": [dict(c) for c in self.contrasts],
            "tau": self.tau, "rank_probabilities": self.ranks, "sucra": self.sucra, "fit": dict(self.fit),
            "residual_deviance": [dict(r) for r in self.residual_deviance], "loo": dict(self.loo),
            "prior": dict(self.prior), "diagnostics": dict(self.diagnostics), "warnings": list(self.warnings),
            "notes": list(self.notes)})
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per estimate (pandas), with rank probabilities' SUCRA where there are ranks."""
        import pandas as pd

        frame = pd.DataFrame([dict(e) for e in self.estimates])
        if self.sucra:
            frame["sucra"] = [self.sucra.get(t, math.nan) for t in frame["treatment"]]
        return frame

    def summary(self) -> str:
        """Text: estimates, tau, ranks, model fit, diagnostics and warnings."""
        import textwrap

        from ..summary import text_table

        lv = f"{100 * self.level:.10g}%"
        head = (f"Bayesian network meta-analysis, {'consistency' if self.model == 'consistency' else 'unrelated mean'}"
                f" effects model, {self.effects} effects ({self.likelihood} likelihood, {self.measure}); "
                f"k = {self.k}, {len(self.treatments)} treatments")
        prior = f"Priors: d ~ N(0, {self.prior['d_prior_sd']:g}^2)"
        if self.effects == "random":
            prior += f"; tau ~ {self.prior['tau_prior']}"
        lines = [*textwrap.wrap(head, 80, subsequent_indent="  "), prior, ""]
        what = f"vs {self.reference}" if self.model == "consistency" else "comparison"
        rows = [[e["treatment"] if self.model == "consistency" else f"{e['treatment']} vs {e['versus']}",
                 f"{e['mean']:.4f}", f"{e['median']:.4f}", f"{e['sd']:.4f}",
                 f"[{e['low']:.4f}, {e['high']:.4f}]"] for e in self.estimates]
        if self.tau is not None:
            t = self.tau
            rows.append(["tau", f"{t['mean']:.4f}", f"{t['median']:.4f}", f"{t['sd']:.4f}",
                         f"[{t['low']:.4f}, {t['high']:.4f}]"])
        lines += text_table([what, "mean", "median", "sd", f"{lv} CrI"], rows)
        if self.sucra:
            lines += ["", f"Ranks (1 = best, {self.benefit} values better): P(rank) and SUCRA"]
            n = len(self.treatments)
            lines += text_table(["treatment", *[str(i + 1) for i in range(n)], "SUCRA"],
                                [[t, *[f"{p:.3f}" for p in self.ranks[t]], f"{self.sucra[t]:.3f}"]
                                 for t in self.treatments])
        f = self.fit
        lines += ["", *textwrap.wrap(f"Fit: residual deviance {f['totresdev']:.2f} on {f['n_data']} data points; "
                                     f"pD {f['pD']:.2f}, DIC {f['DIC']:.2f} (with pV {f['pV']:.2f}: DIC "
                                     f"{f['DIC_pV']:.2f})", 80, subsequent_indent="  ")]
        if self.loo:
            lo = self.loo
            lines.append(f"LOO: elpd {lo['elpd_loo']:.2f} (se {lo['se']:.2f}), p_loo {lo['p_loo']:.2f}, "
                         f"LOOIC {lo['looic']:.2f}")
        d = self.diagnostics
        lines += textwrap.wrap(f"MCMC: {d['chains']} chains, {d['draws']} draws, seed {d['seed']}; largest R-hat "
                               f"{d['r_hat_max']:.3f} (over d and tau), smallest bulk ESS {d['ess_bulk_min']:.0f}, "
                               f"divergences {d['divergences']}", 80, subsequent_indent="  ")
        for label, texts in (("Note", self.notes), ("Warning", self.warnings)):
            for t in texts:
                lines += textwrap.wrap(f"{label}: {t}", 80, subsequent_indent="  ")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(self.summary())}</pre>"


@dataclass(frozen=True)
class BayesNMAComparison:
    """The consistency and UME models of one network, and their comparison (``compare_models``)."""

    consistency: BayesNMAResult
    ume: BayesNMAResult
    comparison: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON form: both models and their comparison."""
        from ..precision import plain

        out: dict[str, Any] = plain({"bayes": True, "consistency": self.consistency.to_dict(),
                                     "ume": self.ume.to_dict(), "comparison": dict(self.comparison)})
        return out

    def summary(self) -> str:
        """Text: both models, then their DIC and LOO comparison."""
        import textwrap

        c = self.comparison
        lines = [self.consistency.summary(), "", self.ume.summary(), "",
                 "Consistency vs unrelated mean effects (UME):",
                 f"  DIC {c['DIC_consistency']:.2f} vs {c['DIC_ume']:.2f} (difference {c['DIC_difference']:.2f}; "
                 f"residual deviance {c['totresdev_consistency']:.2f} vs {c['totresdev_ume']:.2f})"]
        if c.get("elpd_difference") is not None:
            lines.append(f"  LOO elpd difference (consistency - UME) {c['elpd_difference']:.2f} "
                         f"(se {c['elpd_difference_se']:.2f})")
        lines += textwrap.wrap(c["reading"], 80, initial_indent="  ", subsequent_indent="  ")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(self.summary())}</pre>"


def compare_models(consistency: BayesNMAResult, ume: BayesNMAResult) -> dict[str, Any]:
    """DIC and PSIS-LOO of the consistency model against the UME model on the same data, and the
    per-data-point residual deviances of both (TSD4's dev-dev comparison). A DIC lower by more
    than about 3 to 5 is a meaningful difference (TSD2); similar fit favours the consistency model,
    which has fewer parameters, and a better fit of the UME model points to inconsistency (TSD4)."""
    a, b = consistency.fit, ume.fit
    diff = a["DIC"] - b["DIC"]
    out: dict[str, Any] = {"DIC_consistency": a["DIC"], "DIC_ume": b["DIC"], "DIC_difference": diff,
                           "totresdev_consistency": a["totresdev"], "totresdev_ume": b["totresdev"],
                           "pD_consistency": a["pD"], "pD_ume": b["pD"]}
    ea, eb = consistency.pointwise.get("elpd"), ume.pointwise.get("elpd")
    if ea is not None and eb is not None and len(ea) == len(eb):
        d = np.asarray(ea) - np.asarray(eb)
        out["elpd_difference"] = float(d.sum())
        out["elpd_difference_se"] = float(math.sqrt(d.size * np.var(d, ddof=1))) if d.size > 1 else None
    out["dev_dev"] = [{**p, "consistency": x["resdev"], "ume": y["resdev"]}
                      for p, x, y in zip([{k: v for k, v in r.items() if k != "resdev"}
                                          for r in consistency.residual_deviance],
                                         consistency.residual_deviance, ume.residual_deviance)]
    if diff < -3:
        reading = "the consistency model fits better (DIC lower by more than 3)"
    elif diff > 3:
        reading = ("the UME model fits better (DIC lower by more than 3): evidence of inconsistency; look at the "
                   "data points whose residual deviance is lower under UME")
    else:
        reading = ("the models fit about equally (DIC within 3): no evidence of inconsistency; the consistency "
                   "model is preferred as the simpler")
    out["reading"] = reading
    return out


# ------------------------------------------------------------------------------------- fit

def _check_options(model: str, draws: int, tune: int, chains: int, ume_multiarm: str, benefit: str,
                   level: float) -> str:
    model = str(model).strip().lower()
    if model not in (*MODELS, "both"):
        raise InputError(f"unknown model {model!r}; choose consistency, ume or both", option="--model")
    if draws < MIN_DRAWS or tune < 0 or chains < 1:
        raise InputError(f"draws must be at least {MIN_DRAWS} per chain, tuning steps at least 0 and chains at "
                         f"least 1 (got {draws}, {tune}, {chains})", option="--draws")
    if ume_multiarm not in ("correlated", "independent"):
        raise InputError(f"unknown UME multi-arm option {ume_multiarm!r}; choose correlated or independent",
                         option="--ume-multiarm")
    if benefit not in ("lower", "higher"):
        raise InputError(f"benefit must be lower or higher, got {benefit!r}", option="--benefit")
    if not 0 < level < 1:
        raise InputError(f"level must be between 0 and 1, got {level:g}", option="--level")
    return model


def bayes_nma(data: NetworkSource | NetworkTable, measure: str, reference: str | None = None,
              model: str = "consistency", common: bool = False, tau_prior: TauPrior | str | None = None,
              seed: int = 1, draws: int = 1000, tune: int = 1000, chains: int = 2, benefit: str = "lower",
              level: float = 0.95, ume_multiarm: str = "correlated", d_prior_sd: float = VAGUE_SD,
              mu_prior_sd: float = VAGUE_SD, progressbar: bool = False) -> BayesNMAResult | BayesNMAComparison:
    """Bayesian network meta-analysis (the models of the module docstring) by NUTS.

    Parameters
    ----------
    data : path, DataFrame, dict of columns or NetworkTable
        An arm-level (events or means) or contrast-level network table (``hatmeta.io.network_table``).
    measure : str
        OR for events per arm (binomial, logit link), MD for means per arm, any measure for
        contrast-level tables (their ``yi`` is on the analysis scale, log for ratios).
    reference : str, optional
        The treatment the basic parameters d are against (default: the first in R's sort order).
    model : str
        "consistency", "ume" (unrelated mean effects) or "both" (returns a BayesNMAComparison).
    common : bool
        Common (fixed) effect instead of random effects.
    tau_prior : TauPrior or str, optional
        Prior of the heterogeneity SD (``hatmeta.bayes.priors`` text forms); default uniform:5.
    seed, draws, tune, chains : int
        Sampler settings; the same seed gives the same draws and the same JSON.
    benefit : str
        "lower" (smaller effects better: rank 1 has the lowest d) or "higher".
    level : float
        Credible interval level (equal-tailed).
    ume_multiarm : str
        UME under random effects: "correlated" (default; correlation 1/2 in multi-arm studies, as
        the consistency model) or "independent" (TSD4's printed analyses).
    d_prior_sd, mu_prior_sd : float
        SDs of the normal priors (mean 0) of the basic parameters and of the study baselines.

    Returns
    -------
    BayesNMAResult, or BayesNMAComparison with ``model="both"``.
    """
    model = _check_options(model, draws, tune, chains, ume_multiarm, benefit, level)
    table = data if isinstance(data, NetworkTable) else read_network(data)
    prepared = prepare(table, measure, reference)
    prior = tau_prior if isinstance(tau_prior, TauPrior) else parse_tau_prior(tau_prior or DEFAULT_TAU_PRIOR)
    opts = dict(measure=str(measure).strip().upper(), effects="common" if common else "random", prior=prior,
                seed=seed, draws=draws, tune=tune, chains=chains, benefit=benefit, level=level,
                ume_multiarm=ume_multiarm, d_prior_sd=d_prior_sd, mu_prior_sd=mu_prior_sd, progressbar=progressbar)
    if model == "both":
        cons = _fit(prepared, "consistency", **opts)  # type: ignore[arg-type]
        ume = _fit(prepared, "ume", **opts)  # type: ignore[arg-type]
        return BayesNMAComparison(cons, ume, compare_models(cons, ume))
    return _fit(prepared, model, **opts)  # type: ignore[arg-type]


def _fit(data: _Data, model: str, measure: str, effects: str, prior: TauPrior, seed: int, draws: int, tune: int,
         chains: int, benefit: str, level: float, ume_multiarm: str, d_prior_sd: float, mu_prior_sd: float,
         progressbar: bool) -> BayesNMAResult:
    nt = len(data.treatments)
    random = effects == "random"
    comps = _ume_comparisons(data) if model == "ume" else []
    cidx = {c: i for i, c in enumerate(comps)}
    # random effects: each study's Cholesky factor of (I + J) / 2 (TSD2's shared heterogeneity)
    chols = []
    for _, m in data.blocks:
        corr = 0.5 * (np.eye(m) + np.ones((m, m)))
        if model == "ume" and ume_multiarm == "independent":
            corr = np.eye(m)
        chols.append(np.linalg.cholesky(corr))
    L = _block_diag(chols)
    nc = data.c_study.size
    with pymc_session(progressbar) as (pm, _az):
        with pm.Model():
            if model == "consistency":
                d = pm.Normal("d", 0.0, d_prior_sd, shape=nt - 1)
                dfull = pm.math.concatenate([np.zeros(1), d])
                mean_c = dfull[data.c_trt] - dfull[data.c_base]
            else:
                d = pm.Normal("d", 0.0, d_prior_sd, shape=len(comps))
                mean_c = d[np.array([cidx[(b, k)] for b, k in zip(data.c_base.tolist(), data.c_trt.tolist())],
                                    np.intp)]
            if random:
                tau = _tau(pm, prior)
                z = pm.Normal("z", 0.0, 1.0, shape=nc)
                delta = mean_c + tau * pm.math.dot(L, z)
            else:
                delta = mean_c
            if data.arm_level:
                mu = pm.Normal("mu", 0.0, mu_prior_sd, shape=len(data.studies))
                dz = pm.math.concatenate([np.zeros(1), delta])
                theta = pm.Deterministic("fitted", mu[data.arm_study] + dz[data.arm_contrast + 1])
                if data.likelihood == "binomial":
                    pm.Binomial("y", n=data.n.astype(np.int64), logit_p=theta, observed=data.r.astype(np.int64))
                else:
                    pm.Normal("y", mu=theta, sigma=data.se, observed=data.y)
            else:
                fitted = pm.Deterministic("fitted", delta)
                # whitened: W (y - delta) ~ N(0, I) with W the inverse Cholesky factor of each study's covariance
                W = _block_diag([np.linalg.inv(np.linalg.cholesky(c)) for c in data.cov])
                pm.Normal("y", mu=pm.math.dot(W, fitted), sigma=1.0, observed=W @ data.y)
            idata = sample(pm, draws, tune, chains, seed, progressbar)
    names = ["d", "tau"] if random else ["d"]
    diagnostics, cautions = diagnose(idata, names, chains, seed)
    return _summarise(data, model, measure, effects, prior, idata, comps, benefit, level, diagnostics, cautions,
                      d_prior_sd, mu_prior_sd, ume_multiarm)


def _stats(x: np.ndarray, level: float) -> dict[str, float]:
    s = _summary(x, level)
    return {"mean": s.mean, "median": s.median, "sd": s.sd, "low": s.low, "high": s.high}


def _deviance(data: _Data, fitted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Residual deviance and log-likelihood per data point for draws of the fitted values
    (S x arms: linear predictor; S x contrasts: delta). Arrays S x points."""
    from scipy.special import gammaln, log_expit, xlogy

    if data.likelihood == "binomial":
        r, n = data.r, data.n
        logp, log1mp = log_expit(fitted), log_expit(-fitted)
        sat = xlogy(r, r / n) + xlogy(n - r, (n - r) / n)
        dev = 2 * (sat - r * logp - (n - r) * log1mp)
        ll = gammaln(n + 1) - gammaln(r + 1) - gammaln(n - r + 1) + r * logp + (n - r) * log1mp
        return np.maximum(dev, 0.0), ll
    if data.likelihood == "normal":
        dev = ((data.y - fitted) / data.se) ** 2
        return dev, -0.5 * np.log(2 * math.pi * data.se**2) - dev / 2
    devs, lls = [], []
    for (start, m), cov in zip(data.blocks, data.cov):
        res = data.y[start:start + m] - fitted[:, start:start + m]
        prec = np.linalg.inv(cov)
        q = np.einsum("si,ij,sj->s", res, prec, res)
        devs.append(q)
        lls.append(-0.5 * (m * math.log(2 * math.pi) + float(np.linalg.slogdet(cov)[1])) - q / 2)
    return np.stack(devs, axis=1), np.stack(lls, axis=1)


def _plugin_deviance(data: _Data, fitted: np.ndarray) -> float:
    """Dhat: the deviance at the posterior mean of the linear predictor (mu_i + delta_i,bk on the
    logit scale for binomial data; theta or delta for normal data). This is WinBUGS's plug-in (the
    posterior means of the parameters the likelihood depends on), which TSD2's printed pD and
    DIC use: on the smoking example it gives pD 44.8 against TSD's 45.0, where the posterior
    mean of the probabilities gives 43.8."""
    return float(np.sum(_deviance(data, np.mean(fitted, axis=0)[None, :])[0]))


def _loo(idata: Any, ll: np.ndarray, chains: int) -> tuple[dict[str, Any], np.ndarray | None, list[str]]:
    import warnings

    import arviz as az
    import xarray as xr

    shaped = ll.reshape(chains, -1, ll.shape[1])
    idata.add_groups({"log_likelihood": xr.Dataset({"y": (("chain", "draw", "point"), shaped)})})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ArviZ's Pareto-k warning is said once, below, in hatmeta's words
        res = az.loo(idata, pointwise=True)
    k = np.asarray(res.pareto_k)
    bad = int(np.sum(k > PARETO_K_BAD))
    out = {"elpd_loo": float(res.elpd_loo), "se": float(res.se), "p_loo": float(res.p_loo),
           "looic": float(-2 * res.elpd_loo), "pareto_k_max": float(np.max(k)), "n_pareto_k_bad": bad}
    cautions = []
    if bad:
        cautions.append(f"{bad} data point{'s' if bad > 1 else ''} with Pareto k above {PARETO_K_BAD}: "
                        "PSIS-LOO is unreliable there (compare models by DIC, or refit leaving them out)")
    return out, np.asarray(res.loo_i), cautions


def _summarise(data: _Data, model: str, measure: str, effects: str, prior: TauPrior, idata: Any,
               comps: list[tuple[int, int]], benefit: str, level: float, diagnostics: dict[str, Any],
               cautions: list[str],
               d_prior_sd: float, mu_prior_sd: float, ume_multiarm: str) -> BayesNMAResult:
    import arviz as az

    post = idata.posterior
    chains = int(post.sizes["chain"])
    t = data.treatments
    d = post["d"].values.reshape(-1, post["d"].shape[-1])
    rhat = az.rhat(idata, var_names=["d"])["d"].values.reshape(-1)
    ess = az.ess(idata, var_names=["d"], method="bulk")["d"].values.reshape(-1)
    estimates, contrasts = [], []
    ranks: dict[str, list[float]] = {}
    sucra: dict[str, float] = {}
    if model == "consistency":
        full = np.concatenate([np.zeros((d.shape[0], 1)), d], axis=1)
        for j in range(1, len(t)):
            estimates.append({"treatment": t[j], "versus": t[0], **_stats(full[:, j], level),
                              "r_hat": float(rhat[j - 1]), "ess_bulk": float(ess[j - 1])})
        for i in range(len(t)):
            for j in range(i + 1, len(t)):
                contrasts.append({"treatment": t[j], "versus": t[i], **_stats(full[:, j] - full[:, i], level)})
        key = full if benefit == "lower" else -full
        rank = np.argsort(np.argsort(key, axis=1, kind="stable"), axis=1, kind="stable")  # 0 = best
        nt = len(t)
        probs = np.stack([np.mean(rank == r, axis=0) for r in range(nt)], axis=1)  # treatment x rank
        for i, name in enumerate(t):
            ranks[name] = [float(p) for p in probs[i]]
            sucra[name] = float(np.sum(np.cumsum(probs[i])[:-1]) / (nt - 1))
    else:
        for i, (b, k) in enumerate(comps):
            row = {"treatment": t[k], "versus": t[b], **_stats(d[:, i], level),
                   "r_hat": float(rhat[i]), "ess_bulk": float(ess[i])}
            estimates.append(row)
            contrasts.append({key: v for key, v in row.items() if key not in ("r_hat", "ess_bulk")})
    tau = None
    if effects == "random":
        tau = _stats(post["tau"].values.reshape(-1), level)
    fitted = post["fitted"].values.reshape(-1, post["fitted"].shape[-1])
    dev, ll = _deviance(data, fitted)
    total = dev.sum(axis=1)
    dbar = float(np.mean(total))
    dhat = _plugin_deviance(data, fitted)
    pd_ = dbar - dhat
    pv = float(np.var(total, ddof=1) / 2)
    fit = {"totresdev": dbar, "Dbar": dbar, "Dhat": dhat, "pD": pd_, "DIC": dbar + pd_, "pV": pv,
           "DIC_pV": dbar + pv, "n_data": data.n_data}
    resdev = np.mean(dev, axis=0)
    loo, elpd_i, loo_cautions = _loo(idata, ll, chains)
    points = data.points()
    residual = tuple({**p, "resdev": float(v)} for p, v in zip(points, resdev))
    notes = []
    if model == "ume" and effects == "random" and any(m > 1 for _, m in data.blocks):
        notes.append("UME random effects of a multi-arm study " + (
            "correlate 1/2, as in the consistency model" if ume_multiarm == "correlated"
            else "drawn independently (TSD4's printed analyses)"))
    prior_d: dict[str, Any] = {"d_prior_sd": float(d_prior_sd), "mu_prior_sd": float(mu_prior_sd)}
    if effects == "random":
        prior_d.update(prior.to_dict())
    return BayesNMAResult(model=model, effects=effects, measure=measure, likelihood=data.likelihood, treatments=t,
                          reference=t[0], benefit=benefit, level=level, estimates=tuple(estimates),
                          contrasts=tuple(contrasts), tau=tau, ranks=ranks, sucra=sucra, fit=fit,
                          residual_deviance=residual, loo=loo, prior=prior_d, diagnostics=diagnostics,
                          k=len(data.studies), warnings=tuple(cautions + loo_cautions), notes=tuple(notes),
                          pointwise={"resdev": resdev, "elpd": elpd_i})


__all__ = ["BayesNMAResult", "BayesNMAComparison", "bayes_nma", "compare_models", "prepare"]
