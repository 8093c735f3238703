"""Resuming FSDP2 runs (Lightning's `ModelParallelStrategy` on 2 CPU ranks) from their distributed checkpoints, a
directory of shards: exactly where they were (weights, moments, schedules, alternation), with a changed recipe
under ``resume="recipe"`` (the new schedule from the step reached, the moments kept) and under ``"checkpoint"``
(Lightning's behaviour, with the table of what the checkpoint overrides), and previewed from the directory.

The ranks train in the suite's one multi-rank run (tests/spawned.py, scenarios ``fsdp2_resume_*`` of
tests/spawned_fsdp2.py)."""

from __future__ import annotations

import math

import pytest
from helpers import scenario

pytestmark = [pytest.mark.trainer, pytest.mark.slow]

SHARDS = [".metadata", "__0_0.distcp", "__1_0.distcp", "meta.pt"]


@pytest.mark.parametrize("name", ["recipe", "gan", "hybrid"])
def test_a_resumed_run_continues_exactly_where_it_stopped(spawned, name):
    """3 epochs of 4 steps uninterrupted, against a run resumed from the checkpoint saved after epoch 0."""
    for seen in scenario(spawned, f"fsdp2_resume_{name}"):
        assert seen["files"] == SHARDS  # a directory of shards: one per rank, their index, the rest (meta.pt)
        whole, resumed = seen["uninterrupted"], seen["resumed"]
        assert resumed["weights"] == whole["weights"]
        assert resumed["moments"] == whole["moments"]
        assert resumed["counts"] == whole["counts"]
        if name == "recipe":  # (epoch, batch, lrs) from step 4 on
            assert resumed["seen"] == whole["seen"][4:]
            continue
        if name == "hybrid":  # Muon's group, then AdamW's three, halved at every step: from step 4 on
            assert resumed["seen"] == whole["seen"][4:] == [[s, [0.02 * 0.5**s] + [0.001 * 0.5**s] * 3]
                                                           for s in range(4, 12)]
            assert [key for key, _ in resumed["moments"]][:1] == ["momentum_buffer"]  # FlatMuon's, then AdamW's
            continue
        # the GAN's run-wide 2:1 cycle goes on from where it stood: C C G | C C G | ...; the critic's lr halves at
        # each of its steps, the generator's stays 0.01
        assert [(step, which) for step, _, which, _ in whole["seen"]] == [
            (s, "CCG"[s % 3]) for s in range(12)]
        assert resumed["seen"] == [event for event in whole["seen"] if event[0] >= 4]
        assert resumed["counts"] == [8, 4]


def warmup_cosine(step: int, base: float, floor: float, warmup: int = 3, total: int = 12) -> float:
    """warmup_cosine's closed form: (k + 1) / warmup of `base`, then a cosine to `floor` x `base` at the last step
    (the recipes' ``min_lr`` 0.001 is absolute, of the top-level lr: a `floor` of 0.001 / 0.1 or 0.001 / 0.05)."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - (warmup - 1)) / (total - warmup)
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def test_resume_recipe_trains_the_new_recipe_from_the_step_reached_with_the_moments_kept(spawned):
    ranks = scenario(spawned, "fsdp2_resume_changed")
    recipe = ranks[0]["recipe"]
    assert ranks[1]["recipe"]["lr_log"] == recipe["lr_log"]
    # the new recipe's warmup_cosine (lrs 0.05 and 0.025) at steps 4 to 11 of its 12: past its warm-up
    assert [lr for _, _, lrs in recipe["lr_log"] for lr in lrs] == pytest.approx(
        [lr for s in range(4, 12) for lr in [warmup_cosine(s, 0.05, 0.02)] * 2 + [warmup_cosine(s, 0.025, 0.02)] * 2],
        rel=1e-9)
    assert recipe["positions"] == [4]
    # when training starts: the new groups' settings, AdamW's moments of the 4 steps taken
    assert recipe["started"] == {"groups": [
        ["decay", pytest.approx(warmup_cosine(4, 0.05, 0.02)), 0.05, 0.02],
        ["no_decay", pytest.approx(warmup_cosine(4, 0.05, 0.02)), 0.05, 0.0],
        ["decoder", pytest.approx(warmup_cosine(4, 0.025, 0.02)), 0.025, 0.02],
        ["decoder/no_decay", pytest.approx(warmup_cosine(4, 0.025, 0.02)), 0.025, 0.0]], "steps": [4.0]}
    assert recipe["counts"] == [["scheduler", 8, 8], ["optimizer", 8, 8]]
    assert recipe["table"].splitlines() == [
        "what                                              | checkpoint | new recipe | training uses",
        "optimizer 0, group 'decay': lr                    | 0.0884192  | 0.0442681  | 0.0442681",
        "optimizer 0, group 'decay': initial_lr            | 0.1        | 0.05       | 0.05",
        "optimizer 0, group 'decay': weight_decay          | 0.01       | 0.02       | 0.02",
        "optimizer 0, group 'no_decay': lr                 | 0.0884192  | 0.0442681  | 0.0442681",
        "optimizer 0, group 'no_decay': initial_lr         | 0.1        | 0.05       | 0.05",
        "optimizer 0, group 'decoder': lr                  | 0.0442096  | 0.022134   | 0.022134",
        "optimizer 0, group 'decoder': initial_lr          | 0.05       | 0.025      | 0.025",
        "optimizer 0, group 'decoder': weight_decay        | 0.01       | 0.02       | 0.02",
        "optimizer 0, group 'decoder/no_decay': lr         | 0.0442096  | 0.022134   | 0.022134",
        "optimizer 0, group 'decoder/no_decay': initial_lr | 0.05       | 0.025      | 0.025",
    ]
    # the recipe was chosen: rank 0 logs the table, once, and nothing warns
    assert recipe["warnings"] == [] and len(recipe["logged"]) == 1 and recipe["logged"][0].startswith(
        "Resuming from the checkpoint 'epoch=0-step=4.ckpt' with resume='recipe': training keeps the weights, the"
        " progress (global_step=4, epoch 0) and the optimizers' state")
    assert ranks[1]["recipe"]["warnings"] == [] and ranks[1]["recipe"]["logged"] == []


def test_resume_checkpoint_keeps_the_checkpoints_settings_and_says_what_they_override(spawned):
    ranks = scenario(spawned, "fsdp2_resume_changed")
    kept = ranks[0]["checkpoint"]
    # Lightning's behaviour: the checkpoint's lrs at step 4, then its base lrs (0.1 and 0.05) under the new
    # LambdaLR's function (a function is not saved), whose floor is 0.001 of 0.05: 2%
    assert [lr for _, _, lrs in kept["lr_log"] for lr in lrs] == pytest.approx(
        [lr for s in range(4, 12) for lr in [warmup_cosine(s, 0.1, 0.01 if s == 4 else 0.02)] * 2
         + [warmup_cosine(s, 0.05, 0.01 if s == 4 else 0.02)] * 2], rel=1e-9)
    assert [group[2:] for group in kept["started"]["groups"]] == [[0.1, 0.01], [0.1, 0.0], [0.05, 0.01],
                                                                  [0.05, 0.0]]
    assert kept["started"]["steps"] == [4.0]
    assert kept["table"].splitlines()[2] == (
        "optimizer 0, group 'decay': initial_lr            | 0.1        | 0.05       | 0.1")
    assert len(kept["warnings"]) == 1 and kept["warnings"][0].startswith(
        "Resuming from the checkpoint 'epoch=0-step=4.ckpt' with resume='checkpoint' (Lightning's behaviour): the"
        " checkpoint's optimizer and scheduler settings replace what `configure_optimizers` built")
    assert ranks[1]["checkpoint"]["warnings"] == []


def test_preview_from_the_sharded_checkpoint_is_what_the_resumed_run_trained(spawned):
    for seen in scenario(spawned, "fsdp2_resume_changed"):
        names = ["decay", "no_decay", "decoder", "decoder/no_decay"]
        trained = [[step, names[g], lr] for step, (_, _, lrs) in enumerate(seen["recipe"]["lr_log"], start=4)
                   for g, lr in enumerate(lrs)]
        assert seen["preview"] == trained
        assert seen["preview_table"] == seen["recipe"]["table"]


def test_a_cooldown_from_where_training_resumes_waits_for_the_sharded_checkpoint(spawned):
    for seen in scenario(spawned, "fsdp2_cooldown"):
        assert seen["fresh"].startswith(
            "The warmup_stable_decay scheduler starts its decay where training resumes (decay_start='now'), but this"
            " run does not resume from a checkpoint")
        # resumed at step 4 of 8: a linear cooldown over the 4 steps left, to 0 at the last (lrs 0.1 and 0.05)
        assert [[epoch, batch] for epoch, batch, _ in seen["lr_log"]] == [[1, b] for b in range(4)]
        assert [lr for _, _, lrs in seen["lr_log"] for lr in lrs] == pytest.approx(
            [lr for f in (0.75, 0.5, 0.25, 0.0) for lr in (0.1 * f, 0.1 * f, 0.05 * f, 0.05 * f)], abs=1e-12)


def test_the_sharded_checkpoint_keeps_the_record_of_each_schedulers_cadence(spawned):
    """torch's distributed state dicts keep only `state` and `param_groups`: the record of the scheduler's class and
    cadence rides at the checkpoint's top level, so a scheduler whose cadence changed (a 'step' LambdaLR, 4 steps
    taken, into an 'epoch' ExponentialLR) resumes at the epochs trained (1), not at the old count (4)."""
    for seen in scenario(spawned, "fsdp2_resume_cadence"):
        assert seen["positions"] == [1]
        assert [lr for _, _, lrs in seen["lr_log"] for lr in lrs] == pytest.approx(
            [lr for halvings in [1] * 4 + [2] * 4 for lr in [0.1 * 0.5**halvings] * 2 + [0.05 * 0.5**halvings] * 2],
            rel=1e-12)
        rows = [[cell.strip() for cell in line.split("|")] for line in seen["table"].splitlines()]
        assert ["scheduler 0: class", "LambdaLR", "ExponentialLR", "ExponentialLR"] in rows
        assert ["scheduler 0 (ExponentialLR): interval", "step", "epoch", "epoch"] in rows
        assert ["scheduler 0 (ExponentialLR): steps taken", "4", "1", "1"] in rows
