"""
A living update: add a trial, see what changed
==============================================

A living review adds each new trial as it is published. ``hatmeta add-trial`` takes the new
trial's rows in the extraction's three layouts, checks the whole would-be extraction, appends
atomically and says which analyses the trial enters (and which not, with the criterion).
``hatmeta pool ANALYSIS --compare REF`` then sets the result before and after side by side: k,
trials entered or left, estimate, CI, tau², I², prediction interval, and any conclusion that
crossed a line. ``REF`` is a git revision (``--compare HEAD~1``) or a result saved with
``--format json``, as here.

The trial below is **fictional** (``fict2026``), made up to show the mechanics. Everything
happens in a temporary copy of ``data/extracted/`` and ``analyses/``; the repository's
extraction is never touched.
"""

# %%
# A private copy of the extraction
# --------------------------------
# ``--data-dir`` points every command at the copy; the analysis specs are found beside it
# (``<copy>/analyses``).
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# The repository: the nearest folder above the working directory holding the hatmeta package
# (sphinx-gallery runs each example from docs/examples/).
ROOT = next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "hatmeta" / "__init__.py").is_file())
work = Path(tempfile.mkdtemp(prefix="hatmeta-living-"))
shutil.copytree(ROOT / "data" / "extracted", work / "data" / "extracted")
shutil.copytree(ROOT / "analyses", work / "analyses")
data_dir = str(work / "data" / "extracted")


def run(*args: str) -> str:
    """Run ``hatmeta --data-dir COPY ARGS`` and return its standard output."""
    done = subprocess.run([sys.executable, "-m", "hatmeta.cli", "--data-dir", data_dir, *args],
                          cwd=work, capture_output=True, text=True, check=True)
    if done.stderr:
        print(done.stderr, file=sys.stderr)
    return done.stdout


# %%
# Save today's result
# -------------------
before = work / "retention-before.json"
before.write_text(run("pool", "retention", "--format", "json"))
print(run("pool", "retention").split("\n\n")[0])

# %%
# The new trial's rows
# --------------------
# One row for ``trials.csv``, its two arms for ``arms.csv`` and the retention counts for
# ``outcomes.csv``, in the layouts ``data/extracted/README.md`` describes. Each figure names its
# source and whether it was reported or derived.
new = work / "new"
new.mkdir()
(new / "trials.csv").write_text(
    "trial,short_name,country,sites,authors,journal,year,volume,pages,doi,pmid,registry,blinding,"
    "hypothesis,route,n_randomised,followup_weeks,itt,source,notes\n"
    'fict2026,FICT,Utopia,one clinic,"Doe J, Roe R",Fictional J,2026,1,1-10,,,,open,superiority,'
    "injected,160,52,yes,fictional example for the documentation,not a real trial\n")
(new / "arms.csv").write_text(
    "trial,arm,description,role,n_randomised,source,note\n"
    "fict2026,dam,supervised injected heroin plus oral methadone,experimental,80,fictional,\n"
    "fict2026,mmt,oral methadone,control,80,fictional,\n")
(new / "outcomes.csv").write_text(
    "trial,outcome,definition,arm,timepoint_weeks,n,events,mean,sd,count,person_time,source,status,"
    "derivation,note\n"
    "fict2026,retention,retained in assigned treatment at 12 months,dam,52,80,60,,,,,fictional,"
    "reported,,\n"
    "fict2026,retention,retained in assigned treatment at 12 months,mmt,52,80,45,,,,,fictional,"
    "reported,,\n")

# %%
# Add it
# ------
# The command validates first (every problem as ``file:line: column: message``), then appends and
# reports, for every analysis, whether the trial enters it.
print(run("add-trial", "--from", str(new)))

# %%
# What changed
# ------------
# The saved result against today's: the new trial enters, k grows by one, and the table says
# whether any conclusion crossed a line (significance, the direction, the prediction interval).
print(run("pool", "retention", "--compare", before.name))  # a path relative to the copy
after = json.loads(run("pool", "retention", "--format", "json"))
assert after["k"] == json.loads(before.read_text())["k"] + 1  # the page fails to build otherwise

# %%
# The cumulative meta-analysis by year shows the same history trial by trial.
print(run("pool", "retention", "--cumulative", "year").split("Notes")[0])

shutil.rmtree(work)  # the copy goes; the repository's data/extracted/ was never written
