"""What reviewers read from a network meta-analysis: league table, rankings, heterogeneity and
inconsistency (netmeta 3.3's ``netleague``, ``netrank``, ``decomp.design``, ``netsplit``), and the
``nma()`` entry point that returns them as one frozen ``NMAResult``.

- P-scores (Rücker & Schwarzer 2015, BMC Med Res Methodol 15:58): the mean over the other
  treatments of the one-sided probability that a treatment is better, Phi(-z_ij) with
  z_ij = (theta_i - theta_j) / se_ij when lower values are better (netmeta's ``small.values =
  "desirable"``), Phi(z_ij) when higher values are better.
- SUCRA: under the normal approximation of the frequentist estimates the SUCRA of a treatment
  equals its P-score exactly (Rücker & Schwarzer 2015, section 2.3: the expected rank depends only
  on the pairwise probabilities), so it is computed, not simulated. netmeta's ``rankogram()``
  resamples instead, and from an approximation (treatments drawn independently, with variances
  fitted to the comparisons' variances, ``samples_netmeta``): its SUCRAs land near these, within
  about 0.01 on the bundled data, not on them (tests draw from the full covariance and agree).
- Decomposition of Q (Krahn, Binder & König 2013, BMC Med Res Methodol 13:35, eqs. 7-8; netmeta's
  ``decomp.design``): Q within designs is the sum over designs of the Q of a common-effect model
  with design-specific effects; Q between designs (inconsistency) is the rest.
- Design-by-treatment interaction (Higgins et al. 2012; netmeta's ``decomp.design`` "Q.inc.random"):
  Q between designs with tau^2 estimated in the full design-by-treatment interaction model
  (netmeta's ``tau.within``, a DerSimonian-Laird-type estimator in that model).
- Node-splitting by back-calculation (König, Krahn & Binder 2013; netmeta's ``netsplit``): the
  direct estimate pools the comparison's own rows (inverse variance, their own SEs, plus tau^2 in
  the random-effects model); its share of the evidence P = se_network^2 / se_direct^2; the indirect
  estimate (theta_network - P theta_direct) / (1 - P) with se_network / sqrt(1 - P). No split where
  P is 1 (within 0.0005: only direct evidence) or there is no direct evidence (the indirect
  estimate is then the network estimate), as netmeta.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ..fit.network import LOG_MEASURES, NetworkFit, edge_weights, fit_graph, fit_network, pairwise, study_laplacians

if TYPE_CHECKING:
    from collections.abc import Iterable

    import pandas as pd

    from ..io.network_table import NetworkSource

TOL_DIRECT = 0.0005  # netsplit's tol.direct
_SQRT_EPS = math.sqrt(np.finfo(float).eps)


def _norm_sf(x):
    from ..dist import norm_sf

    return np.asarray(norm_sf(np.atleast_1d(np.asarray(x, np.float64))), np.float64).reshape(np.shape(x))


def _two_sided(z):
    return 2 * _norm_sf(np.abs(z))


# ------------------------------------------------------------------------------------- rankings

def p_scores(te: np.ndarray, se: np.ndarray, benefit: str = "lower") -> np.ndarray:
    """P-score of every treatment from the effect matrix ``te[i, j]`` (i against j) and its SEs."""
    n = te.shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = te / se
    p = _norm_sf(z if benefit == "lower" else -z)
    p = np.where(te == 0, 0.5, p)  # netmeta: a zero effect counts one half
    np.fill_diagonal(p, 0.0)
    return p.sum(axis=1) / (n - 1)


# ------------------------------------------------------------------------------------- Q decomposition

def _design_q(fit: NetworkFit, w: np.ndarray):
    """Within-design Q at edge weights ``w``: per design (its label, Q, df), and the design groups."""
    net = fit.network
    parts = study_laplacians(net, w)
    groups: dict = {}
    for s, arms in enumerate(net.arms):
        groups.setdefault(arms, []).append(s)
    edges_of = [np.flatnonzero(net.sid == s) for s in range(len(net.arms))]
    out = []
    for arms, studies in groups.items():
        k = len(arms)
        Ld = sum(parts[s][1] for s in studies)
        gd = sum(parts[s][2] for s in studies)
        J = np.full((k, k), 1.0 / k)
        Lp = np.linalg.inv(Ld - J) + J
        phi = Lp @ gd
        loc = {t: a for a, t in enumerate(arms)}
        q = 0.0
        for s in studies:
            e = edges_of[s]
            i = np.array([loc[t] for t in net.t1[e]])
            j = np.array([loc[t] for t in net.t2[e]])
            q += float(np.sum(w[e] * (net.te[e] - (phi[i] - phi[j])) ** 2))
        df = (len(studies) - 1) * (k - 1)
        if df == 0:
            q = 0.0  # one study fits its own design exactly: what is left is rounding (1e-31)
        out.append((":".join(net.treatments[t] for t in arms), q, df, studies, Lp))
    return out, parts


def decomp_design(fit: NetworkFit) -> dict:
    """netmeta's ``decomp.design``: Q total, within designs, between designs (with df and p), the
    within-design Q of each design, and the design-by-treatment interaction test (Q between designs
    under the random-effects design-by-treatment interaction model, with its tau^2).

    Weights are the comparisons' own covariance (Krahn et al. 2013's model), without netmeta's
    zeroing of small negative multi-arm weights, as ``decomp.design`` computes them; the two agree
    unless a multi-arm study's variances were zeroed (named in the fit's notes)."""
    from ..dist import chi2_sf

    net = fit.network
    w0 = edge_weights(net, 0.0, zero_small=False)
    designs, parts = _design_q(fit, w0)
    q_net = fit_graph(net, w0).Q
    q_het = sum(d[1] for d in designs)
    df_het = sum(d[2] for d in designs)
    df = fit.df
    df_inc = df - df_het

    def p(q, d):
        return float(chi2_sf(d, q)) if d > 0 else math.nan

    q_inc = 0.0 if df_inc == 0 else q_net - q_het  # no between-design degrees of freedom: 0 up to rounding
    out = {"Q": q_net, "Q_df": df, "Q_p": p(q_net, df),
           "Q_within": q_het, "Q_within_df": df_het, "Q_within_p": p(q_het, df_het),
           "Q_between": q_inc, "Q_between_df": df_inc, "Q_between_p": p(q_inc, df_inc),
           "designs": [{"design": d[0], "studies": len(d[3]), "Q": d[1], "df": d[2],
                        "p": p(d[1], d[2])} for d in designs]}
    if net.n <= 2 or df_inc == 0:  # netmeta: no decomposition with two treatments; nothing to test without df
        out["design_by_treatment"] = None
        return out
    # tau^2 of the design-by-treatment interaction model: (Q_het - df_het) / (tr(W V0) - tr(C X'W V0 W X)),
    # both traces per study / per design from the Laplacians (see fit.network.tau2_dl).
    tr1 = sum(0.5 * np.trace(Ls) for _, Ls, _ in parts)
    tr2 = 0.0
    for _, _, _, studies, Lp in designs:
        tr2 += 0.5 * float(sum(np.trace(Lp @ parts[s][1] @ parts[s][1]) for s in studies))
    tau2_w = 0.0 if tr1 == tr2 else max(0.0, (q_het - df_het) / (tr1 - tr2))
    wt = edge_weights(net, tau2_w, zero_small=False)
    dt, _ = _design_q(fit, wt)
    q_inc = fit_graph(net, wt).Q - sum(d[1] for d in dt)
    out["design_by_treatment"] = {"Q": q_inc, "df": df_inc, "p": p(q_inc, df_inc), "tau2_within": tau2_w}
    return out


# ------------------------------------------------------------------------------------- netsplit

def netsplit(fit: NetworkFit, model: str = "random") -> list:
    """Direct and indirect evidence of every comparison (back-calculation, netmeta's conventions;
    module docstring). One dict per pair of treatments in netmeta's order: ``comparison`` "A:B"
    (effect of A against B; a pair with the reference has the reference second), ``k`` (studies
    with direct evidence), ``prop_direct``, ``direct``, ``direct_se``, ``indirect``,
    ``indirect_se``, ``diff`` (direct - indirect), ``diff_se``, ``z`` and ``p``; None where a part
    does not exist."""
    net = fit.network
    tau2 = 0.0 if math.isnan(fit.tau2) else fit.tau2
    ref = net.treatments.index(fit.reference)
    out = []
    for i in range(net.n - 1):
        for j in range(i + 1, net.n):
            e = np.flatnonzero((net.t1 == i) & (net.t2 == j))
            a, b = (j, i) if i == ref else (i, j)
            sign = 1.0 if a == i else -1.0
            row = {"comparison": f"{net.treatments[a]}:{net.treatments[b]}", "k": int(e.size)}
            per = {}
            for m, t2 in (("common", 0.0), ("random", tau2)):
                g = fit.model(m)
                te_n, se_n = g.te[a, b], g.se[a, b]
                if e.size:
                    w = 1.0 / (net.se[e] ** 2 + t2)
                    d = sign * float(np.sum(w * net.te[e]) / np.sum(w))
                    sd = 1.0 / math.sqrt(float(np.sum(w)))
                    P = se_n**2 / sd**2
                else:
                    d, sd, P = math.nan, math.nan, 0.0
                if e.size == 0:
                    ind, si = te_n, se_n
                elif abs(P - 1) < _SQRT_EPS or P > 1 or abs(P - 1) < TOL_DIRECT:
                    ind, si = math.nan, math.nan
                else:
                    ind, si = (te_n - P * d) / (1 - P), se_n / math.sqrt(1 - P)
                per[m] = (d, sd, P, ind, si)
            d, sd, P, ind, si = per[model]
            if abs(per["common"][2]) < TOL_DIRECT:  # netmeta uses the common-effect share for both models
                d, sd = math.nan, math.nan
            diff = d - ind
            dse = math.sqrt(sd**2 + si**2)
            z = diff / dse if dse > 0 else math.nan
            row.update(prop_direct=P, direct=_none(d), direct_se=_none(sd), indirect=_none(ind),
                       indirect_se=_none(si), diff=_none(diff), diff_se=_none(dse), z=_none(z),
                       p=_none(float(_two_sided(z))) if math.isfinite(z) else None)
            out.append(row)
    return out


def _none(x):
    return None if x is None or not math.isfinite(x) else float(x)


# ------------------------------------------------------------------------------------- funnel data

def comparison_adjusted(fit: NetworkFit, order: Iterable[str], model: str = "random") -> list:
    """Rows of the comparison-adjusted funnel plot (Chaimani & Salanti 2012; netmeta's
    ``funnel.netmeta``): every comparison of every study, oriented so that its first treatment comes
    earlier in ``order`` (e.g. newer before older treatments), its effect minus the direct estimate of
    that comparison (pooled from the comparison's own rows, plus tau^2 under random effects, as in
    ``netsplit``), and its standard error. ``order`` must name every treatment once."""
    net = fit.network
    order = list(order)
    if sorted(order, key=str) != sorted(net.treatments, key=str):
        raise InputError("the funnel order must name every treatment once: " + ", ".join(net.treatments),
                         option="--funnel-order")
    rank = {t: i for i, t in enumerate(order)}
    tau2 = 0.0 if model == "common" or math.isnan(fit.tau2) else fit.tau2
    direct: dict = {}
    for a, b in set(zip(net.t1.tolist(), net.t2.tolist())):
        e = np.flatnonzero((net.t1 == a) & (net.t2 == b))
        w = 1.0 / (net.se[e] ** 2 + tau2)
        direct[(a, b)] = float(np.sum(w * net.te[e]) / np.sum(w))
    rows = []
    for s, a, b, te, se in zip(net.sid.tolist(), net.t1.tolist(), net.t2.tolist(), net.te.tolist(), net.se.tolist()):
        d = direct[(a, b)]
        ta, tb = net.treatments[a], net.treatments[b]
        if rank[ta] > rank[tb]:
            ta, tb, te, d = tb, ta, -te, -d
        rows.append({"study": net.studies[s], "treat1": ta, "treat2": tb, "te": te, "te_direct": d,
                     "te_adj": te - d, "se": se})
    rows.sort(key=lambda r: (rank[r["treat1"]], rank[r["treat2"]]))
    return rows


# ------------------------------------------------------------------------------------- the result

@dataclass(frozen=True)
class NMAResult:
    """A network meta-analysis (analysis scale: log for OR and RR).

    ``estimates``: every treatment against ``reference`` (dicts of treatment, estimate, se, ci_low,
    ci_high); ``league[row][column]``: the effect of the row treatment against the column treatment;
    ``p_scores``/``sucra``: {treatment: value}, higher is better in the ``benefit`` direction;
    ``netsplit``: direct and indirect evidence per comparison; ``I2`` in percent."""

    measure: str
    scale: str
    model: str
    method: str
    reference: str
    treatments: tuple
    benefit: str
    level: float
    estimates: tuple
    league: dict
    league_se: dict
    league_direct: dict  # {row: {column: direct estimate or None}}: the comparison's own studies only
    tau2: float
    I2: float
    I2_low: float
    I2_high: float
    Q: float
    Q_df: int
    Q_p: float
    Q_within: float
    Q_within_df: int
    Q_within_p: float
    Q_between: float
    Q_between_df: int
    Q_between_p: float
    design_by_treatment: dict | None
    designs: tuple
    p_scores: dict
    sucra: dict
    netsplit: tuple
    k: int
    n_comparisons: int
    studies: tuple
    participants: dict
    comparisons: tuple  # dicts of treat1, treat2, studies: the edges of the network graph
    dropped: tuple = ()
    notes: tuple = ()
    fit: NetworkFit | None = field(default=None, repr=False, compare=False)

    @property
    def is_ratio(self) -> bool:
        return self.scale == "log"

    def natural(self, x: float | None) -> float | None:
        return math.exp(x) if self.is_ratio and x is not None else x

    def to_dict(self) -> dict:
        """The JSON contract (issue 24, item 3), plus the details behind it."""
        from ..precision import plain

        return plain({
            "treatments": list(self.treatments), "reference": self.reference, "model": self.model,
            "measure": self.measure, "scale": self.scale, "method": self.method, "benefit": self.benefit,
            "level": self.level, "k": self.k, "n_comparisons": self.n_comparisons,
            "estimates": [dict(e) for e in self.estimates],
            "tau2": self.tau2, "tau": math.sqrt(self.tau2) if math.isfinite(self.tau2) else None,
            "I2": self.I2, "I2_low": self.I2_low, "I2_high": self.I2_high,
            "Q": self.Q, "Q_df": self.Q_df, "Q_p": self.Q_p,
            "Q_within": self.Q_within, "Q_within_df": self.Q_within_df, "Q_within_p": self.Q_within_p,
            "Q_between": self.Q_between, "Q_between_df": self.Q_between_df, "Q_between_p": self.Q_between_p,
            "design_by_treatment": self.design_by_treatment,
            "designs": [dict(d) for d in self.designs],
            "p_scores": dict(self.p_scores), "sucra": dict(self.sucra),
            "league": self.league, "league_se": self.league_se, "league_direct": self.league_direct,
            "netsplit": [dict(r) for r in self.netsplit],
            "studies": list(self.studies), "participants": self.participants,
            "comparisons": [dict(c) for c in self.comparisons],
            "dropped": [{"study": s, "reason": r} for s, r in self.dropped],
            "notes": list(self.notes),
        })

    def to_frame(self) -> pd.DataFrame:
        """One row per treatment (pandas): its effect against the reference (analysis scale, with
        ``*_natural`` back-transformed for OR and RR), P-score and SUCRA; the reference's row has
        no effect."""
        import pandas as pd

        est = {e["treatment"]: e for e in self.estimates}
        rows = []
        for t in self.treatments:
            e = est.get(t, {})
            rows.append({"treatment": t, "reference": self.reference, "estimate": e.get("estimate", math.nan),
                         "se": e.get("se", math.nan), "ci_low": e.get("ci_low", math.nan),
                         "ci_high": e.get("ci_high", math.nan), "p_score": self.p_scores[t],
                         "sucra": self.sucra[t], "participants": self.participants.get(t, math.nan)})
        frame = pd.DataFrame(rows)
        if self.is_ratio:
            for c in ("estimate", "ci_low", "ci_high"):
                frame[c + "_natural"] = np.exp(frame[c])
        return frame

    def league_frame(self) -> pd.DataFrame:
        """The league table in long form (pandas): one row per ordered pair, the effect of ``row``
        against ``column`` (analysis scale) with its SE and CI, and the direct estimate where studies
        compare the pair."""
        import pandas as pd

        from ..dist import norm_isf

        z = float(norm_isf((1 - self.level) / 2))
        rows = [{"row": a, "column": b, "estimate": self.league[a][b], "se": self.league_se[a][b],
                 "ci_low": self.league[a][b] - z * self.league_se[a][b],
                 "ci_high": self.league[a][b] + z * self.league_se[a][b],
                 "direct": self.league_direct[a][b]}
                for a in self.treatments for b in self.treatments if a != b]
        return pd.DataFrame(rows)

    def summary(self) -> str:
        from .network_text import format_nma

        return format_nma(self)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        from .network_text import nma_html

        return nma_html(self)


def nma(data: NetworkSource, measure: str, reference: str | None = None, common: bool = False,
        method: str = "DL", benefit: str = "lower", cc: float = 0.5, level: float = 0.95) -> NMAResult:
    """Network meta-analysis of an arm-level or contrast-level table (netmeta's graph-theoretical model).

    Parameters
    ----------
    data : str, os.PathLike, pandas.DataFrame or dict
        One row per arm (``study, treatment, events, n`` or ``study, treatment, mean, sd, n``) or per
        comparison (``study, treat1, treat2, yi, se``, yi on the analysis scale: log for OR and RR).
    measure : str
        OR, RR, RD (events), MD, SMD (means), or GEN (contrast-level effects of any kind).
    reference : str, optional
        The treatment every estimate is against (default: the first in sorted order, as netmeta).
    common : bool
        Report the common-effect model instead of the random-effects model.
    method : str
        tau^2 estimator: DL (netmeta's default) or REML.
    benefit : str
        "lower" (default, netmeta's ``small.values = "desirable"``) or "higher": the direction the
        P-scores and SUCRA count as better.
    cc : float
        Increment added to every cell of a study with a zero cell (binary data).
    level : float
        Confidence level of the intervals (0.95).

    Returns
    -------
    NMAResult
        Estimates on the analysis scale (log for OR and RR).
    """
    from ..io.network_table import NetworkTable, read_network

    benefit = str(benefit).strip().lower()
    if benefit not in ("lower", "higher"):
        raise InputError(f"unknown direction {benefit!r}; choose lower or higher", option="--benefit")
    if not 0 < level < 1:
        raise InputError(f"level must lie between 0 and 1, got {level}", option="--level")
    table = data if isinstance(data, NetworkTable) else read_network(data)
    comp = pairwise(table, measure, cc)
    fit = fit_network(comp, reference, method)
    return result_from_fit(fit, "common" if common else "random", benefit, level)


def result_from_fit(fit: NetworkFit, model: str = "random", benefit: str = "lower",
                    level: float = 0.95) -> NMAResult:
    """Assemble the NMAResult of one model of a fit."""
    from ..dist import chi2_sf, norm_isf

    net = fit.network
    g = fit.model(model)
    trts = net.treatments
    r = trts.index(fit.reference)
    z = float(norm_isf((1 - level) / 2))
    estimates = tuple({"treatment": t, "estimate": float(g.te[i, r]), "se": float(g.se[i, r]),
                       "ci_low": float(g.te[i, r] - z * g.se[i, r]), "ci_high": float(g.te[i, r] + z * g.se[i, r])}
                      for i, t in enumerate(trts) if i != r)
    if model == "random":
        # Prediction interval of a new study's effect (netmeta: t on the Q df, SE sqrt(se^2 + tau^2);
        # not available below 2 df).
        from ..dist import t_isf

        tau2 = 0.0 if math.isnan(fit.tau2) else fit.tau2
        tq = float(t_isf(fit.df, (1 - level) / 2)) if fit.df >= 2 else math.nan
        for e in estimates:
            sp = math.sqrt(e["se"] ** 2 + tau2)
            e["pi_low"] = e["estimate"] - tq * sp
            e["pi_high"] = e["estimate"] + tq * sp
    league = {a: {b: float(g.te[i, j]) for j, b in enumerate(trts)} for i, a in enumerate(trts)}
    league_se = {a: {b: float(g.se[i, j]) for j, b in enumerate(trts)} for i, a in enumerate(trts)}
    # Direct evidence only: each comparison's own rows pooled (inverse variance, plus tau^2 under random
    # effects; netmeta's TE.direct), None where no study compares the pair.
    t2 = 0.0 if model == "common" or math.isnan(fit.tau2) else fit.tau2
    league_direct: dict = {a: {b: None for b in trts} for a in trts}
    for (a, b) in set(zip(net.t1.tolist(), net.t2.tolist())):
        ab = np.flatnonzero((net.t1 == a) & (net.t2 == b))
        w = 1.0 / (net.se[ab] ** 2 + t2)
        d = float(np.sum(w * net.te[ab]) / np.sum(w))
        league_direct[trts[a]][trts[b]], league_direct[trts[b]][trts[a]] = d, -d
    ps = p_scores(g.te, g.se, benefit)
    p_sc = {t: float(ps[i]) for i, t in enumerate(trts)}
    dd = decomp_design(fit)
    comp = net.comparisons
    per_comp: dict = {}
    for a, b in zip(net.t1.tolist(), net.t2.tolist()):
        per_comp[(a, b)] = per_comp.get((a, b), 0) + 1
    edges = tuple({"treat1": trts[a], "treat2": trts[b], "studies": k} for (a, b), k in sorted(per_comp.items()))
    notes = list(fit.notes)
    if fit.method == "REML":
        notes.append("tau^2 by REML solved to convergence (a root of the restricted score); netmeta's rma.mv "
                     "fit can stop short of the maximum by about 1e-6")
    return NMAResult(
        measure=comp.measure, scale="log" if comp.measure in LOG_MEASURES else "identity", model=model,
        method=fit.method, reference=fit.reference, treatments=trts, benefit=benefit, level=level,
        estimates=estimates, league=league, league_se=league_se, league_direct=league_direct,
        tau2=fit.tau2, I2=fit.I2, I2_low=fit.I2_low, I2_high=fit.I2_high,
        Q=fit.Q, Q_df=fit.df, Q_p=float(chi2_sf(fit.df, fit.Q)) if fit.df > 0 else math.nan,
        Q_within=dd["Q_within"], Q_within_df=dd["Q_within_df"], Q_within_p=dd["Q_within_p"],
        Q_between=dd["Q_between"], Q_between_df=dd["Q_between_df"], Q_between_p=dd["Q_between_p"],
        design_by_treatment=dd["design_by_treatment"], designs=tuple(dd["designs"]),
        p_scores=p_sc, sucra=dict(p_sc), netsplit=tuple(netsplit(fit, model)),
        k=len(net.studies), n_comparisons=net.m, studies=net.studies,
        participants={t: comp.participants[t] for t in trts if t in comp.participants},
        comparisons=edges, dropped=comp.dropped, notes=tuple(notes), fit=fit)


__all__ = ["nma", "NMAResult", "result_from_fit", "p_scores", "decomp_design", "netsplit", "comparison_adjusted"]
