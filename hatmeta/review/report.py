"""`hatmeta report` and `hatmeta reproduce`: every analysis rendered to files, and checked again.

Layout of the output folder (default reports/):
  index.html                      every analysis on one self-contained page (inline SVG figures)
  <analysis>.html                 one self-contained page per analysis
  figures/<analysis>-forest.{png,svg,pdf}, figures/<analysis>-funnel.{png,svg,pdf}
  tables/<analysis>.{md,csv,html,tex}, results/<analysis>.json
  sof.{md,csv,html}               the summary-of-findings table
  MANIFEST.sha256                 SHA-256 of every file above

Outputs are byte-identical across runs on one machine: no timestamps, fixed SVG ids, sorted
JSON, analyses in name order. The methods paragraph names the versions of hatmeta, NumPy, SciPy
and matplotlib, so a machine with other versions writes other bytes; reproduce says which files
differ (see reports/README.md for what may differ across platforms).
"""

from __future__ import annotations

import hashlib
import html
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

MANIFEST = "MANIFEST.sha256"
SIDECAR = ".data.json"  # what a figure draws, beside it
FIGURE_FORMATS = ("png", "svg", "pdf")
TABLE_FORMATS = {"markdown": "md", "csv": "csv", "html": "html", "latex": "tex"}
CSS = """body{font-family:'DejaVu Sans',Arial,sans-serif;max-width:1100px;margin:2em auto;color:#1a1a1a;
line-height:1.45;padding:0 1em}h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;
padding-bottom:.2em;margin-top:2em}table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}th{background:#f2f2f2}
caption{text-align:left;font-weight:bold;padding:.3em 0}.figure{margin:1em 0;max-width:100%}
.figure svg{display:block;max-width:100%;height:auto}.figure.narrow svg{max-width:min(100%,720px)}
.figure .full{font-size:.85em;color:#444;margin:.2em 0 0}
.note{color:#444;font-size:.9em}.refused{background:#fff4e5;border-left:4px solid #e69500;padding:.5em 1em}
.footnote{font-size:.85em;color:#444}"""


@dataclass(frozen=True)
class Rendered:
    """What one analysis produced: its result (or the reason it was not pooled) and file names."""

    name: str
    title: str
    result: object  # MetaResult or None
    analysis: object  # Analysis or None
    refused: str | None
    files: tuple
    posterior: object = None  # BayesResult or None
    tsa_html: str = ""  # the trial sequential analysis section, when the spec has a [tsa] table
    gaps: tuple = ()  # a refused analysis: what is missing and where it was sought
    published: tuple = ()  # a refused analysis: published pooled results for its outcome


def _versions():
    import matplotlib
    import numpy
    import scipy

    from .. import __version__

    return {"hatmeta": __version__, "numpy": numpy.__version__, "scipy": scipy.__version__,
            "matplotlib": matplotlib.__version__}


def _inputs_sentence(res) -> str:
    from ..vocabulary import MEASURE_TITLES

    name = MEASURE_TITLES.get(res.measure, res.measure)
    ins = [x.inputs for x in res.studies]
    if ins and all("events_treat" in i and "n_treat" in i for i in ins):
        return (f"{name}s were computed per trial from the arm counts (0.5 added to every cell of a trial "
                f"with a zero cell, as metafor's escalc)")
    if ins and all("mean_treat" in i for i in ins):
        return f"{name}s were computed per trial from the arm means, SDs and sizes"
    if ins and all("time_treat" in i for i in ins):
        return f"{name}s were computed per trial from the events and person-time of each arm"
    return f"The trials' reported effects ({name}) and their standard errors were used"


def methods_paragraph(res, analysis, posterior=None) -> str:
    """The settings used, in words, for the report (generated, not written by hand).

    ``posterior``: the BayesResult shown beside the frequentist analysis, whose priors are named."""
    spec = analysis.spec
    v = _versions()
    model = {"FE": "a common-effect model with inverse-variance weights",
             "MH": "a common-effect Mantel-Haenszel model", "PETO": "Peto's one-step method"}.get(
        res.method, f"a random-effects model with inverse-variance weights, tau² estimated by {res.method}")
    ci = ("the Hartung-Knapp-Sidik-Jonkman method (t on k - 1 df)" if res.ci_method == "hksj"
          else "the normal (Wald) approximation")
    pi = ("a t distribution on k - 2 df (Higgins, Thompson & Spiegelhalter 2009)" if res.pi_method == "t"
          else "the normal quantile")
    text = (f"{_inputs_sentence(res)} and pooled with {model}. The 95% CI of the mean used {ci}; the 95% "
            f"prediction interval used {pi}; the tau² CI is the Q-profile interval. Heterogeneity is "
            f"reported as Cochran's Q and I² = (Q - df)/Q. ")
    if spec.model_reason:
        text += f"Why these settings: {' '.join(spec.model_reason.split())} "
    if posterior is not None:
        pr = posterior.prior
        text += (f"The Bayesian random-effects analysis ({posterior.engine}; the model of R's bayesmeta) used a "
                 f"{pr['tau_prior']} prior on tau and a N({pr['mu_prior_mean']:g}, {pr['mu_prior_sd']:g}²) prior "
                 f"on mu ({'log ' if res.is_ratio else ''}{res.measure} scale). ")
    text += (f"Computed with hatmeta {v['hatmeta']} (NumPy {v['numpy']}, SciPy {v['scipy']}, "
             f"matplotlib {v['matplotlib']}); the engine is validated against R's metafor 3.8.")
    return text


def render_analysis(name, out: Path, data_dir=None, analyses_dir=None) -> Rendered:
    """Pool one analysis and write its figures, tables and JSON under ``out``.

    Everything written is made from the result rounded by the output policy (hatmeta/precision.py):
    JSON, tables, pages and the coordinates figures draw, whose record is written beside each figure
    as ``figures/<figure>.data.json``."""
    from ..precision import dumps, quantised
    from ..render import plots, tables
    from .api import pool_analysis

    try:
        res, analysis = pool_analysis(name, data_dir=data_dir, analyses_dir=analyses_dir, small_study=None)
    except InputError as exc:
        from .spec import read_spec, spec_path

        try:
            title = read_spec(spec_path(name, analyses_dir)).title
        except InputError:
            title = name
        tsa_files, tsa_html = _tsa(name, out, data_dir, analyses_dir)
        return Rendered(name, title, None, None, exc.message, tsa_files, tsa_html=tsa_html,
                        gaps=tuple(getattr(exc, "gaps", ())), published=tuple(getattr(exc, "published", ())))
    full, res = res, quantised(res)
    spec = analysis.spec
    labels = (spec.experimental_label, spec.control_label)
    files = []
    (out / "figures").mkdir(parents=True, exist_ok=True)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "results").mkdir(parents=True, exist_ok=True)
    from .appraisal import risk_of_bias_of

    _figure(plots.forest(res, benefit=spec.benefit, labels=labels, title=spec.title,
                         risk_of_bias=risk_of_bias_of(res)), out, f"{name}-forest", files)
    if res.k >= 3:
        from ..fit.effects import escalc
        from ..methods.publication_bias import egger

        es = escalc(analysis.table, res.measure)
        _figure(plots.funnel(res, quantised(egger(es)), title=spec.title, filled=res.extra.get("trim_fill")),
                out, f"{name}-funnel", files)
    if "influence" in res.extra and res.k >= 3:
        from ..render.plots.influence import baujat

        _figure(baujat(res, title=spec.title), out, f"{name}-baujat", files)
    if res.k >= 3:  # the sensitivity sequences as pictures: cumulative by year and leave-one-out
        from ..api import pool_table
        from ..render.plots.sensitivity import sensitivity_forest

        seq = quantised(pool_table(analysis.table, res.measure, method=res.method, ci=res.ci_method, pi=res.pi_method,
                                   cumulative="year", leave_one_out=True))
        years = dict(zip(analysis.table.studies, analysis.table.column("year")))
        for kind, stem in (("cumulative", "cumulative"), ("leave_one_out", "leave-one-out")):
            _figure(sensitivity_forest(seq, kind, benefit=spec.benefit, labels=labels, title=spec.title,
                                       order_by="year" if kind == "cumulative" else None,
                                       keys=years if kind == "cumulative" else None),
                    out, f"{name}-{stem}", files)
    post = None
    if res.scale == "log":
        from ..api import pool_bayes

        post, _ = pool_bayes(full, benefit=spec.benefit)
        post = quantised(post)
        _figure(plots.forest(res, benefit=spec.benefit, labels=labels, title=spec.title, bayes=post.to_dict()),
                out, f"{name}-forest-bayes", files)
        _figure(plots.posterior(post, res.measure, res.scale, title=spec.title), out, f"{name}-posterior", files)
        path = out / "results" / f"{name}-bayes.json"
        path.write_text(dumps(post.to_dict()) + "\n")
        files.append(path)
    for fmt, ext in TABLE_FORMATS.items():
        path = out / "tables" / f"{name}.{ext}"
        path.write_text(tables.result_table(res, fmt, labels, caption=spec.title))
        files.append(path)
    path = out / "results" / f"{name}.json"
    path.write_text(dumps(res.to_dict()) + "\n")
    files.append(path)
    tsa_files, tsa_html = _tsa(name, out, data_dir, analyses_dir)
    return Rendered(name, spec.title, res, analysis, None, tuple(files) + tsa_files, post, tsa_html=tsa_html)


def _tsa(name, out, data_dir, analyses_dir):
    """(files, HTML) of the analysis's trial sequential analysis, or ((), "") when its spec asks for none."""
    done = render_tsa(name, out, data_dir, analyses_dir, figure=_figure)
    return done if done is not None else ((), "")


def _figure(fig, out: Path, stem: str, files: list):
    """Round what ``fig`` draws, save it in every format and write its record (``.data.json``)."""
    from ..precision import dumps
    from ..render import plots
    from ..render.figdata import drawn

    record = drawn(fig)
    for fmt in FIGURE_FORMATS:
        files.append(plots.save(fig, out / "figures" / f"{stem}.{fmt}"))
    path = out / "figures" / f"{stem}{SIDECAR}"
    path.write_text(dumps(record, indent=False) + "\n")  # compact: the bands of a funnel have many corners
    files.append(path)
    _close(fig)


def _close(fig):
    from ..render.plots.style import pyplot

    pyplot().close(fig)


def _section(r: Rendered, out: Path) -> str:
    e = html.escape
    if r.refused:
        from .reconciliation import gaps_html, reconciliation_html

        return (f'<h2 id="{e(r.name)}">{e(r.title)}</h2>\n<p class="refused">Not pooled: {e(r.refused)}</p>\n'
                + reconciliation_html(None, r.published) + gaps_html(r.gaps) + r.tsa_html)
    from ..render import tables

    res, analysis = r.result, r.analysis
    spec = analysis.spec
    parts = [f'<h2 id="{e(r.name)}">{e(r.title)}</h2>', _inline_svg(out / "figures" / f"{r.name}-forest.svg"),
             tables.result_table(res, "html", (spec.experimental_label, spec.control_label)),
             f"<p><b>Methods.</b> {e(methods_paragraph(res, analysis, r.posterior))}</p>"]
    funnel = out / "figures" / f"{r.name}-funnel.svg"
    if funnel.exists():
        # Cochrane Handbook 13.3.5.4: tests for funnel asymmetry only with at least 10 studies.
        caution = (f" With {res.k} trials the funnel plot and Egger's test have little power to detect "
                   "small-study effects (the Cochrane Handbook, 13.3.5.4, asks for at least 10)."
                   if res.k < 10 else "")
        parts.append(f"<p><b>Small-study effects.</b> {e(funnel_caption(res.k))}{e(caution)}</p>\n"
                     + _inline_svg(funnel, narrow=True))
    robust = _robustness_section(r, out)
    if robust:
        parts.append(robust)
    cumulative = out / "figures" / f"{r.name}-cumulative.svg"
    if cumulative.exists():
        parts.append("<p><b>Sensitivity.</b> Cumulative meta-analysis (trials added in order of publication) "
                     "and leave-one-out analysis (each trial omitted in turn), same model.</p>\n"
                     + _inline_svg(cumulative) + _inline_svg(out / "figures" / f"{r.name}-leave-one-out.svg"))
    if r.posterior is not None:
        parts.append(_bayes_section(r, out))
    from .reconciliation import gaps_html, reconciliation_html

    parts += [reconciliation_html(res, res.extra.get("published", ())), gaps_html(res.extra.get("gaps", ())),
              r.tsa_html]
    notes = [n for n in res.notes]
    if notes:
        parts.append('<p class="note"><b>Notes (trials left out, derived figures, definitions):</b></p>'
                     '<ul class="note">'
                     + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>")
    links = " · ".join(f'<a href="{e(str(p.relative_to(out)))}">{e(p.name)}</a>' for p in r.files)
    parts.append(f'<p class="note">Files: {links}</p>')
    return "\n".join(parts) + "\n"


def funnel_caption(k: int) -> str:
    """What the funnel figure shows: Egger's line is named only when drawn (render/plots/funnel.py)."""
    from ..render.plots.funnel import MIN_K_LINE

    if k >= MIN_K_LINE:
        return "Contour-enhanced funnel plot with Egger's regression line."
    return f"Contour-enhanced funnel plot (Egger's regression line is drawn from {MIN_K_LINE} trials on: not drawn)."


def _bayes_section(r: Rendered, out: Path) -> str:
    """Posterior summary, probability statements and figures of the exact Bayesian analysis."""
    e = html.escape
    res, post = r.result, r.posterior
    n = res.natural
    rows = [[label, f"{n(s.median):.2f}", f"{n(s.low):.2f} to {n(s.high):.2f}"]
            for label, s in (("Pooled effect (mu)", post.mu), ("A new trial (prediction)", post.prediction))]
    rows.append(["Between-trial SD (tau)", f"{post.tau.median:.2f}", f"{post.tau.low:.2f} to {post.tau.high:.2f}"])
    table = ("<table><caption>Bayesian random-effects analysis (exact; " + e(post.prior["tau_prior"])
             + f" prior on tau, N({post.prior['mu_prior_mean']:g}, {post.prior['mu_prior_sd']:g}²) on mu)</caption>"
             "<thead><tr><th></th><th>Posterior median</th><th>95% credible interval</th></tr></thead><tbody>"
             + "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows)
             + "</tbody></table>")
    p = post.probabilities
    text = (f"<p>Probability that HAT is better than the control on this outcome (mu on the side of benefit): "
            f"{p['p_favours_treatment']:.3f}; that a new trial would find it better: "
            f"{p['p_prediction_favours_treatment']:.3f}.</p>")
    return "\n".join([table, text, _inline_svg(out / "figures" / f"{r.name}-forest-bayes.svg"),
                      _inline_svg(out / "figures" / f"{r.name}-posterior.svg", narrow=True)])


def _inline_svg(path: Path, narrow=False) -> str:
    """An SVG file as inline SVG in HTML5 (XML prolog and doctype dropped)."""
    import re

    svg = path.read_text()
    svg = svg[svg.index("<svg"):]
    # Figures' text is 7 to 8 pt: shown at twice its size in points as pixels (8 pt -> 16 px, the body
    # text's size). A figure wider than the column shrinks to it (CSS max-width, the viewBox keeps it
    # sharp: SVG is drawn as vectors at any size), with links to the full-size files under it.
    m = re.match(r'<svg[^>]*? width="([\d.]+)pt" height="([\d.]+)pt"', svg)
    if m:
        w, h = (float(v) for v in m.groups())
        svg = svg.replace(m.group(0), m.group(0).replace(f'width="{m.group(1)}pt" height="{m.group(2)}pt"',
                                                         f'width="{2 * w:.2f}px" height="{2 * h:.2f}px"'), 1)
    full = " · ".join(f'<a href="figures/{html.escape(f.name)}">{f.suffix[1:].upper()}</a>'
                      for f in (path, path.with_suffix(".png"), path.with_suffix(".pdf")) if f.exists())
    full = f'<p class="full">Full size: {full}</p>' if full else ""
    return f'<div class="figure{" narrow" if narrow else ""}">{svg}{full}</div>'


def _page(title, body) -> str:
    return ('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(title)}</title>\n"
            f"<style>{CSS}</style>\n</head>\n<body>\n{body}</body>\n</html>\n")


def build_report(out="reports", data_dir=None, analyses_dir=None, progress=None) -> list:
    """Render every analysis into ``out`` and write the index, SoF table and manifest; return the files.

    ``progress(i, n, name)``, if given, is called before analysis i (1-based) of n is rendered."""
    from .transaction import carry_over, staging_folder, swap_in

    # Built in a fresh folder beside ``out`` and swapped in whole: a failure midway leaves ``out`` as it was,
    # and nothing is written through a symbolic link a cloned ``out`` may hold.
    final = Path(out)
    out = staging_folder(final)
    try:
        files = _build_report(out, data_dir, analyses_dir, progress)
        try:
            generated = set(read_manifest(final)) if final.is_dir() else set()
        except InputError:
            generated = set()
        carry_over(final, out, generated)
        swap_in(out, final)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    return [final / Path(p).relative_to(out) for p in files]


def _build_report(out: Path, data_dir, analyses_dir, progress) -> list:
    from . import list_analyses
    from .sof import sof_table, summary_rows

    names = sorted(list_analyses(analyses_dir))
    if not names:
        raise InputError("no analyses to report", file=str(analyses_dir or "analyses"))
    rendered = []
    for i, n in enumerate(names, 1):
        if progress is not None:
            progress(i, len(names), n)
        rendered.append(render_analysis(n, out, data_dir, analyses_dir))
    files = [p for r in rendered for p in r.files]
    sof_rows = summary_rows([(r.result, r.analysis) for r in rendered if r.result is not None],
                                   [(r.name, r.refused) for r in rendered if r.result is None],
                                   data_dir=data_dir, analyses_dir=analyses_dir)
    for fmt, ext in (("markdown", "md"), ("csv", "csv"), ("html", "html")):
        path = out / f"sof.{ext}"
        table = sof_table(sof_rows, fmt)
        # sof.html is a page of its own (styled, with a way back), not a fragment of the index.
        path.write_text(_page("Summary of findings", f'<p><a href="index.html">All analyses</a></p>\n{table}')
                        if fmt == "html" else table)
        files.append(path)
    sections = {r.name: _section(r, out) for r in rendered}
    for r in rendered:
        path = out / f"{r.name}.html"
        path.write_text(_page(r.title, f'<p><a href="index.html">All analyses</a></p>\n{sections[r.name]}'))
        files.append(path)
    toc = "".join(f'<li><a href="#{html.escape(r.name)}">{html.escape(r.title)}</a>'
                  f'{" (not pooled)" if r.refused else ""}</li>' for r in rendered)
    networks = render_networks(out, data_dir, analyses_dir)  # analyses/networks/*.toml, a page each
    for name, title, page_files in networks:
        files += page_files
        toc += f'<li><a href="{html.escape(name)}.html">{html.escape(title)}</a> (network)</li>'
    from .multivariate import render_multivariate

    for name, title, page_files in render_multivariate(out, data_dir, analyses_dir):  # analyses/multivariate/
        files += page_files
        toc += f'<li><a href="{html.escape(name)}.html">{html.escape(title)}</a> (multivariate)</li>'
    index = ("<h1>hatmeta: heroin-assisted treatment, randomised trials</h1>\n"
             "<p>Every analysis in <code>analyses/</code>, pooled from the extraction in <code>data/extracted/</code>. "
             "Regenerate with <code>hatmeta report</code>; check with <code>hatmeta reproduce</code>.</p>\n"
             f"<ul>{toc}</ul>\n<h2>Summary of findings</h2>\n{sof_table(sof_rows, 'html')}"
             + "".join(sections[n] for n in names))
    path = out / "index.html"
    path.write_text(_page("hatmeta report", index))
    files.append(path)
    write_manifest(out, files)
    return files


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(out: Path, files) -> Path:
    lines = sorted(f"{_sha256(Path(p))}  {Path(p).relative_to(out).as_posix()}" for p in files)
    path = out / MANIFEST
    path.write_text("\n".join(lines) + "\n")
    return path


def read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.exists():
        raise InputError("no manifest: run 'hatmeta report' first", file=str(path))
    entries = {}
    for i, line in enumerate(path.read_text().splitlines(), 1):
        digest, _, name = line.partition("  ")
        if not name:
            raise InputError("malformed manifest line", file=str(path), line=i)
        entries[name] = digest
    return entries


@dataclass(frozen=True)
class Verdict:
    """What ``reproduce`` found: the level (a, b or c), the environment's differences from the
    lock, and each output that is not byte-identical."""

    level: str
    environment: tuple
    findings: tuple
    lock: str | None
    kept: str | None = None

    @property
    def exit_code(self) -> int:
        from .verdict import EXIT

        return EXIT[self.level]

    def to_dict(self) -> dict:
        return {"level": self.level, "exit_code": self.exit_code, "lock": self.lock,
                "environment": list(self.environment), "kept": self.kept,
                "files": [f.to_dict() for f in self.findings]}


def find_lock(reports: Path):
    """The lock file beside the reports folder (the repository root), or in the working folder."""
    from .verdict import LOCK

    for folder in (Path(reports).resolve().parent, Path.cwd()):
        if (folder / LOCK).exists():
            return folder / LOCK
    return None


def reproduce(reports="reports", data_dir=None, analyses_dir=None, keep=None, lock=None, progress=None) -> Verdict:
    """Regenerate every output (in ``keep`` if given, else a temporary folder) and compare it with
    ``reports``: level (a) byte-identical, (b) numbers within tolerance and figures drawn from the
    same numbers, (c) a number differs (see render/verdict.py). The installed package versions are
    compared with the lock file first."""
    from .verdict import compare, environment_differences, level

    reports = Path(reports)
    committed = read_manifest(reports)
    lock = Path(lock) if lock else find_lock(reports)
    env = tuple(environment_differences(lock)) if lock else ()
    if keep:
        tmp = Path(keep)
        if tmp.exists() and any(tmp.iterdir()):
            raise InputError("the folder for --keep must be new or empty", column="--keep")
    else:
        tmp = Path(tempfile.mkdtemp(prefix="hatmeta-reproduce-"))
    try:
        build_report(tmp, data_dir, analyses_dir, progress=progress)
        findings = tuple(compare(reports, tmp, committed, read_manifest(tmp)))
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return Verdict(level(findings), env, findings, str(lock) if lock else None, str(tmp) if keep else None)


__all__ = ["build_report", "reproduce", "methods_paragraph", "Verdict"]


def _robustness_section(r, out: Path) -> str:
    """The analyses the spec's [robustness] asks for (small-study tests, PET-PEESE, trim-and-fill, the
    selection model, influence), as text with their warnings, and the Baujat plot."""
    from ..summary import robustness_lines

    lines = robustness_lines(r.result)
    if not lines:
        return ""
    e = html.escape
    html_ = ("<p><b>Small-study effects, publication bias and influence</b> (as the analysis spec asks; "
             "ratios on the natural scale).</p>\n<pre>" + e("\n".join(lines).strip("\n")) + "</pre>")
    warnings = [w for w in (getattr(v, "warning", None) for v in r.result.extra.values()) if w]
    if warnings:
        html_ += '<ul class="note">' + "".join(f"<li>{e(w)}</li>" for w in warnings) + "</ul>"
    baujat = out / "figures" / f"{r.name}-baujat.svg"
    if baujat.exists():
        html_ += "\n" + _inline_svg(baujat, narrow=True)
    return html_


def render_networks(out: Path, data_dir=None, analyses_dir=None) -> list:
    """A page per network spec (analyses/networks/*.toml): the network graph, the forest plot against the
    reference, the league table and rankings, inconsistency, the trials in and out and the transitivity
    assumptions. Returns [(name, title, files)]; results/<name>-nma.json holds the numbers."""
    from ..precision import dumps
    from ..render.plots.network import network_forest, network_graph
    from .network import list_networks, network_text, pool_network
    from .network_heat import heat_section

    done = []
    for name in list_networks(analyses_dir):
        files: list = []
        try:
            res, an = pool_network(name, data_dir=data_dir, analyses_dir=analyses_dir)
        except InputError as exc:
            body = f'<p class="refused">Not pooled: {html.escape(exc.message)}</p>'
            title = name
        else:
            title = an.spec.title
            (out / "figures").mkdir(parents=True, exist_ok=True)
            (out / "results").mkdir(parents=True, exist_ok=True)
            _figure(network_graph(res, title=None), out, f"{name}-graph", files)
            _figure(network_forest(res, title=None), out, f"{name}-forest", files)
            path = out / "results" / f"{name}-nma.json"
            path.write_text(dumps(res.to_dict()) + "\n")
            files.append(path)
            e = html.escape
            body = (f"<p>{e(' '.join(an.spec.description.split()))}</p>\n"
                    + _inline_svg(out / "figures" / f"{name}-graph.svg", narrow=True) + "\n"
                    + _inline_svg(out / "figures" / f"{name}-forest.svg") + "\n"
                    + res._repr_html_() + "\n"
                    + f"<pre>{e(network_text(an))}</pre>\n"
                    + heat_section(res, out, name, _figure, _inline_svg, files)
                    + "<p>What the network adds to the pairwise primary analysis (<a href=\"retention.html\">"
                      "retention</a>): the arms that multi-arm trials randomised beside heroin and methadone enter "
                      "with their own information, and each comparison is estimated from direct and indirect "
                      "evidence (the node-splitting table above).</p>\n")
        files.append(standalone_page(out, name, title, body))
        done.append((name, title, files))
    return done


def standalone_page(out: Path, name: str, title: str, body: str) -> Path:
    """Write ``out/<name>.html``: a page of its own (the way back to the index, the title, ``body``)."""
    page = out / f"{name}.html"
    page.write_text(_page(title, f'<p><a href="index.html">All analyses</a></p>\n<h2>{html.escape(title)}</h2>\n'
                                 + body))
    return page


def render_tsa(name, out, data_dir=None, analyses_dir=None, figure=None):
    """For the report: the TSA of analysis ``name`` if its spec has a [tsa] table, else None.

    Writes figures/<name>-tsa.* (through ``figure(fig, out, stem, files)``, the report's saver, so the
    output-precision policy and the figure record apply) and results/<name>-tsa.json under ``out``;
    returns (files, HTML section)."""
    import html
    from pathlib import Path

    from ..precision import dumps
    from ..render.plots.tsa import tsa_plot
    from .api import tsa_analysis
    from .spec import read_spec, spec_path

    out = Path(out)
    if "tsa" not in read_spec(spec_path(name, analyses_dir)).raw:
        return None
    try:
        res, spec, _ = tsa_analysis(name, data_dir=data_dir, analyses_dir=analyses_dir)
    except InputError as exc:
        return (), f'<p class="refused">Trial sequential analysis not run: {html.escape(exc.message)}</p>\n'
    (out / "figures").mkdir(parents=True, exist_ok=True)
    (out / "results").mkdir(parents=True, exist_ok=True)
    files: list = []
    if figure is not None:
        figure(tsa_plot(res, title=spec.title), out, f"{name}-tsa", files)
    path = out / "results" / f"{name}-tsa.json"
    path.write_text(dumps(res.to_dict()) + "\n")
    files.append(path)
    e = html.escape
    inflated = res.required_information_size_inflated
    text = (f"<p><b>Trial sequential analysis.</b> Required information size {res.required_information_size:,} "
            f"participants (D² {100 * res.diversity:.0f}%"
            + (f"; {inflated:,} for the sequential design" if inflated else "")
            + f"), accrued {res.accrued_information:,}. {e(res.sentence)}</p>")
    svg = out / "figures" / f"{name}-tsa.svg"
    body = svg.read_text() if svg.exists() else ""
    fig_html = _inline_svg(svg) if body else ""
    return tuple(files), text + "\n" + fig_html + "\n"
