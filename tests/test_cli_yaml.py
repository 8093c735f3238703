"""LightningCLI: a module with `OptimRecipeMixin` takes its recipe from YAML or `--model.optim_recipe`, and the CLI's
own `--optimizer`/`--lr_scheduler` options keep working. Runs the CLI in-process on `examples/recipe.yaml`."""

from __future__ import annotations

import pytest
import torch
from helpers import EXAMPLES, NAMESPACE, CliRegressor, run_cli, run_example_cli

from lightning_optim_recipes import RecipeError

pytestmark = pytest.mark.trainer

CONFIG = str(EXAMPLES / "recipe.yaml")


def lrs_by_epoch(model: CliRegressor) -> dict[int, dict[str, float]]:
    """The lrs of each epoch, checking they were the same at every step of it."""
    by_epoch: dict[int, dict[str, float]] = {}
    for epoch, _, lrs in model.lr_log:
        assert by_epoch.setdefault(epoch, lrs) == lrs
    return by_epoch


def test_yaml_recipe_builds_the_optimizer_and_schedule(tmp_path):
    cli = run_cli(tmp_path, "--config", CONFIG)
    assert cli.model.hparams["optim_recipe"]["optimizer"] == "AdamW"
    optimizer = cli.trainer.optimizers[0]
    assert type(optimizer) is torch.optim.AdamW
    assert [(g["name"], g["weight_decay"], g["betas"]) for g in optimizer.param_groups] == [
        ("encoder", 0.01, (0.9, 0.95)),  # encoder.0.weight
        ("encoder/no_decay", 0.0, (0.9, 0.95)),  # encoder.0.bias, LayerNorm weight and bias
        ("decay", 0.01, (0.9, 0.95)),  # decoder.weight
        ("no_decay", 0.0, (0.9, 0.95)),  # decoder.bias
    ]
    assert [len(g["params"]) for g in optimizer.param_groups] == [1, 3, 1, 1]
    # multistep, milestones [2], gamma 0.5, interval 'epoch': epochs 0 and 1 at the recipe's lrs, epoch 2 halved
    full = {"encoder": 1e-4, "encoder/no_decay": 1e-4, "decay": 1e-3, "no_decay": 1e-3}
    halved = {name: lr / 2 for name, lr in full.items()}
    by_epoch = lrs_by_epoch(cli.model)
    assert sorted(by_epoch) == [0, 1, 2]
    assert by_epoch[0] == full and by_epoch[1] == full and by_epoch[2] == pytest.approx(halved, rel=1e-12)
    assert len(cli.model.lr_log) == 3 * 4
    assert (tmp_path / "config.yaml").exists()  # the CLI saved the resolved config, recipe included


def test_command_line_overrides_one_recipe_key(tmp_path):
    cli = run_cli(tmp_path, "--config", CONFIG, "--model.optim_recipe.lr", "0.01", "--trainer.max_epochs", "2")
    assert cli.model.hparams["optim_recipe"]["lr"] == 0.01
    assert cli.model.hparams["optim_recipe"]["overrides"] == {"encoder": {"lr": 1e-4}}  # the rest of the YAML stays
    assert lrs_by_epoch(cli.model)[1] == {"encoder": 1e-4, "encoder/no_decay": 1e-4, "decay": 0.01, "no_decay": 0.01}


def test_whole_recipe_on_the_command_line(tmp_path):
    recipe = "{optimizer: SGD, lr: 1e-1, scheduler: {type: StepLR, step_size: 1, gamma: 0.5, interval: step}}"
    cli = run_cli(tmp_path, "--model.optim_recipe", recipe, "--trainer.max_steps", "3")
    assert type(cli.trainer.optimizers[0]) is torch.optim.SGD
    assert [lrs["decay"] for _, _, lrs in cli.model.lr_log] == pytest.approx([0.1, 0.05, 0.025], rel=1e-12)
    assert cli.trainer.lr_scheduler_configs[0].interval == "step"


def test_run_false_gives_a_module_whose_configure_optimizers_uses_the_recipe(tmp_path):
    cli = run_cli(tmp_path, "--config", CONFIG, subcommand=None)
    optimizers, schedulers = cli.model.configure_optimizers()
    assert type(optimizers[0]).__name__ == "AdamW"
    assert schedulers[0]["interval"] == "epoch" and schedulers[0]["name"] == "lr"
    assert schedulers[0]["scheduler"].milestones == {2: 1}


def test_bad_recipe_from_the_command_line_is_a_recipe_error_before_training(tmp_path):
    with pytest.raises(RecipeError, match=r"Unknown key 'lr_schedular' in the recipe: did you mean 'scheduler'\?"):
        run_cli(tmp_path, "--model.optim_recipe", "{optimizer: AdamW, lr: 1e-3, lr_schedular: {type: cosine}}",
                "--trainer.max_epochs", "1")


def test_cli_optimizer_and_lr_scheduler_options_still_work(tmp_path):
    """A mixin module with no recipe: LightningCLI's `--optimizer`/`--lr_scheduler` build its optimizers.

    LightningCLI replaces `configure_optimizers` on the instance and warns that the module's own (here the mixin's)
    is overridden: the options win over any recipe.
    """
    with pytest.warns(UserWarning, match="configure_optimizers` will be overridden by `LightningCLI"):
        cli = run_cli(tmp_path, "--optimizer", "SGD", "--optimizer.lr", "0.1", "--lr_scheduler", "StepLR",
                      "--lr_scheduler.step_size", "1", "--lr_scheduler.gamma", "0.5", "--trainer.max_epochs", "3")
    assert cli.model.hparams["optim_recipe"] is None
    assert type(cli.trainer.optimizers[0]) is torch.optim.SGD
    assert {epoch: lrs["0"] for epoch, lrs in lrs_by_epoch(cli.model).items()} == pytest.approx(
        {0: 0.1, 1: 0.05, 2: 0.025}, rel=1e-12
    )


def test_cli_optimizer_options_win_over_a_yaml_recipe(tmp_path):
    with pytest.warns(UserWarning, match="will be overridden"):
        cli = run_cli(tmp_path, "--config", CONFIG, "--optimizer", "SGD", "--optimizer.lr", "0.2",
                      "--trainer.max_epochs", "1")
    assert type(cli.trainer.optimizers[0]) is torch.optim.SGD
    assert lrs_by_epoch(cli.model) == {0: {"0": 0.2}}


class OwnConfigure(CliRegressor):
    """A mixin module with its own `configure_optimizers` (validated by the mixin)."""

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.003)


def test_module_with_its_own_configure_optimizers_runs_under_the_cli(tmp_path):
    cli = run_cli(tmp_path, "--trainer.max_epochs", "1", model_class=OwnConfigure)
    assert lrs_by_epoch(cli.model) == {0: {"0": 0.003}}


@pytest.mark.skipif(NAMESPACE != "pytorch_lightning", reason="the example script imports pytorch_lightning")
def test_example_script_runs_on_its_config(tmp_path):
    cli = run_example_cli(tmp_path, CONFIG)
    again = run_example_cli(tmp_path, CONFIG)
    assert again.trainer.global_step == 12  # a second run in the same directory overwrites the saved config
    assert cli.trainer.current_epoch == 3 and cli.trainer.global_step == 12
    assert [g["lr"] for g in cli.trainer.optimizers[0].param_groups] == pytest.approx([5e-5, 5e-5, 5e-4, 5e-4])
