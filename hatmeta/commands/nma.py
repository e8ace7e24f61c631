"""`hatmeta nma`: network meta-analysis of an arm-level or contrast-level table (netmeta's model)."""

from __future__ import annotations

import click


def _choice(values):
    return click.Choice(values, case_sensitive=False)


@click.command()
@click.option("--data", "data_file", required=True, type=click.Path(dir_okay=False),
              help="CSV with one row per arm (study, treatment, events, n | study, treatment, mean, sd, n) "
                   "or per comparison (study, treat1, treat2, yi, se; yi on the analysis scale).")
@click.option("--measure", required=True, help="OR, RR, RD (events), MD, SMD (means) or GEN (comparisons).")
@click.option("--reference", required=True, metavar="TRT", help="The treatment every estimate is against.")
@click.option("--common", is_flag=True, help="Report the common-effect model (default: random effects).")
@click.option("--method", default="DL", show_default=True, type=_choice(["DL", "REML"]),
              help="tau^2 estimator: netmeta's DerSimonian-Laird-type estimator or REML.")
@click.option("--benefit", default="lower", show_default=True, type=_choice(["lower", "higher"]),
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
def nma(data_file, measure, reference, common, method, benefit, cc, level, fmt, graph_file, forest_file,
        funnel_file, funnel_order):
    """Network meta-analysis (frequentist, graph-theoretical; netmeta 3.3's conventions)."""
    from ..errors import InputError
    from ..methods.network import nma as run

    if funnel_file and not funnel_order:
        raise InputError("the comparison-adjusted funnel plot needs the treatments' order: give --funnel-order "
                         "once per treatment", option="--funnel")

    res = run(data_file, measure, reference=reference, common=common, method=method.upper(),
              benefit=benefit.lower(), cc=cc, level=level)
    if fmt.lower() == "json":
        from ..precision import dumps

        click.echo(dumps(res.to_dict()))
    else:
        click.echo(res.summary())
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
