"""Both callbacks with the Trainer's real loggers: `LearningRateLogger` writes the same lr metrics to a CSVLogger and
a TensorBoardLogger on one Trainer (read back from ``metrics.csv`` and from the event file), and
`SchedulerCadenceCheck` writes ``cadence_report.csv`` into the first logger's ``log_dir``."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from helpers import TinyRegressor, loader, pl, trainer
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.optim.lr_scheduler import ExponentialLR

from lightning_optim_recipes import param_groups
from lightning_optim_recipes.callbacks.cadence_check import SchedulerCadenceCheck
from lightning_optim_recipes.callbacks.lr_logger import LearningRateLogger

pytestmark = pytest.mark.trainer

BATCHES, EPOCHS = 4, 2
STEPS = BATCHES * EPOCHS
NAMES = ["lr-SGD/decay", "lr-SGD/no_decay"]


class Halving(TinyRegressor):
    """SGD on two named param groups (lr 0.1 and 0.4), halved after every optimizer step."""

    def configure_optimizers(self):
        groups = param_groups(self, weight_decay=0.01)
        groups[1]["lr"] = 0.4
        opt = torch.optim.SGD(groups, lr=0.1)
        return [opt], [{"scheduler": ExponentialLR(opt, 0.5), "interval": "step"}]


def expected(step: int) -> dict[str, float]:
    """The lrs logged before the batch of global step `step`: halved `step` times (exact in binary)."""
    return {"lr-SGD/decay": 0.1 * 0.5**step, "lr-SGD/no_decay": 0.4 * 0.5**step}


def fit(tmp_path: Path, csv_first: bool):
    csv_logger = pl.loggers.CSVLogger(tmp_path, name="csv")
    tb_logger = pl.loggers.TensorBoardLogger(tmp_path, name="tb")
    loggers = [csv_logger, tb_logger] if csv_first else [tb_logger, csv_logger]
    callbacks = [LearningRateLogger(), SchedulerCadenceCheck(print_report=False)]
    run = trainer(tmp_path, logger=loggers, log_every_n_steps=1, max_epochs=EPOCHS, callbacks=callbacks)
    torch.manual_seed(0)
    run.fit(Halving(), loader(BATCHES))
    return csv_logger, tb_logger


def csv_metrics(log_dir: str) -> list[dict[str, str]]:
    with open(Path(log_dir) / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def tb_scalars(log_dir: str) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(log_dir)
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


@pytest.mark.parametrize("csv_first", [True, False], ids=["csv-first", "tensorboard-first"])
def test_csv_and_tensorboard_get_the_same_lrs_and_the_report(tmp_path, csv_first):
    csv_logger, tb_logger = fit(tmp_path, csv_first)

    rows = csv_metrics(csv_logger.log_dir)
    assert list(rows[0]) == ["lr-SGD/decay", "lr-SGD/no_decay", "step"]  # only what the callback logs
    assert [int(row["step"]) for row in rows] == list(range(STEPS))
    for step, row in enumerate(rows):
        assert {name: float(row[name]) for name in NAMES} == expected(step)  # exact: powers of two times 0.1, 0.4

    scalars = tb_scalars(tb_logger.log_dir)
    assert sorted(scalars) == NAMES
    for name in NAMES:  # TensorBoard stores float32
        assert scalars[name] == [(step, pytest.approx(expected(step)[name], rel=1e-7)) for step in range(STEPS)]

    # the cadence table goes to the first logger's directory, and only there
    first, other = (csv_logger, tb_logger) if csv_first else (tb_logger, csv_logger)
    assert not (Path(other.log_dir) / "cadence_report.csv").exists()
    with open(Path(first.log_dir) / "cadence_report.csv", newline="") as handle:
        report = list(csv.reader(handle))
    assert report == [
        ["kind", "name", "type", "optimizer", "interval", "frequency", "expected", "expected_max", "actual",
         "final_lr"],
        ["scheduler", "lr-SGD", "ExponentialLR", "lr-SGD", "step", "1", "8", "8", "8", "0.000390625 0.0015625"],
        ["optimizer", "lr-SGD", "SGD", "0", "", "", "8", "8", "8", ""],
    ]
