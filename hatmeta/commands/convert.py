"""`hatmeta convert FILE`: turn what trial reports give (medians and IQRs, CIs, p-values, ORs with
margins, change-score SDs, t statistics) into what the models need, one layout per row (an ``input``
column, as CMA allows); every output row names the method and its source (hatmeta/fit/conversions.py)."""

from __future__ import annotations

import click

from ..errors import InputError

TRUE = ("1", "yes", "true", "y", "log")


@click.command()
@click.argument("file", type=click.Path())
@click.option("--level", type=float, default=0.95, show_default=True, help="Level of the CIs given (input ci, or_ci).")
@click.option("--log", "log_all", is_flag=True, help="Estimates and CIs are ratios (logged first); or a 'log' column "
              "per row (yes/no).")
@click.option("--method", type=click.Choice(["luo/wan/shi", "wan2014", "qe-mcgrath", "bc-mcgrath"],
                                           case_sensitive=False), default="luo/wan/shi", show_default=True,
              help="Median-based means and SDs: Luo 2018 / Wan 2014 / Shi 2020, Wan 2014 only, or McGrath 2020's "
                   "quantile estimation or Box-Cox (as R's estmeansd); a 'method' column sets it per row.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "csv"], case_sensitive=False), default="text",
              show_default=True)
def convert(file, level, log_all, method, fmt):
    """Convert each row of FILE (CSV) by its `input` column: median_iqr, median_range, median_iqr_range
    (n, median, q1, q3, min, max -> mean, sd), ci, p, t (estimate with ci_low/ci_high, p [df] or t -> se),
    or_margins (or, n, n1, events -> 2x2), or_ci (or, ci_low, ci_high, n1, n2 -> 2x2), change_sd
    (sd_baseline, sd_final, r -> sd_change), smd_t, smd_p, smd_f (n1, n2 and t, p or f [sign] -> yi, vi),
    hr_oe (o_minus_e, v), hr_oe_arms (observed_treat, expected_treat, observed_ctrl, expected_ctrl), hr_ci
    (hr, ci_low, ci_high), hr_p (p, sign and events_treat, events_ctrl or events [n_treat, n_ctrl] [sides])
    -> log_hr, se, hr, o_minus_e, v (Parmar 1998, Tierney 2007)."""
    from ..fit.conversions import convert_row
    from ..io.trial_table import read_rows

    rows = read_rows(file)
    if not rows:
        raise InputError("empty file: expected a header row", file=file, line=1)
    header = [h.strip().lower() for h in rows[0]]
    if "input" not in header:
        raise InputError("no 'input' column naming each row's layout", file=file, line=1)
    out = []
    for i, cells in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise InputError(f"{len(cells)} fields, the header has {len(header)}", file=file, line=i)
        row = {h: c.strip() for h, c in zip(header, cells)}
        try:
            log = log_all or row.get("log", "").lower() in TRUE
            res = convert_row(row["input"], row, level=level, log=log, method=method.lower())
        except InputError as exc:
            raise InputError(exc.message, file=file, line=i, column=exc.column) from None
        out.append({"study": row.get("study", str(i - 1)), "input": row["input"], **res.to_dict()})
    if fmt == "json":
        from ..precision import dumps

        click.echo(dumps({"rows": out}, indent=True))
        return
    keys = []
    for r in out:
        keys += [k for k in r if k not in keys and k not in ("notes", "other_solution", "fits")]
    if fmt == "csv":
        import csv
        import sys

        from ..precision import q

        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(keys)
        for r in out:
            w.writerow(["" if r.get(k) is None else q(r[k]) if isinstance(r.get(k), float) else r[k]
                        for k in keys])
        return
    import textwrap

    for r in out:
        vals = ", ".join(f"{k} = {v:.6g}" if isinstance(v, float) else f"{k} = {v}" for k, v in r.items()
                         if k not in ("study", "input", "method", "source", "notes", "other_solution", "fits"))
        # at 80 columns: the values, then the method and its source, then each note, each wrapped
        # a "name = value" pair is never split (no-break spaces while wrapping)
        head = textwrap.wrap(f"{r['study']} ({r['input']}): " + vals.replace(" = ", "\xa0=\xa0"), 80,
                             subsequent_indent="    ", break_on_hyphens=False)
        click.echo("\n".join(head).replace("\xa0", " "))
        click.echo("\n".join(textwrap.wrap(f"method: {r['method']}; {r['source']}", 80, initial_indent="  ",
                                           subsequent_indent="    ", break_on_hyphens=False)))
        for n in r["notes"]:
            click.echo("\n".join(textwrap.wrap(f"note: {n}", 80, initial_indent="  ", subsequent_indent="    ")))
