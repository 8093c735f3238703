"""`plot_schedule`: the schedule `preview_schedule` computes, drawn so that it explains itself."""

from __future__ import annotations

import functools
import io
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, Optional, Union

from torch import nn

from lightning_optim_recipes.errors import RecipeError
from lightning_optim_recipes.naming import record_label
from lightning_optim_recipes.preview import preview_schedule

__all__ = ["plot_schedule"]

_PLOT_EXTRA = "pip install lightning_optim_recipes[plot]"
#: At most this many epoch marks are drawn; longer runs mark every k-th epoch.
MAX_EPOCH_MARKS = 12


def plot_schedule(
    schedule_or_module: Any,
    *,
    max_epochs: Optional[int] = None,
    steps_per_epoch: Optional[int] = None,
    accumulate_grad_batches: int = 1,
    module: Optional[nn.Module] = None,
    path: Union[str, "os.PathLike[str]", None] = None,
    title: Optional[str] = None,
    log_scale: bool = False,
) -> Any:
    """Draw a schedule: one line per param group against the optimizer step, epochs marked, milestones annotated.

    Takes what `preview_schedule` returned (or a list of its records), or what it takes (a module or a recipe with
    the sizes). Lines are labelled with the names `LearningRateLogger` logs (and the alternation role, ``critic``),
    so a line matches a dashboard curve. MultiStepLR milestones and warm-up ends are annotated when a
    `SchedulePreview` carries them. Needs matplotlib (``pip install lightning_optim_recipes[plot]``); draws without
    pyplot, and the figure shows itself inline in Jupyter.

    Args:
        schedule_or_module: a `SchedulePreview` or list of records, or a module or recipe to preview.
        max_epochs: epochs of the run, as in `preview_schedule` (for a module or recipe).
        steps_per_epoch: training batches per epoch, as in `preview_schedule` (for a module or recipe).
        accumulate_grad_batches: ``Trainer(accumulate_grad_batches=...)``, as in `preview_schedule` (for a module
            or recipe).
        module: the model a recipe dict is built for, as in `preview_schedule` (only with a recipe).
        path: where to save the figure as a PNG.
        title: the figure's title (default: the run's sizes).
        log_scale: a logarithmic lr axis (groups whose lrs differ 10x stay readable).

    Returns:
        The matplotlib ``Figure``.

    Example:
        >>> recipe = {"optimizer": "SGD", "lr": 0.1, "scheduler": {"type": "multistep", "milestones": [2], "gamma": 0.5}}
        >>> figure = plot_schedule(recipe, max_epochs=3, steps_per_epoch=4)
        >>> [line.get_label() for line in figure.axes[0].get_lines() if not line.get_label().startswith("_")]
        ['lr-SGD/decay', 'lr-SGD/no_decay']
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import FuncFormatter, MaxNLocator
    except ImportError as err:
        raise RecipeError(f"`plot_schedule` needs matplotlib: {_PLOT_EXTRA}") from err
    if _is_records(schedule_or_module):
        records = list(schedule_or_module)
        markers = list(getattr(schedule_or_module, "markers", []))
        sizes = schedule_or_module
    else:
        if max_epochs is None or steps_per_epoch is None:
            raise RecipeError(
                "`plot_schedule` of a module or recipe needs the run's sizes: pass `max_epochs=` and"
                " `steps_per_epoch=` (or the records `preview_schedule` returned)."
            )
        sizes = preview_schedule(
            schedule_or_module,
            max_epochs=max_epochs,
            steps_per_epoch=steps_per_epoch,
            accumulate_grad_batches=accumulate_grad_batches,
            module=module,
        )
        records, markers = list(sizes), sizes.markers
    figure = _inline_figure_class(Figure)(figsize=(8, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    styles = ("-", "--", "-.", ":")
    for k, (label, points) in enumerate(_lines(records).items()):
        steps, lrs = [p[0] for p in points], [p[1] for p in points]
        # step s runs at its lr over [s, s + 1): draw the last one to its end too
        ax.plot(steps + [steps[-1] + 1], lrs + [lrs[-1]], label=label, drawstyle="steps-post",
                linestyle=styles[k % len(styles)], linewidth=1.8 - 0.3 * (k % len(styles)))
    epoch_starts = _epoch_starts(records)
    every = max(1, math.ceil(len(epoch_starts) / MAX_EPOCH_MARKS))
    shown = epoch_starts[::every]
    for epoch, step in shown[1:] if shown and shown[0][1] == 0 else shown:
        ax.axvline(step, color="0.85", linewidth=0.8, linestyle=":", zorder=0)
    if epoch_starts:
        top = ax.secondary_xaxis("top")
        top.set_xticks([s for _, s in shown], labels=[str(e) for e, _ in shown])
        top.set_xlabel("epoch" if every == 1 else f"epoch (one in {every} marked)")
    for k, marker in enumerate(markers):
        ax.axvline(marker["step"], color="0.3", linewidth=0.9, linestyle=(0, (4, 2)), zorder=1)
        ax.annotate(  # beside its line, at the bottom of the axes: off the curve, which is high at these steps
            marker["label"], xy=(marker["step"], 0.03 + 0.09 * (k % 3)), xycoords=("data", "axes fraction"),
            xytext=(3, 0), textcoords="offset points", fontsize=8, color="0.2", rotation=90, va="bottom",
        )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if log_scale:
        ax.set_yscale("log")
    else:
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.3g}"))
        highest = max((r["lr"] for r in records), default=0.0)
        if highest > 0:  # from 0, so that a constant lr reads as constant, not as a zoomed-in wobble
            ax.set_ylim(0, highest * 1.08)
    ax.set_xlabel("optimizer step (trainer.global_step)")
    ax.set_ylabel("learning rate" + (" (log scale)" if log_scale else ""))
    ax.grid(True, alpha=0.3)
    if records:
        ax.legend(fontsize=8, loc="best", title="logged as", title_fontsize=8)
    figure.suptitle(title if title is not None else _default_title(sizes, records))
    if path is not None:
        figure.savefig(path, dpi=110)
    return figure


def _default_title(sizes: Any, records: Sequence[Mapping[str, Any]]) -> str:
    epochs, batches = getattr(sizes, "max_epochs", None), getattr(sizes, "steps_per_epoch", None)
    steps = len({r["step"] for r in records})
    if epochs is None or batches is None:
        return f"Learning rate at each of {steps} optimizer steps"
    accumulate = getattr(sizes, "accumulate_grad_batches", 1)
    run = f"{epochs} epochs x {batches} batches" + (f", accumulating {accumulate}" if accumulate > 1 else "")
    return f"Learning rate per param group: {run} = {steps} optimizer steps"


@functools.cache
def _inline_figure_class(figure: type) -> type:
    """A `Figure` that Jupyter shows inline as a PNG, without pyplot and whatever the backend."""

    def _repr_png_(self: Any) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()

    return type("ScheduleFigure", (figure,), {"_repr_png_": _repr_png_, "__module__": __name__})


def _is_records(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(r, Mapping) and "lr" in r for r in value)


def _lines(records: Sequence[Mapping[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    several = len({r["optimizer"] for r in records}) > 1
    lines: dict[str, list[tuple[int, float]]] = {}
    for r in records:
        lines.setdefault(record_label(r, several), []).append((r["step"], r["lr"]))
    return lines


def _epoch_starts(records: Sequence[Mapping[str, Any]]) -> list[tuple[int, int]]:
    """(epoch, its first optimizer step) for every epoch in the records."""
    starts: dict[int, int] = {}
    for r in records:
        starts.setdefault(r["epoch"], r["step"])
    return sorted(starts.items())
