"""Posterior densities of mu and tau against their priors (from a BayesResult of the exact engine)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from . import style

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ...bayes.exact import BayesResult


@style.styled
def posterior(post: BayesResult, measure: str = "RR", scale: str = "log", title: str | None = None) -> Figure:
    """Two panels: mu's posterior density (with its N(m0, s0²) prior) and tau's (with its prior).

    Parameters
    ----------
    post : BayesResult
        A result of the exact engine (``bayes_exact``; it carries the densities on grids).
    measure : str
        The measure, for the axis label.
    scale : {"log", "identity", ...}
        The analysis scale of mu (the x axis is labelled on it).
    title : str, optional
        Title above the panels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from ...bayes.priors import parse_tau_prior

    plt = style.pyplot()
    fig: Figure
    fig, (ax_mu, ax_tau) = plt.subplots(1, 2, figsize=(8, 3.8))
    mx, md = np.asarray(post.mu_grid[0]), np.asarray(post.mu_grid[1])
    ax_mu.plot(mx, md, color=style.STUDY, lw=1.4, label="posterior", gid="mu-posterior")
    m0, s0 = post.prior["mu_prior_mean"], post.prior["mu_prior_sd"]
    ax_mu.plot(mx, np.exp(-0.5 * ((mx - m0) / s0) ** 2) / (s0 * math.sqrt(2 * math.pi)), color="#888888",
               ls="--", lw=1, label=f"prior N({m0:g}, {s0:g}²)", gid="mu-prior")
    ax_mu.axvline(post.mu.median, color=style.INK, lw=0.7, label="median")
    ax_mu.axvspan(post.mu.low, post.mu.high, color=style.STUDY, alpha=0.08,
                  label=f"{100 * post.level:g}% credible interval")
    ax_mu.set_xlabel(f"mu ({'log ' if scale == 'log' else ''}{measure})")
    ax_mu.set_ylabel("density")
    from matplotlib.ticker import MaxNLocator

    ax_mu.xaxis.set_major_locator(MaxNLocator(nbins=6))  # long negative labels must not run together
    if scale == "log":
        ticks = [t for t in (0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 10) if mx.min() <= math.log(t) <= mx.max()]
        if len(ticks) >= 2:
            sec = ax_mu.secondary_xaxis("top", functions=(np.exp, lambda x: np.log(np.maximum(x, 1e-300))))
            sec.set_xticks(ticks)
            sec.set_xticklabels([f"{t:g}" for t in ticks])
            ax_mu.set_xlabel(f"mu (log {measure}; top axis: {measure})")
    ax_mu.set_ylim(0, float(md.max()) * 1.08)
    # Legends below the panels, outside the data: they never cover a curve or the interval's shading.
    ax_mu.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=2)
    tx, td = np.asarray(post.tau_grid[0]), np.asarray(post.tau_grid[1])
    keep = tx <= max(post.tau.high * 2.5, 0.05)
    ax_tau.plot(tx[keep], td[keep], color=style.STUDY, lw=1.4, label="posterior", gid="tau-posterior")
    prior = parse_tau_prior(post.prior["tau_prior"])
    ax_tau.plot(tx[keep], prior.pdf(tx[keep]), color="#888888", ls="--", lw=1, label=f"prior {prior.text}",
                gid="tau-prior")
    ax_tau.axvline(post.tau.median, color=style.INK, lw=0.7, label="median")
    ax_tau.set_xlabel("tau (between-trial SD)")
    ax_tau.set_xlim(0, tx[keep].max())
    ax_tau.set_ylim(0, max(float(td[keep].max()), float(np.max(prior.pdf(tx[keep])))) * 1.08)
    ax_tau.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=2)
    for ax in (ax_mu, ax_tau):
        ax.spines[["top", "right"]].set_visible(False)
    if title:
        import textwrap

        fig.suptitle(textwrap.fill(title, 100), fontsize=9, family=style.families(title), parse_math=False)
    fig.tight_layout()
    return fig
