"""The catalogue as text: the listing and one recipe's page (``python -m lightning_optim_recipes recipes [NAME]``).

A page shows the citation, the recipe as YAML (what ``optim_recipe: {recipe: NAME}`` starts from), every number with
where the source states it and its words, the choices and notes, and what the engine computed for the preview (the
lr scaled by the batch, milestones scaled to the run); the command line adds the schedule table or plot.
"""

from __future__ import annotations

import contextlib
import logging
import re
import textwrap
from collections.abc import Iterator, Mapping
from typing import Any, Optional

from lightning_optim_recipes.catalogue import REGISTRY, RecipeEntry

__all__: list[str] = []

#: Where the listing tells how to see one recipe.
SHOW_ONE = "python -m lightning_optim_recipes recipes NAME"
#: The width the page's prose is wrapped to.
WIDTH = 118


def listing() -> str:
    """Every recipe's name and one-line description, one per line, under a header.

    Example:
        >>> print(listing().splitlines()[1])
          bert-finetune       BERT fine-tuning: AdamW 5e-5 (of 5e-5, 3e-5, 2e-5), decay 0.01 but not on biases and LayerNorm, 10% warm-up, linear to 0
    """
    names = sorted(REGISTRY)
    width = max(len(name) for name in names)
    lines = [f"{len(names)} recipes ({SHOW_ONE} shows one):"]
    lines += [f"  {name.ljust(width)}  {REGISTRY[name].summary}" for name in names]
    return "\n".join(lines) + "\n"


def page(entry: RecipeEntry, computed: Optional[list[str]] = None, sizes: str = "") -> str:
    """One recipe's page: its summary, citation, recipe, numbers, choices, notes and the other sources cited; then
    `sizes` (the run previewed) and `computed`, what the engine said while building the preview."""
    lines = _wrap(f"{entry.name}: {entry.summary}", "", "  ") + _wrap(f"source: {entry.source.citation()}", "", "  ")
    lines += ["", f"recipe (optim_recipe: {{recipe: {entry.name}}} starts from it):"]
    lines += [f"  {line}" for line in yaml_lines(entry.recipe)]
    if entry.numbers:
        lines += ["", "numbers, with where the source states them and its words:"]
        for what, where, words in entry.numbers:
            lines += _wrap(what, "  - ", "    ") + _wrap(f"{where}: \"{words}\"", "    ", "      ")
    for title, items in (("choices, where the source leaves a value open:", entry.choices), ("notes:", entry.notes)):
        if items:
            lines += ["", title] + [line for item in items for line in _wrap(item, "  - ", "    ")]
    if entry.also:
        lines += ["", "also cited:"] + [line for source in entry.also
                                        for line in _wrap(source.citation(), "  - ", "    ")]
    if sizes or computed:
        lines += ["", f"schedule preview: {sizes}" if sizes else "schedule preview:"]
        lines += [f"  {message}" for message in computed or ()]
    return "\n".join(lines) + "\n"


def _wrap(text: str, first: str, rest: str) -> list[str]:
    return textwrap.wrap(text, width=WIDTH, initial_indent=first, subsequent_indent=rest, break_long_words=False,
                         break_on_hyphens=False)


@contextlib.contextmanager
def engine_messages() -> Iterator[list[str]]:
    """Collect what the engine says (the lr it scaled, the milestones it placed) while the block runs."""
    log = logging.getLogger("lightning_optim_recipes")
    messages: list[str] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler, saved = _Keep(logging.INFO), (log.level, log.propagate)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        yield messages
    finally:
        log.removeHandler(handler)
        log.setLevel(saved[0])
        log.propagate = saved[1]


def yaml_lines(mapping: Mapping[str, Any], indent: str = "") -> list[str]:
    """`mapping` as block YAML, with short mappings and lists in flow style (what a config file would hold).

    Example:
        >>> print("\\n".join(yaml_lines({"lr": 5e-05, "optimizer_kwargs": {"betas": [0.9, 0.999]}})))
        lr: 5.0e-05
        optimizer_kwargs: {betas: [0.9, 0.999]}
    """
    lines = []
    for key, value in mapping.items():
        if isinstance(value, Mapping) and len(f"{indent}{key}: {_flow(value)}") > 100:
            lines.append(f"{indent}{key}:")
            lines += yaml_lines(value, indent + "  ")
        else:
            lines.append(f"{indent}{key}: {_flow(value)}")
    return lines


def _flow(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        text = repr(value)  # YAML 1.1 (PyYAML) reads an exponent as a float only after a dot: 5.0e-05
        return re.sub(r"^(-?\d+)e", r"\1.0e", text)
    if isinstance(value, str) and not re.fullmatch(r"[A-Za-z_][\w.\-]*", value):
        return "'" + value.replace("'", "''") + "'"
    return str(value)
