"""`hatmeta nma`: network meta-analysis of an arm-level or contrast-level table (netmeta's model)."""

from __future__ import annotations

from typing import Any

import click


def _choice(values):
    return click.Choice(values, case_sensitive=False)


@click.command()
@click.argument("analysis", required=False)
@click.option("--data", "data_file", type=click.Path(dir_okay=False),
              help="CSV with one row per arm (study, treatment, events, n | study, treatment, mean, sd, n) "
                   "or per comparison (study, treat1, treat2, yi, se; yi on the analysis scale).")
@click.option("--measure", help="OR, RR, RD (events), MD, SMD (means) or GEN (comparisons); with --data.")
@click.option("--reference", metavar="TRT", help="The treatment every estimate is against (with --data; a named "
                                                   "network's spec gives its own).")
@click.option("--common", is_flag=True, help="Report the common-effect model (default: random effects).")
@click.option("--method", type=_choice(["DL", "REML"]),
              help="tau^2 estimator: netmeta's DerSimonian-Laird-type estimator (default with --data) or REML.")
@click.option("--benefit", type=_choice(["lower", "higher"]),
              help="Which direction is better for the P-scores and SUCRA (netmeta's small.values).")
@click.option("--cc", type=float, default=0.5, show_default=True,
              help="Increment added to every cell of a study with a zero cell.")
@click.option("--level", type=float, default=0.95, show_default=True, help="Confidence level.")
@click.option("--format", "fmt", type=_choice(["text", "json"]), default="text", show_default=True)
@click.option("--graph", "graph_file", type=click.Path(dir_okay=False),
              help="Also draw the network graph to this file (.png, .svg or .pdf).")
@click.option("--forest", "forest_file", type=click.Path(dir_okay=False),
              help="Also draw the forest plot against the reference to this file (.png, .svg or .pdf).")
@click.option("--funnel", "funnel_file", type=click.Path(dir_okay=False),
              help="Also draw the comparison-adjusted funnel plot to this file (needs --funnel-order).")
@click.option("--funnel-order", multiple=True, metavar="TRT",
              help="With --funnel: every treatment once, in the order that orients the comparisons "
                   "(e.g. newest first); repeat the option for each treatment.")
@click.option("--heat", "heat_file", type=click.Path(dir_okay=False),
              help="Also draw the net heat plot (Krahn et al. 2013, netmeta's netheat) to this file; random "
                   "effects use tau^2 of the full design-by-treatment interaction model, as netheat(random = TRUE).")
@click.option("--bayes", is_flag=True, help="Bayesian NMA by MCMC (PyMC; the NICE DSU TSD2 models): events per arm "
                                            "binomial with a logit link (OR), means per arm or contrasts normal.")
@click.option("--model", "bayes_model", type=_choice(["consistency", "ume", "both"]),
              help="With --bayes: the consistency model (default), unrelated mean effects, or both and their "
                   "DIC/LOO comparison.")
@click.option("--prior", "--tau-prior", "tau_prior", metavar="PRIOR",
              help="With --bayes: prior of tau (default uniform:5, TSD2's), e.g. halfnormal:0.5 or "
                   "turner:OUTCOME/COMPARISON (Turner et al. 2015, on tau^2).")
@click.option("--seed", type=int, default=1, show_default=True, help="With --bayes: the sampler's seed.")
@click.option("--draws", type=int, default=1000, show_default=True, help="With --bayes: draws per chain.")
@click.option("--tune", type=int, default=1000, show_default=True, help="With --bayes: tuning steps per chain.")
@click.option("--chains", type=int, default=2, show_default=True, help="With --bayes: chains.")
@click.option("--ume-multiarm", type=_choice(["correlated", "independent"]),
              help="With --bayes --model ume: a multi-arm study's random effects correlated 1/2 (default) or "
                   "independent (TSD4's printed analyses).")
@click.pass_context
def nma(ctx, analysis, data_file, measure, reference, common, method, benefit, cc, level, fmt, graph_file,
        forest_file, funnel_file, funnel_order, heat_file=None, bayes=False, bayes_model=None, tau_prior=None,
        seed=1, draws=1000, tune=1000, chains=2, ume_multiarm=None):
    """Network meta-analysis (frequentist, graph-theoretical; netmeta 3.3's conventions) of a named network
    (e.g. retention-network) or of any table (--data FILE)."""
    from ..errors import InputError
    from ..methods.network import nma as run
    from .named import analyses, source

    source(analysis, data_file)
    if funnel_file and not funnel_order:
        raise InputError("the comparison-adjusted funnel plot needs the treatments' order: give --funnel-order "
                         "once per treatment", option="--funnel")
    after, more = "", {}
    res: Any
    if bayes:
        from .nma_bayes import bayes_options

        opts = bayes_options(bayes_model, tau_prior, seed, draws, tune, chains, ume_multiarm, method,
                             (graph_file, forest_file, funnel_file, heat_file), benefit, level, common)
    elif bayes_model or tau_prior or ume_multiarm:
        raise InputError("--model, --prior and --ume-multiarm go with --bayes", option="--bayes")
    if bayes and data_file is not None:
        from ..bayes.network import bayes_nma

        for name, given in (("--measure", measure), ("--reference", reference)):
            if not given:
                raise InputError(f"{name} is required with --data", option=name)
        res = bayes_nma(data_file, measure, reference=reference, **opts)
    elif bayes:
        if measure:
            raise InputError("a named network's spec gives its measure: drop --measure", option="--measure")
        named = analyses(ctx).network(analysis, reference=reference, bayes=opts)
        res, after, more = named.result, named.text, named.json
    elif data_file is not None:
        for name, given in (("--measure", measure), ("--reference", reference)):
            if not given:
                raise InputError(f"{name} is required with --data", option=name)
        res = run(data_file, measure, reference=reference, common=common, method=(method or "DL").upper(),
                  benefit=(benefit or "lower").lower(), cc=cc, level=level)
    else:
        if measure:
            raise InputError("a named network's spec gives its measure: drop --measure", option="--measure")
        named = analyses(ctx).network(analysis, reference=reference, common=common or None,
                                      method=method.upper() if method else None,
                                      benefit=benefit.lower() if benefit else None, level=level)
        res, after, more = named.result, named.text, named.json
    heat = None
    if heat_file:  # before any output: a network without a net heat plot is refused with netheat's reason
        from ..methods.netheat import netheat

        heat = netheat(res)
        if not heat.available:
            raise InputError(f"no net heat plot: {heat.reason}", option="--heat")
    if fmt.lower() == "json":
        from ..precision import dumps

        click.echo(dumps({**res.to_dict(), **more}))
    else:
        click.echo(res.summary())
        if after:
            click.echo("\n" + after)
    for path, kind in ((graph_file, "graph"), (forest_file, "forest")):
        if path:
            from ..render.plots import save
            from ..render.plots.network import network_forest, network_graph

            save((network_graph if kind == "graph" else network_forest)(res), path)
            click.echo(f"wrote {path}", err=True)
    if funnel_file:
        from ..render.plots import save
        from ..render.plots.network import comparison_adjusted_funnel

        save(comparison_adjusted_funnel(res, funnel_order), funnel_file)
        click.echo(f"wrote {funnel_file}", err=True)
    if heat is not None:
        from ..render.plots import save
        from ..render.plots.netheat import netheat_plot

        save(netheat_plot(heat), heat_file)
        out: dict = {}  # reason -> designs (a multi-arm design has a row per contrast: named once)
        for r in heat.rows:
            if not r["shown"] and r["design"] not in out.setdefault(r["reason"], []):
                out[r["reason"]].append(r["design"])
        for why, designs in out.items():
            click.echo(f"net heat plot: left out {', '.join(designs)}: {why}", err=True)
        click.echo(f"wrote {heat_file}", err=True)
