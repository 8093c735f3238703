"""`CadenceReport`: what `SchedulerCadenceCheck` saw over a fit, as data, a table and a CSV file."""

from __future__ import annotations

import csv
import dataclasses
from typing import Any, Optional

__all__ = ["CadenceReport", "OptimizerCadence", "SchedulerCadence"]


@dataclasses.dataclass(frozen=True)
class SchedulerCadence:
    """One scheduler's row of the report: its cadence, the steps it should have taken and those it took.

    ``name`` is the name its learning rate is logged under (`LearningRateMonitor`'s scheme, or its ``'name'``),
    ``optimizer`` the logged name of its optimizer (with the alternation role, when there is one).
    """

    name: str
    optimizer_index: int
    interval: str
    frequency: int
    expected: int
    expected_max: int
    actual: Optional[int]
    final_lr: tuple[float, ...]
    kind: str = ""
    optimizer: str = ""

    @property
    def ok(self) -> bool:
        """Whether the actual count is within the expected range (True when it could not be counted)."""
        return self.actual is None or self.expected <= self.actual <= self.expected_max


@dataclasses.dataclass(frozen=True)
class OptimizerCadence:
    """One optimizer's row of the report: its alternation frequency (if any) and its step counts."""

    name: str
    index: int
    frequency: Optional[int]
    expected: Optional[int]
    actual: Optional[int]
    kind: str = ""

    @property
    def ok(self) -> bool:
        """Whether the actual count is the expected one (True when nothing was expected)."""
        return self.expected is None or self.actual is None or self.expected == self.actual


@dataclasses.dataclass(frozen=True)
class CadenceReport:
    """What `SchedulerCadenceCheck` saw over a fit, as data (`rows`) and as a printable `table`.

    Example:
        >>> report = CadenceReport(
        ...     (SchedulerCadence("lr-SGD", 0, "step", 1, 12, 12, 12, (0.05,), "StepLR", "lr-SGD"),),
        ...     (OptimizerCadence("lr-SGD", 0, None, 12, 12, "SGD"),))
        >>> print(report.table())
        Schedulers (steps of scheduler.step() over the run)
        logged as  scheduler  optimizer  interval  frequency  expected  actual  final lr
        lr-SGD     StepLR     lr-SGD     step      1          12        12      0.05
        Optimizers (optimizer steps over the run)
        logged as  optimizer  frequency  expected  actual
        lr-SGD     SGD        -          12        12
    """

    schedulers: tuple[SchedulerCadence, ...] = ()
    optimizers: tuple[OptimizerCadence, ...] = ()

    def rows(self) -> list[dict[str, Any]]:
        """One dict per scheduler and per optimizer (the CSV's rows)."""
        rows = []
        for s in self.schedulers:
            rows.append(dict(kind="scheduler", name=s.name, type=s.kind, optimizer=s.optimizer or s.optimizer_index,
                             interval=s.interval, frequency=s.frequency, expected=s.expected,
                             expected_max=s.expected_max, actual=s.actual,
                             final_lr=" ".join(f"{lr:.6g}" for lr in s.final_lr)))
        for o in self.optimizers:
            rows.append(dict(kind="optimizer", name=o.name, type=o.kind, optimizer=o.index, interval="",
                             frequency=o.frequency, expected=o.expected, expected_max=o.expected, actual=o.actual,
                             final_lr=""))
        return rows

    def table(self) -> str:
        """A short plain-text table with a title per part: one line per scheduler, then one per optimizer."""
        sched = [["logged as", "scheduler", "optimizer", "interval", "frequency", "expected", "actual", "final lr"]]
        for s in self.schedulers:
            expected = str(s.expected) if s.expected == s.expected_max else f"{s.expected}..{s.expected_max}"
            sched.append([s.name, s.kind or "?", s.optimizer or str(s.optimizer_index), s.interval,
                          str(s.frequency), expected, _text(s.actual),
                          ", ".join(f"{lr:.4g}" for lr in s.final_lr)])
        opt = [["logged as", "optimizer", "frequency", "expected", "actual"]]
        for o in self.optimizers:
            opt.append([o.name, o.kind or "?", _text(o.frequency), _text(o.expected), _text(o.actual)])
        lines = []
        if self.schedulers:
            lines += ["Schedulers (steps of scheduler.step() over the run)"] + _format(sched)
        lines += ["Optimizers (optimizer steps over the run)"] + _format(opt)
        return "\n".join(lines)

    def write_csv(self, path: str) -> None:
        """Write `rows` to the CSV file `path`."""
        fields = ["kind", "name", "type", "optimizer", "interval", "frequency", "expected", "expected_max", "actual",
                  "final_lr"]
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(self.rows())


def _text(value: Optional[int]) -> str:
    return "-" if value is None else str(value)


def _format(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
