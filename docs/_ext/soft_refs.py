"""The default role for the docstrings' single backticks: a link when it names a documented object, else code.

The docstrings write `name` the Markdown way for three kinds of names: the library's objects (`RecipeError`),
parameters (`module_or_recipe`) and other libraries' objects (`LearningRateMonitor`). Sphinx's default role would
render all of them as italic "title references". This role makes each one a Python cross-reference, looked up from
the package root (``lightning_optim_recipes``) and the current class, and renders it as inline code without a link
when nothing documented has that name. Explicit roles (``:py:class:``, ``{py:func}``) and the types in signatures
stay strict: with ``nitpicky`` an unresolved one fails the build.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.domains.python import PyXRefRole

ROOT = "lightning_optim_recipes"


class SoftPyRef(PyXRefRole):
    """``py:obj`` that falls back to plain inline code instead of a missing-reference warning."""

    def __call__(self, name: str, rawtext: str, text: str, lineno: int, inliner: Any,
                 options: Any = None, content: Any = None) -> Any:
        # registered as the default role, not as py:obj: look the name up in the Python domain all the same
        return super().__call__("py:obj", rawtext, text, lineno, inliner, options or {}, content or [])

    def process_link(self, env: Any, refnode: nodes.Element, has_explicit_title: bool, title: str,
                     target: str) -> tuple[str, str]:
        title, target = super().process_link(env, refnode, has_explicit_title, title, target)
        refnode["lor_soft"] = True
        refnode["py:module"] = refnode.get("py:module") or ROOT
        # `plot_schedule()`, `scheduler.step()`: look up the name, show the text as written
        return title, target.removesuffix("()")


def _unresolved_as_code(app: Sphinx, env: Any, node: nodes.Element, contnode: nodes.Element) -> Any:
    if node.get("lor_soft"):
        return nodes.literal(contnode.astext(), contnode.astext())
    return None


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_role("py-soft", SoftPyRef(innernodeclass=nodes.literal))
    # before Sphinx's own builtin resolver (900): a soft `int` becomes code, never a warning
    app.connect("missing-reference", _unresolved_as_code, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
