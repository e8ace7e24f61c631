"""Sphinx configuration for the hatmeta documentation.

Build (warnings are errors, as in CI: ``.ci/docs``)::

    sphinx-build -W --keep-going -b html docs docs/_build/html

The gallery (``docs/examples/``) is executed at build time by sphinx-gallery, so every number on
those pages is computed by the hatmeta in this tree, not pasted in.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # document (and run the gallery with) this tree's hatmeta
os.environ.setdefault("MPLBACKEND", "Agg")
# The gallery's subprocesses (the `hatmeta` command line) import the same tree.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

import hatmeta  # noqa: E402

project = "hatmeta"
author = "the hatmeta authors"
copyright = "2026, the hatmeta authors"
version = release = hatmeta.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "_templates", "examples", "auto_examples/*.ipynb", "auto_examples/*.py", "auto_examples/*.zip",
                    "auto_examples/*.md5", "auto_examples/*.codeobj.json", "**/sg_execution_times.rst"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# --- API reference: numpydoc over autodoc/autosummary -------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": False}
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types; signatures stay short
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()  # style is checked by ruff; the build checks the markup

# --- gallery: worked examples executed at build time --------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "capture_repr": ("_repr_html_", "__repr__"),
    "show_memory": False,
    "write_computation_times": False,
}

# --- HTML ---------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"hatmeta {release}"
html_static_path = ["_static"]
html_css_files = ["hatmeta.css"]
html_theme_options = {
    "navigation_depth": 2,
    "header_links_before_dropdown": 4,
    "show_toc_level": 2,
    # gallery pages print wide text tables: no right-hand sidebar there
    "secondary_sidebar_items": {"index": ["page-toc"], "guide/*": ["page-toc"], "api/**": ["page-toc"],
                                "changelog": ["page-toc"], "contributing": ["page-toc"], "auto_examples/*": []},
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_show_sourcelink = False
html_context = {"default_mode": "light"}
