"""The recipe catalogue page, generated from the library's registry at every build.

``recipes.md`` includes ``_generated/recipe_catalogue.md``, which this extension writes when the build starts: one
section per name from ``lightning_optim_recipes.list_recipes()``, with its description, its citation, the recipe
from ``get_recipe(name)`` as YAML and its schedule drawn by ``plot_schedule(preview_schedule(recipe, ...))``.
While the package has no ``list_recipes`` the page says so (a placeholder, no warning).

What the registry gives: ``list_recipes()`` a mapping ``{name: one line}`` (or a sequence of names, of
``(name, description)`` pairs or of objects with ``name``); ``get_recipe(name)`` the recipe dict that is previewed;
``describe_recipe(name)`` (when the package has it) the catalogue entry, whose ``source.citation()``, ``recipe``,
``numbers`` (what, where, the source's words), ``choices``, ``notes`` and ``also`` the page shows, and whose own
``preview_schedule()`` (its example model, sizes and batch) draws the plot. Without
``describe_recipe``, an object from ``get_recipe`` is read for the same attributes, and a dict's ``citation``,
``description`` and ``preview`` keys are read and left out of the recipe.

The run previewed is the recipe's own (``max_epochs``/``steps_per_epoch``) when it gives one, else sized to show
the schedule whole: an epoch schedule runs to ``t_max`` or a little past its last milestone, a step schedule
(``warmup_cosine``) over 10 epochs long enough for its warm-up to be a fifth of the run at most. A recipe that
needs a real module (``overrides``, several optimizers) and gives none is shown without a plot, with the
`RecipeError` that ``preview_schedule`` raised; a `RecipeWarning` from the preview is quoted under the plot.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import logging
import math
import re
import types
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Optional

from sphinx.application import Sphinx

PACKAGE = "lightning_optim_recipes"
OUT = "_generated"
PAGE = "recipe_catalogue.md"
IMAGES = "recipes"
META_KEYS = ("citation", "description", "preview")
STEP_SCHEDULERS = ("warmup_cosine",)


@dataclasses.dataclass
class Entry:
    name: str
    description: str
    citation: Optional[str]
    recipe: dict[str, Any]  # what is previewed
    shown: dict[str, Any]  # what the page prints
    max_epochs: Optional[int] = None
    steps_per_epoch: Optional[int] = None
    module: Any = None
    numbers: tuple[tuple[str, ...], ...] = ()
    choices: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    also: tuple[str, ...] = ()  # other sources cited
    previewer: Any = None  # the entry's own ``preview_schedule()``, when it has one (its model, sizes, batch)


def _listed(listed: Any) -> list[tuple[str, str]]:
    if isinstance(listed, Mapping):
        return [(str(name), str(description or "")) for name, description in listed.items()]
    pairs = []
    for item in listed:
        if isinstance(item, str):
            pairs.append((item, ""))
        elif isinstance(item, (tuple, list)):
            pairs.append((str(item[0]), str(item[1]) if len(item) > 1 else ""))
        else:
            pairs.append((str(item.name), str(getattr(item, "description", "") or "")))
    return pairs


def _citation(info: Any) -> Optional[str]:
    source = getattr(info, "source", None)
    cite = getattr(source, "citation", None) if source is not None else getattr(info, "citation", None)
    if callable(cite):
        cite = cite()
    return str(cite) if cite else (str(source) if source else None)


def _entry(name: str, description: str, got: Any, info: Any) -> Entry:
    """One section's content from ``get_recipe(name)`` and, if given, ``describe_recipe(name)``."""
    if isinstance(got, Mapping):
        recipe = {key: value for key, value in got.items() if key not in META_KEYS}
        preview = got.get("preview") or {}
        entry = Entry(name, str(got.get("description") or description), got.get("citation"), recipe,
                      {k: v for k, v in recipe.items() if k != "recipe"}, preview.get("max_epochs"),
                      preview.get("steps_per_epoch"))
    else:
        recipe = getattr(got, "recipe", None) or getattr(got, "config", None)
        if not isinstance(recipe, Mapping):
            raise TypeError(f"get_recipe({name!r}) returned {got!r}: expected a recipe dict, or an object whose"
                            " `recipe` (or `config`) is one. Update docs/_ext/recipe_catalogue.py to read it.")
        info = info if info is not None else got
        entry = Entry(name, str(getattr(got, "description", None) or description), None, dict(recipe),
                      dict(recipe), module=getattr(got, "module", None))
    if info is not None:
        entry.citation = _citation(info) or entry.citation
        entry.description = str(getattr(info, "summary", None) or getattr(info, "description", None)
                                or entry.description)
        if isinstance(getattr(info, "recipe", None), Mapping):
            entry.shown = dict(info.recipe)
        preview = getattr(info, "preview", None) or {}
        entry.max_epochs = preview.get("max_epochs", entry.max_epochs)
        entry.steps_per_epoch = preview.get("steps_per_epoch", entry.steps_per_epoch)
        entry.numbers = tuple(tuple(str(part) for part in row) for row in getattr(info, "numbers", ()) or ())
        entry.choices = tuple(str(choice) for choice in getattr(info, "choices", ()) or ())
        entry.notes = tuple(str(note) for note in getattr(info, "notes", ()) or ())
        entry.also = tuple(filter(None, (_citation(types.SimpleNamespace(source=source))
                                         for source in getattr(info, "also", ()) or ())))
        entry.module = getattr(info, "module", None) or entry.module
        entry.previewer = getattr(info, "preview_schedule", None) if callable(
            getattr(info, "preview_schedule", None)) else None
    return entry


def _sizes(entry: Entry) -> tuple[int, int]:
    """(max_epochs, steps_per_epoch) for the preview: the recipe's own, else long enough to show it whole."""
    scheduler = entry.recipe.get("scheduler") or {}
    kind = str(scheduler.get("type", ""))
    interval = scheduler.get("interval", "step" if kind in STEP_SCHEDULERS else "epoch")
    numbers = {key: value for key, value in scheduler.items() if isinstance(value, (int, float))
               and not isinstance(value, bool)}
    milestones = [m for m in scheduler.get("milestones", ()) if isinstance(m, (int, float))]
    max_epochs, steps_per_epoch = 20, 20
    if interval == "epoch":
        horizon = numbers.get("t_max") or numbers.get("T_max")
        if horizon:
            max_epochs = int(horizon)
        elif milestones:
            max_epochs = int(max(milestones) * 1.25) + 1
        elif "step_size" in numbers:
            max_epochs = int(numbers["step_size"] * 3)
    else:
        max_epochs = 10
        longest = max([numbers.get(k, 0) for k in ("warmup_steps", "t_max", "T_max", "step_size")] + milestones
                      + [0])
        steps_per_epoch = min(2000, max(20, math.ceil(longest * 5 / max_epochs)))
    return int(entry.max_epochs or max_epochs), int(entry.steps_per_epoch or steps_per_epoch)


def _as_yaml(recipe: Mapping[str, Any]) -> tuple[str, str]:
    try:
        import yaml

        return "yaml", yaml.safe_dump(dict(recipe), sort_keys=False, default_flow_style=None, width=100).strip()
    except Exception:  # a class or callable in the recipe: not YAML, shown as JSON with its repr
        return "json", json.dumps(recipe, indent=2, default=repr)


def _linked(text: str) -> str:
    return re.sub(r"(?<![<(])(https?://[^\s)>]+)", r"<\1>", text)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "recipe"


@contextlib.contextmanager
def _listening(package: Any) -> Iterator[tuple[list[str], list[Any]]]:
    """What the library logs at INFO (the lr it scaled, the milestones it placed) and the warnings it raises."""
    said: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            said.append(record.getMessage())

    log, handler = logging.getLogger(PACKAGE), Keep(logging.INFO)
    level, propagate = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False  # kept for the page, not printed in the build log
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", package.RecipeWarning)
            yield said, caught
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        log.propagate = propagate


def _plot(package: Any, entry: Entry, images: Path) -> list[str]:
    """The section's plot (or why there is none), as Markdown lines."""
    max_epochs, steps_per_epoch = _sizes(entry)
    module = entry.module() if isinstance(entry.module, type) else entry.module
    path = images / f"{_slug(entry.name)}.png"
    with _listening(package) as (said, caught):
        try:
            if entry.previewer is not None:
                preview = entry.previewer()
                max_epochs = getattr(preview, "max_epochs", max_epochs)
                steps_per_epoch = getattr(preview, "steps_per_epoch", steps_per_epoch)
            else:
                preview = package.preview_schedule(entry.recipe, max_epochs=max_epochs,
                                                   steps_per_epoch=steps_per_epoch, module=module)
        except package.RecipeError as err:
            why = str(err).split(". ")[0].rstrip(".")
            needs = "the model it is written for" if module is None else "more than the preview can give"
            return [":::{note}", f"No schedule plot: previewing this recipe needs {needs} (``preview_schedule``"
                    f" said: {_cell(why)}).", ":::", ""]
        package.plot_schedule(preview, path=path)
    call = f"max_epochs={max_epochs}, steps_per_epoch={steps_per_epoch}"
    if module is not None:
        call += f", module={type(module).__name__}()"
    batches = f"{steps_per_epoch} batch" + ("es" if steps_per_epoch != 1 else "")
    caption = (f"``describe_recipe({entry.name!r}).preview_schedule()``: {max_epochs} epochs of {batches}"
               + (f", on ``{type(module).__name__}()``" if module is not None else "")
               if entry.previewer is not None else f"``preview_schedule(get_recipe({entry.name!r}), {call})``")
    lines = [f"```{{figure}} /{OUT}/{IMAGES}/{path.name}", f":alt: the learning rate of {entry.name} per step",
             "", caption, "```", ""]
    if said:
        lines += ["While building the preview:", ""] + [f"- {_cell(m)}" for m in dict.fromkeys(said)] + [""]
    warned = [str(w.message) for w in caught if issubclass(w.category, package.RecipeWarning)]
    if warned:
        lines += [":::{note}", "The preview warned: " + _cell(" ".join(dict.fromkeys(warned))), ":::", ""]
    return lines


def render(package: Any, images: Path) -> str:
    list_recipes = getattr(package, "list_recipes", None)
    get_recipe = getattr(package, "get_recipe", None)
    if list_recipes is None or get_recipe is None:
        return "\n".join([
            ":::{note}",
            f"This version of ``{PACKAGE}`` has no recipe registry yet (``{PACKAGE}.list_recipes``). When it has",
            "one, this page lists every recipe with its description, citation, the recipe dict and its schedule.",
            ":::", ""])
    describe = getattr(package, "describe_recipe", None)
    entries = [_entry(name, description, get_recipe(name), describe(name) if describe else None)
               for name, description in _listed(list_recipes())]
    lines = [f"{len(entries)} recipe{'s' if len(entries) != 1 else ''}: " + ", ".join(f"[{e.name}](#recipe-{_slug(e.name)})" for e in entries)
             + ".", ""]
    for entry in entries:
        language, text = _as_yaml(entry.shown)
        lines += [f"(recipe-{_slug(entry.name)})=", f"## `{entry.name}`", "", _cell(entry.description), ""]
        if entry.citation:
            lines += [f"**Source:** {_linked(_cell(entry.citation))}", ""]
        lines += [f"```{language}", text, "```", ""]
        if entry.numbers:
            lines += ["| number | where | the source says |", "| --- | --- | --- |"]
            lines += ["| " + " | ".join(_cell(part) for part in (*row, "", "", "")[:3]) + " |" for row in entry.numbers]
            lines.append("")
        for title, items in (("Choices where the source leaves a value open:", entry.choices),
                             ("Notes:", entry.notes), ("Also cited:", entry.also)):
            if items:
                lines += [title, ""] + [f"- {_linked(_cell(item))}" for item in items] + [""]
        lines += _plot(package, entry, images)
    return "\n".join(lines)


def _cell(text: str) -> str:
    """Text for a Markdown paragraph or table cell: one line, ``|`` escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _write(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def generate(app: Sphinx) -> None:
    package = importlib.import_module(PACKAGE)
    images = Path(app.srcdir) / OUT / IMAGES
    images.mkdir(parents=True, exist_ok=True)
    for old in images.glob("*.png"):
        old.unlink()
    _write(Path(app.srcdir) / OUT / PAGE, render(package, images))


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("builder-inited", generate)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
