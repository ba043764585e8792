"""Sphinx configuration for skflow's documentation."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))
import skflow  # noqa: E402

project = "skflow"
author = "skflow developers"
copyright = "2026, skflow developers"
version = release = skflow.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    # MathJax from a local copy (sphinx-mathjax-offline), not a CDN: maths
    # renders without internet.
    "sphinx-mathjax-offline",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "matplotlib.sphinxext.plot_directive",
    # The overview and benchmark pages are Markdown (the tables benchmarks/report.py writes).
    "myst_parser",
]

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# scikit-learn's own docstrings (set_output, metadata routing, ...) follow
# their own cross-reference conventions; do not validate cross-refs.
numpydoc_xref_param_type = False

intersphinx_mapping = {}  # offline builds: no inventories fetched

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"(gas_experiment|audio_outliers)\.py",
    "download_all_examples": False,
    "remove_config_comments": True,
    # The timing pages are written into docs/ on every build; off, so that a
    # build leaves the checkout clean.
    "write_computation_times": False,
}

plot_include_source = True
plot_html_show_source_link = False
plot_formats = [("png", 100)]

templates_path = []
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py", "auto_examples/*.zip"]
html_theme = "alabaster"
html_theme_options = {"description": "Normalizing flows as scikit-learn estimators", "fixed_sidebar": True,
                      "page_width": "1100px"}
html_static_path = ["_static"]
html_css_files = ["skflow.css"]
suppress_warnings = ["config.cache"]


def _skip_metadata_requests(app, what, name, obj, skip, options):
    # scikit-learn generates set_fit_request for estimators whose fit takes
    # metadata (MAFDensity's groups); its docstring cross-references
    # scikit-learn's own site, which an offline build cannot resolve.
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return skip


def setup(app):
    app.connect("autodoc-skip-member", _skip_metadata_requests)
