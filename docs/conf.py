"""Sphinx configuration: ``make docs`` builds docs/_build/html with warnings as errors (see docs/README.md)."""

import logging
import os
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "_ext"))

import lightning_optim_recipes  # noqa: E402  (the installed, editable package: what autodoc documents)

project = "lightning_optim_recipes"
author = "lightning_optim_recipes contributors"
copyright = "the lightning_optim_recipes contributors, Apache-2.0"
release = version = lightning_optim_recipes.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.autosummary",
    "myst_nb",
    "sphinx_copybutton",
    # local (docs/_ext): generated pages and the docstrings' default role
    "api_pages",
    "docstring_fixes",
    "recipe_catalogue",
    "notebook_sources",
    "soft_refs",
]

# --- sources -------------------------------------------------------------------------------------------------------
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "README.md",  # how to build the docs, for contributors
    "_generated/*.md",  # included by recipes.md, not pages of their own
    "notebooks/.ipynb_checkpoints", "**/.ipynb_checkpoints",
]
templates_path = []

# --- strictness: `-W --keep-going` in the Makefile makes every warning fail the build -----------------------------
nitpicky = True
# No network at build time, so no intersphinx inventories: references to other projects' objects cannot be checked.
# These are the only ones ignored (they appear in signatures and bases); every reference to this library is checked.
nitpick_ignore_regex = [
    ("py:.*", r"(torch|pytorch_lightning|lightning|lightning_fabric|matplotlib|pandas|numpy)(\..+)?"),
    # the standard library's, likewise without its inventory (builtins such as int and typing's names resolve)
    ("py:.*", r"(collections\.abc|os|pathlib|types|enum|dataclasses|abc|re|typing)\..+"),
    # torch's Optimizer as the base of `HybridOptimizer`: Sphinx 9 writes its "Bases:" reference unqualified
    ("py:class", r"Optimizer"),
]
# the docstrings' `single backticks`: a link when the name is documented, else inline code (docs/_ext/soft_refs.py)
default_role = "py-soft"

# --- API reference (docs/_ext/api_pages.py writes api/*.rst from __all__) -----------------------------------------
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"  # a return type only under "Returns:"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True  # `no_decay=DEFAULT_NO_DECAY`, not the rule's 600-character repr
autodoc_member_order = "bysource"
autodoc_inherit_docstrings = False  # hooks inherited from Lightning's Callback would bring its docstrings
autodoc_default_options = {"exclude-members": "__init__, __new__"}
autoclass_content = "class"
python_use_unqualified_type_names = True
python_display_short_literal_types = True
add_module_names = False
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True
autosummary_generate = False

# --- notebooks and executable pages (MyST-NB) ----------------------------------------------------------------------
nb_execution_mode = "force"  # always run: outputs show what the code does now, not what a cache remembers
nb_execution_timeout = 300
nb_execution_raise_on_error = True  # a failing cell fails the build
nb_execution_show_tb = True
nb_merge_streams = True
# A quiet build log: no "Executing notebook with kernel" line per notebook, and the notebooks' kernels (which read
# their IPython profile from IPYTHONDIR) without ipykernel's warning about local TCP sockets; history goes to _build.
logging.getLogger("traitlets").setLevel(logging.WARNING)
_IPYTHON = HERE / "_build" / "ipython"
(_IPYTHON / "profile_default").mkdir(parents=True, exist_ok=True)
(_IPYTHON / "profile_default" / "ipython_kernel_config.py").write_text('c.IPKernelApp.log_level = "ERROR"\n')
os.environ["IPYTHONDIR"] = str(_IPYTHON)
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# --- HTML ----------------------------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"lightning_optim_recipes {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = False
html_theme_options = {"navigation_with_keys": True}
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
