"""Sphinx configuration for the airflow-provider-vbrain documentation (``make docs``)."""

from __future__ import annotations

import os
import sys
import warnings

from sphinx.deprecation import RemovedInSphinx10Warning

DOCS = os.path.dirname(os.path.abspath(__file__))

# Airflow reads AIRFLOW_HOME when first imported and creates it if missing. autodoc imports the
# package, so give Airflow a throwaway home inside the (git-ignored) build folder, without its
# example DAGs and without its start-up chatter, before anything imports it.
os.environ.setdefault("AIRFLOW_HOME", os.path.join(DOCS, "_build", "airflow-home"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")

# sphinx-autodoc-typehints 3.6 still calls an API that Sphinx 9 deprecates, once per docstring.
# That is the plugin's business, not ours, and it would drown the build output.
warnings.filterwarnings("ignore", category=RemovedInSphinx10Warning, module="sphinx_autodoc_typehints")
sys.path.insert(0, os.path.dirname(DOCS))

from airflow_provider_vbrain import __version__  # noqa: E402

project = "airflow-provider-vbrain"
author = "airflow-provider-vbrain maintainers"
copyright = "2026, airflow-provider-vbrain maintainers"
version = release = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "sphinx_autodoc_typehints",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# autodoc: members in source order. The classes document their constructor's parameters in the
# class docstring, so the __init__ docstring (which would repeat them) is left out.
autoclass_content = "class"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True}
typehints_fully_qualified = False
always_document_param_types = False

html_theme = "furo"
html_title = f"airflow-provider-vbrain {release}"
