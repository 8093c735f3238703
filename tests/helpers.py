"""Shared test helpers: the Lightning namespace under test, tiny models and random data.

The namespace is chosen by the environment variable LOR_LIGHTNING: `pytorch_lightning` (default) or `lightning`.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
import warnings
from pathlib import Path
from typing import Any, Iterator, Optional

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_optim_recipes import OptimRecipeMixin

NAMESPACE = {"pytorch_lightning": "pytorch_lightning", "lightning": "lightning.pytorch"}[
    os.environ.get("LOR_LIGHTNING", "pytorch_lightning")
]
pl = importlib.import_module(NAMESPACE)

for message in (".*does not have many workers.*", ".*GPU available but not used.*", ".*TPU available.*",
                ".*LeafSpec.*", ".*`isinstance.*treespec.*", ".*tensorboardX.*"):
    warnings.filterwarnings("ignore", message)


def loader(batches: int, batch_size: int = 4, features: int = 4, seed: int = 0) -> DataLoader:
    """`batches` batches of random (x, y) regression data."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batches * batch_size, features, generator=g)
    y = torch.randn(batches * batch_size, 1, generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=False)


def trainer(tmp_path, **kwargs) -> "pl.Trainer":
    """A quiet CPU Trainer writing under tmp_path."""
    options = dict(
        accelerator="cpu",
        devices=1,
        default_root_dir=str(tmp_path),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    options.update(kwargs)
    return pl.Trainer(**options)


class TinyRegressor(pl.LightningModule):
    """A 2-layer MLP with a LayerNorm; records every param group's lr at every optimizer step."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8))
        self.decoder = nn.Linear(8, 1)
        self.lr_log: list[tuple[int, int, tuple[float, ...]]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.relu(self.encoder(x)))

    def training_step(self, batch, batch_idx):
        x, y = batch
        optimizer = self.trainer.optimizers[0]
        self.lr_log.append((self.current_epoch, batch_idx, tuple(g["lr"] for g in optimizer.param_groups)))
        return nn.functional.mse_loss(self(x), y)


class Recorder(pl.loggers.Logger):
    """A real (if tiny) logger that keeps every `log_metrics` call."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[int, dict[str, float]]] = []

    @property
    def name(self) -> str:
        return "recorder"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    def log_metrics(self, metrics, step=None) -> None:
        self.records.append((step, {k: float(v) for k, v in metrics.items() if k != "epoch"}))


@contextlib.contextmanager
def library_log() -> Iterator[list[str]]:
    """What the library logs (at INFO and above, on its logger ``lightning_optim_recipes``) inside the block."""
    logger = logging.getLogger("lightning_optim_recipes")
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    handler, level = Keep(logging.INFO), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


class StopAt(pl.Callback):
    """Interrupt training (an exception, as a crash would) when `global_step` reaches `step`."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            raise RuntimeError(f"stopped at step {self.step}")


# ------------------------------------------------------------------------------ LightningCLI (examples/train_cli.py)


class CliRegressor(OptimRecipeMixin, pl.LightningModule):
    """examples/train_cli.py's module in the namespace under test; records (epoch, batch, {group name: lr}) per step."""

    def __init__(self, hidden: int = 8, optim_recipe: Optional[dict[str, Any]] = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.encoder = nn.Sequential(nn.Linear(4, hidden), nn.LayerNorm(hidden))
        self.decoder = nn.Linear(hidden, 1)
        self.lr_log: list[tuple[int, int, dict[str, float]]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.relu(self.encoder(x)))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        groups = self.trainer.optimizers[0].param_groups
        self.lr_log.append((self.current_epoch, batch_idx, {g.get("name", str(i)): g["lr"] for i, g in enumerate(groups)}))
        x, y = batch
        return nn.functional.mse_loss(self(x), y)


class CliData(pl.LightningDataModule):
    def __init__(self, batches: int = 4, batch_size: int = 4, seed: int = 0) -> None:
        super().__init__()
        self.batches, self.batch_size, self.seed = batches, batch_size, seed

    def train_dataloader(self) -> DataLoader:
        g = torch.Generator().manual_seed(self.seed)
        n = self.batches * self.batch_size
        return DataLoader(TensorDataset(torch.randn(n, 4, generator=g), torch.randn(n, 1, generator=g)), batch_size=self.batch_size)


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_cli(tmp_path, *args: str, model_class: type = CliRegressor, subcommand: str = "fit") -> Any:
    """LightningCLI (the namespace under test) on `CliRegressor` and `CliData`, quiet, writing under `tmp_path`."""
    cli_class = importlib.import_module(f"{NAMESPACE}.cli").LightningCLI
    quiet = ["--trainer.default_root_dir", str(tmp_path), "--trainer.enable_progress_bar", "false",
             "--trainer.enable_model_summary", "false", "--trainer.logger", "false"]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*log_every_n_steps.*")
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*LightningCLI's args parameter.*")  # pytest's own sys.argv
        if subcommand == "fit":
            return cli_class(model_class, CliData, args=["fit", *args, *quiet])
        return cli_class(model_class, CliData, args=list(args), run=False)


def run_example_cli(tmp_path, config: str) -> Any:
    """examples/train_cli.py's `main` (it imports pytorch_lightning) fitting on `config`, writing under `tmp_path`."""
    spec = importlib.util.spec_from_file_location("train_cli_example", EXAMPLES / "train_cli.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)  # type: ignore[union-attr]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*log_every_n_steps.*")
        warnings.filterwarnings("ignore", ".*LightningCLI's args parameter.*")
        return example.main(["fit", "--config", config, "--trainer.default_root_dir", str(tmp_path)])


# ----------------------------------------------------------------------- the multi-rank run (tests/spawned.py)


def scenario(spawned: Any, name: str) -> list[dict[str, Any]]:
    """Scenario `name` of the multi-rank run (the ``spawned`` fixture) as each rank saw it; a scenario that raised
    fails the test with its traceback."""
    import pytest

    _, ranks = spawned
    seen = [rank.get(name) for rank in ranks]
    for rank, result in enumerate(seen):
        if result is None:
            pytest.fail(f"the multi-rank run has no scenario {name!r}")
        if "error" in result:
            pytest.fail(f"scenario {name!r} raised on rank {rank}:\n{result['error']}")
    return seen
