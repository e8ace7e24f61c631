"""`hatmeta baujat | influence`: the Baujat plot and the influence-diagnostics plot."""

from __future__ import annotations

import click

from .figures import _out_path, _pool, _source_opts


def _figure(kind):
    @click.command(name=kind)
    @_source_opts(omit=("subgroup", "labels", "benefit"))
    @click.option("--out", type=click.Path(dir_okay=False), help=f"File to write (default {kind}-ANALYSIS.png).")
    @click.option("--format", "fmt", type=click.Choice(["png", "svg", "pdf"]))
    @click.pass_context
    def command(ctx, analysis, data_file, measure, method, ci, pi, title, out, fmt):
        from ..errors import InputError
        from ..render import plots
        from ..render.plots.influence import baujat, influence_plot

        res, _, _, title, _ = _pool(ctx, analysis, data_file, measure, method, ci, pi, None, None, None, title)
        if res.k < 3:
            raise InputError(f"the {kind} plot needs at least 3 studies, found {res.k}", column="ANALYSIS")
        path, fmt = _out_path(out, f"{kind}-{analysis or 'data'}", fmt)
        draw = baujat if kind == "baujat" else influence_plot
        plots.save(draw(res, title=title), path, fmt)
        click.echo(str(path))

    command.help = ("Baujat plot: each study's contribution to heterogeneity against its influence on the "
                    "pooled result." if kind == "baujat" else
                    "Influence diagnostics per study (rstudent, DFFITS, Cook's distance, covariance ratio, "
                    "leave-one-out tau^2 and Q, hat values, weights).")
    return command


baujat = _figure("baujat")
influence = _figure("influence")
