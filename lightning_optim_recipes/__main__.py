"""The command line: ``python -m lightning_optim_recipes preview MODULE:CLASS`` (or ``lightning-optim-recipes``).

Prints the learning rate of every param group at the first and last optimizer step of each epoch, and writes the
plot of the whole schedule with ``--out lr.png``::

    python -m lightning_optim_recipes preview my_project.models:LitClassifier --epochs 10 --steps-per-epoch 500 \\
        --init-args '{"hidden": 64}' --out lr.png

MODULE is an importable module (the current directory is searched first) or a path to a ``.py`` file. CLASS is a
LightningModule class (built with ``--init-args``, a JSON object of keyword arguments), a module instance, or a
recipe dict (see `configure_from_recipe`). A recipe that scales its lr by the global batch needs ``--batch-size``
(the per-device batch; the global batch is it times ``--accumulate-grad-batches``).

``recipes`` lists the recipe catalogue; ``recipes NAME`` shows one recipe: its citation, the recipe, every number
with where its source states it, the choices it made, and its schedule previewed on a small example model (the
lr scaled for ``--batch-size`` where the source states it per batch size), as a table or, with ``--out``, a plot::

    python -m lightning_optim_recipes recipes
    python -m lightning_optim_recipes recipes deit --batch-size 4096 --out deit.png
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.util
import inspect
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional, TextIO

from lightning_optim_recipes import __version__
from lightning_optim_recipes.errors import RecipeError
from lightning_optim_recipes.naming import record_label
from lightning_optim_recipes.plot import plot_schedule
from lightning_optim_recipes.preview import SchedulePreview, preview_schedule

__all__ = ["main"]

#: At most this many epochs are listed; longer runs show the first and last ones.
MAX_ROWS = 20


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line with `argv` (default: ``sys.argv[1:]``); returns the exit status.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error already printed by argparse
        return int(exit_.code or 0)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return (_recipes if args.command == "recipes" else _preview)(args, sys.stdout)
    except RecipeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lightning-optim-recipes", description="Correct `configure_optimizers` for PyTorch Lightning."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    preview = commands.add_parser(
        "preview",
        help="print (and plot) the learning rate of every param group at every optimizer step, without training",
        description="Run a LightningModule's `configure_optimizers` (or a recipe) and step its schedulers at their"
        " declared cadence, without training: the lr of every param group at every optimizer step.",
    )
    preview.add_argument("target", metavar="MODULE:CLASS", help="e.g. my_project.models:LitClassifier or model.py:Lit")
    preview.add_argument("--epochs", type=_positive, default=10, help="Trainer(max_epochs=...) (default: 10)")
    preview.add_argument(
        "--steps-per-epoch", type=_positive, default=100, help="training batches per epoch (default: 100)"
    )
    preview.add_argument(
        "--accumulate-grad-batches", type=_positive, default=1, help="Trainer(accumulate_grad_batches=...)"
    )
    preview.add_argument(
        "--batch-size", type=_positive, help="the per-device batch (DataLoader(batch_size=...)), for a recipe whose lr"
        " scales with the global batch: batch size x --accumulate-grad-batches on one device"
    )
    preview.add_argument("--init-args", default="{}", metavar="JSON", help="keyword arguments of CLASS, as JSON")
    preview.add_argument("--out", type=Path, metavar="PNG", help="write the plot of the schedule to this PNG file")
    recipes = commands.add_parser(
        "recipes",
        help="list the recipe catalogue, or show one recipe with its source and its schedule",
        description="Without NAME, list the catalogue's recipes. With NAME, show the recipe: its citation, every"
        " number with where the source states it, the choices it made, and its schedule previewed on a small"
        " example model.",
    )
    recipes.add_argument("name", nargs="?", metavar="NAME", help="a recipe of the catalogue, e.g. bert-finetune")
    recipes.add_argument("--batch-size", type=_positive, help="the global batch for a recipe whose lr scales with it"
                         " (default: the recipe's preview batch)")
    recipes.add_argument("--epochs", type=_positive, help="epochs previewed (default: the recipe's)")
    recipes.add_argument("--steps-per-epoch", type=_positive, help="batches per epoch previewed (default: the recipe's)")
    recipes.add_argument("--out", type=Path, metavar="PNG", help="write the plot of the schedule to this PNG file")
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive int, got {text!r}")
    return value


def _preview(args: argparse.Namespace, out: TextIO) -> int:
    source = _load(args.target, _init_args(args.init_args))
    preview = preview_schedule(
        source,
        max_epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        accumulate_grad_batches=args.accumulate_grad_batches,
        batch_size=args.batch_size,
    )
    out.write(_format_table(preview, title=args.target))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        plot_schedule(preview, path=args.out, title=args.target)
        out.write(f"plot written to {args.out}\n")
    return 0


def _recipes(args: argparse.Namespace, out: TextIO) -> int:
    from lightning_optim_recipes.recipes import describe_recipe
    from lightning_optim_recipes.recipes._page import engine_messages, listing, page

    if args.name is None:
        given = [f"--{k.replace('_', '-')}" for k in ("batch_size", "epochs", "steps_per_epoch", "out")
                 if getattr(args, k) is not None]
        if given:
            raise RecipeError(f"{', '.join(given)} previews one recipe: name it, e.g. `recipes deit {given[0]} ...`.")
        out.write(listing())
        return 0
    entry = describe_recipe(args.name)
    with engine_messages() as computed:
        preview = entry.preview_schedule(batch_size=args.batch_size, max_epochs=args.epochs,
                                         steps_per_epoch=args.steps_per_epoch)
    batch = entry.preview_recipe(args.batch_size).get("batch_size")
    sizes = f"{preview.max_epochs} epochs x {preview.steps_per_epoch} batches on {type(entry.module()).__name__}" \
        if entry.module is not None else f"{preview.max_epochs} epochs x {preview.steps_per_epoch} batches"
    sizes += f", global batch {batch} (--batch-size)" if batch is not None else ""
    out.write(page(entry, computed, sizes) + "\n")
    out.write(_format_table(preview, title=entry.name))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        plot_schedule(preview, path=args.out, title=f"{entry.name}: {entry.source.authors.split(',')[0]}"
                      f" ({entry.source.year})")
        out.write(f"plot written to {args.out}\n")
    return 0


def _init_args(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise RecipeError(f"--init-args must be a JSON object such as '{{\"hidden\": 64}}': {err}.") from err
    if not isinstance(value, dict):
        raise RecipeError(f"--init-args must be a JSON object of keyword arguments such as '{{\"hidden\": 64}}', got {text}.")
    return value


def _load(target: str, init_args: dict[str, Any]) -> Any:
    """The module or recipe named by ``MODULE:CLASS``."""
    module_name, sep, attr = target.rpartition(":")
    if not sep or not module_name or not attr:
        raise RecipeError(f"Expected MODULE:CLASS such as my_project.models:LitClassifier, got {target!r}.")
    if module_name.endswith(".py") or os.sep in module_name:
        module = _import_file(Path(module_name))
    else:
        if os.getcwd() not in sys.path and "" not in sys.path:  # the console script does not search it, `-m` does
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise RecipeError(f"Cannot import {module_name!r}: {err}. Run from the project's directory.") from err
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise RecipeError(f"{module_name!r} has no {attr!r}{_did_you_mean(attr, dir(module))}") from None
    if inspect.isclass(obj):
        try:
            return obj(**init_args)
        except TypeError as err:
            raise RecipeError(f"Cannot build {attr}: {err}. Pass its arguments with --init-args '{{...}}'.") from err
    if init_args:
        raise RecipeError(f"--init-args is for a class, but {attr} is a {type(obj).__name__}.")
    return obj


def _did_you_mean(name: str, names: Sequence[str]) -> str:
    """The end of a "has no NAME" message: ``": did you mean 'X'?"`` for the public name closest to `name` (the same
    letters in another case first), else ``"."``."""
    public = [n for n in names if not n.startswith("_")]
    close = [n for n in public if n.lower() == name.lower()] or difflib.get_close_matches(name, public, n=1, cutoff=0.6)
    return f": did you mean {close[0]!r}?" if close else "."


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise RecipeError(f"No such file: {str(path)!r}.")
    name = f"_lor_preview_{path.stem}"
    if str(path.parent.resolve()) not in sys.path:  # as `python path.py` does: its own imports resolve
        sys.path.insert(0, str(path.parent.resolve()))
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover
        raise RecipeError(f"Cannot import {str(path)!r}: not a Python file.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _format_table(preview: SchedulePreview, title: str = "") -> str:
    """The compact table: per epoch, its optimizer steps and each group's lr at the first and last of them.
    """
    columns = list(dict.fromkeys((r["optimizer"], r["group"]) for r in preview))
    several = len({optimizer for optimizer, _ in columns}) > 1
    labels = {(r["optimizer"], r["group"]): record_label(r, several) for r in preview}
    names = [labels[column] for column in columns]
    epochs: dict[int, list[Mapping[str, Any]]] = {}
    for r in preview:
        epochs.setdefault(r["epoch"], []).append(r)
    accumulate = getattr(preview, "accumulate_grad_batches", 1)
    lines = []
    header = f"{getattr(preview, 'max_epochs', len(epochs))} epochs x {getattr(preview, 'steps_per_epoch', '?')} batches"
    if accumulate > 1:
        header += f", accumulating {accumulate}"
    steps = len({r["step"] for r in preview})
    lines.append(f"{title + ': ' if title else ''}{header} -> {steps} optimizer steps")
    lines.append("learning rate of each param group, logged as named below: first -> last optimizer step of each epoch")
    rows = [["epoch", "steps", *names]]
    shown: list[Optional[int]] = [*sorted(epochs)]
    if len(shown) > MAX_ROWS:
        shown = shown[: MAX_ROWS // 2] + [None] + shown[-MAX_ROWS // 2 :]
    for epoch in shown:
        if epoch is None:
            rows.append(["...", "", *[""] * len(columns)])
            continue
        records = epochs[epoch]
        first_step, last_step = records[0]["step"], records[-1]["step"]
        cells = []
        for column in columns:
            values = [r["lr"] for r in records if (r["optimizer"], r["group"]) == column]
            if not values:
                cells.append("-")
            elif values[0] == values[-1]:
                cells.append(f"{values[0]:.4g}")
            else:
                cells.append(f"{values[0]:.4g} -> {values[-1]:.4g}")
        rows.append([str(epoch), f"{first_step}-{last_step}", *cells])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    widths = [w if i < 2 else max(w, 15) for i, w in enumerate(widths)]
    for row in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    markers = getattr(preview, "markers", [])
    if markers:
        lines.append("markers: " + ", ".join(f"step {m['step']} {m['label']}" for m in markers))
    lengths = getattr(preview, "lengths", ())
    if lengths:  # the lengths given in units, resolved for this run
        lines.append("lengths: " + ", ".join(
            f"{r['length']} {r['written']!r} = {r['resolved']}" + ("" if r["length"] == "decay_start" else
                                                                 f" {r['unit']}") for r in lengths))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
