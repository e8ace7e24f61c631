"""`hatmeta tsa`: trial sequential analysis of a bundled analysis (its spec's [tsa] table) or a --data table."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from ..errors import InputError

if TYPE_CHECKING:
    from ..io.trial_table import TrialTable

MAX_DRAWS = 1_000_000  # --plan-next simulates draws x sizes trials at once


@click.command()
@click.argument("analysis", required=False)
@click.option("--data", "data_file", type=click.Path(dir_okay=False), help="A trial table (CSV) with arm data, "
              "or a RevMan review (.rm5, data package) with --outcome.")
@click.option("--outcome", metavar="ID", help="With --data FILE.rm5: the RevMan outcome (e.g. CMP-001.01).")
@click.option("--measure", help="RR, OR, RD, MD or SMD (with --data; default: the spec's).")
@click.option("--benefit", type=click.Choice(["lower", "higher"]),
              help="Which values of the measure favour the intervention (default: the spec's; 'lower' with --data).")
@click.option("--rrr", type=float, help="Anticipated relative risk reduction (e.g. 0.2).")
@click.option("--rri", type=float, help="Anticipated relative risk increase, where higher favours the intervention.")
@click.option("--md", type=float, help="Anticipated mean difference (MD; SMD in SD units).")
@click.option("--sd", type=float, help="SD of the outcome per arm (MD; default: pooled SD of the trials' arms).")
@click.option("--control-risk", type=float,
              help="Control event proportion (default: pooled control-arm proportion of the included trials).")
@click.option("--alpha", type=float, help="Type I error (default 0.05).")
@click.option("--power", type=float, help="Power, 1 - beta (default 0.8).")
@click.option("--sides", type=click.Choice(["1", "2"]), help="One- or two-sided test (default 2).")
@click.option("--spending", type=click.Choice(["obf", "pocock"], case_sensitive=False),
              help="Alpha spending: Lan-DeMets O'Brien-Fleming (default) or Pocock.")
@click.option("--d2", type=float, help="Stated diversity D2 (default: D2 of the random-effects model).")
@click.option("--order", metavar="COL", help="Order trials by COL (default: year where present, else as listed).")
@click.option("--method", help="Random-effects estimator of the z-curve and D2: DL (default, as the TSA program and "
              "RTSA), REML, PM, ...")
@click.option("--weights", type=click.Choice(["IV", "MH"], case_sensitive=False),
              help="Common-effect weights at looks where tau2 = 0: IV (inverse variance, default, the DL model's "
              "own, as the TSA program) or MH (Mantel-Haenszel, RTSA's default; binary measures).")
@click.option("--no-inflate", is_flag=True,
              help="Spend alpha over the un-inflated RIS (the TSA program's convention) instead of RTSA's default.")
@click.option("--futility", is_flag=True,
              help="Add non-binding futility boundaries (O'Brien-Fleming-type beta spending, as RTSA).")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False), help="Write the TSA plot (PNG, SVG or PDF).")
@click.option("--plan-next", is_flag=True, help="Size the next trial (conditional power of the updated meta-analysis).")
@click.option("--target-power", type=float, help="With --plan-next: power to reach (default: --power).")
@click.option("--sizes", metavar="N,N,...",
              help="With --plan-next: per-arm sizes to try (default: 20 from 25 to 10,000).")
@click.option("--draws", type=int, default=10000, show_default=True,
              help="With --plan-next: simulated trials per size.")
@click.option("--seed", type=int, default=1, show_default=True, help="With --plan-next: seed of the simulation.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"], case_sensitive=False), default="text",
              show_default=True)
@click.pass_context
def tsa(ctx, analysis, data_file, outcome, measure, benefit, rrr, rri, md, sd, control_risk, alpha, power, sides,
        spending, d2, order, method, weights, no_inflate, futility, plot_file, plan_next, target_power, sizes, draws,
        seed, fmt):
    """Trial sequential analysis: required information size, monitoring boundaries, conclusion.

    Settings come from the analysis spec's [tsa] table; options override them. z values and
    JSON estimates are on the analysis scale (log for RR and OR); information is in participants.
    """
    from .. import api
    from ..methods.tsa import merge_settings, tsa_table
    from ..methods.tsa_text import model_text
    from ..vocabulary import DEFAULT_LABELS
    from .named import analyses, source

    source(analysis, data_file)
    notes, title = [], None
    # arms and trials named as `hatmeta pool` names them; its model, to say why its estimate differs
    pool_model: str | None
    arms, study_labels, pool_model = DEFAULT_LABELS, {}, f"{model_text('REML', 'wald')} by default"
    table: TrialTable | None
    from ..io.revman_source import outcome_source, wants_review

    if wants_review(data_file, outcome):  # a RevMan outcome: its rows, arms and names; the TSA's own model
        src = outcome_source(data_file, outcome, measure)
        settings: dict = {}
        table, measure, benefit = src.table, src.measure, benefit or "lower"
        notes, title, arms = list(src.notes), src.title, src.labels
        study_labels = dict(zip(table.studies, table.extra.get("label", table.studies)))
        pool_model = f"RevMan's {src.model_text}"
    elif data_file is not None:
        from ..fit.effects import normalise_measure
        from ..methods.tsa import SUPPORTED

        if not measure:
            normalise_measure(measure, SUPPORTED)  # the --measure error, listing the measures a TSA takes
        table, measure = api.read_data(data_file, measure)
        settings = {}
        benefit = benefit or "lower"
    else:
        named = analyses(ctx).tsa(analysis, measure=measure, benefit=benefit)
        table, settings, notes = named.table, named.settings, named.notes
        measure, benefit, title = named.measure, named.benefit, named.title
        arms, study_labels, pool_model = named.labels, named.study_labels, named.pool_model
    if draws is not None and not 1 <= draws <= MAX_DRAWS:  # draws x sizes arrays: 10^9 would exhaust memory
        raise InputError(f"must be between 1 and {MAX_DRAWS:,}, got {draws:,}", option="--draws")
    given = dict(rrr=rrr, rri=rri, md=md, sd=sd, control_risk=control_risk, alpha=alpha, power=power,
                 sides=int(sides) if sides else None, spending=spending, d2=d2, order=order, method=method,
                 weights=weights, inflate=False if no_inflate else None, futility=True if futility else None)
    settings = merge_settings(settings, given, benefit, measure, analysis, table is not None)
    res = tsa_table(table, measure, benefit=benefit, notes=notes, arms=arms, study_labels=study_labels,
                    pool_model=pool_model, **settings)
    plan = None
    if plan_next:
        from ..methods.tsa_plan import plan_next_trial

        size_list = None
        if sizes:
            try:
                size_list = [int(s) for s in sizes.split(",") if s.strip()]
            except ValueError:
                raise InputError(f"--sizes must be whole numbers separated by commas, got {sizes!r}",
                                 column="--sizes") from None
        plan = plan_next_trial(table, measure, res, control_risk=control_risk, sd=settings.get("sd"),
                               target_power=target_power, sizes=size_list, draws=draws, seed=seed,
                               method=settings.get("method", "DL"), order=settings.get("order"))
    if plot_file:
        from ..render.plots.style import save
        from ..render.plots.tsa import tsa_plot

        save(tsa_plot(res, title=title), plot_file)
    if fmt.lower() == "json":
        out = {"tsa": res.to_dict()}
        if analysis:
            out["analysis"] = analysis
        if plan is not None:
            out["tsa"]["plan_next"] = plan.to_dict()
        click.echo(json.dumps(out, indent=2, allow_nan=False))
    else:
        from ..methods.tsa_text import plan_text, tsa_text

        click.echo(tsa_text(res, title=title))
        if plan is not None:
            click.echo(plan_text(plan))
