"""Both callbacks under ``strategy="ddp"`` with 2 CPU processes (gloo), for `OptimRecipeMixin`, for
`AlternatingOptimizersMixin` (n_critic 2:1 frequency dicts) and for a Muon `HybridOptimizer` recipe: every rank sees the same lrs and makes the same
alternation choices, `SchedulerCadenceCheck` raises no `CadenceError` on either rank and reports the same counts,
and the logs are written once: only rank 0 writes ``metrics.csv`` and ``cadence_report.csv``. A third fit trains a
schedule-free recipe with validation and checkpoints: `ScheduleFreeModes` switches the modes on both ranks.

The ranks train in the suite's one multi-rank run (tests/spawned.py: scenarios ``callbacks_recipe``,
``callbacks_gan``, ``callbacks_hybrid`` and ``schedulefree`` of tests/spawned_ddp.py), and each rank wrote what it saw
as JSON. Each rank's CSVLogger gets its own directory, so a write by rank 1 would show.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from helpers import scenario

pytestmark = [pytest.mark.trainer, pytest.mark.slow]


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def ddp_run(spawned):
    """The run's folder and, per rank, each fit's results by name."""
    root, _ = spawned
    fits = {name: scenario(spawned, scenario_name) for name, scenario_name in (
        ("recipe", "callbacks_recipe"), ("gan", "callbacks_gan"), ("hybrid", "callbacks_hybrid"),
        ("schedulefree", "schedulefree"))}
    return root, [{name: seen[rank] for name, seen in fits.items()} for rank in (0, 1)]


def test_ranks_run_ddp_over_gloo(ddp_run):
    _, ranks = ddp_run
    for rank, seen in enumerate(ranks):
        for name in ("recipe", "gan"):
            assert (seen[name]["world_size"], seen[name]["backend"], seen[name]["global_rank"]) == (2, "gloo", rank)


def test_recipe_mixin_same_lrs_on_every_rank(ddp_run):
    root, ranks = ddp_run
    assert ranks[0]["recipe"]["seen"] == ranks[1]["recipe"]["seen"]
    # groups decay, no_decay, decoder, decoder/no_decay, halved after every optimizer step (exact in binary)
    assert ranks[0]["recipe"]["seen"] == [[s, [0.1 * 0.5**s] * 2 + [0.4 * 0.5**s] * 2] for s in range(8)]
    assert ranks[0]["recipe"]["report"] == ranks[1]["recipe"]["report"]
    assert [(r["kind"], r["expected"], r["expected_max"], r["actual"]) for r in ranks[0]["recipe"]["report"]] == [
        ("scheduler", 8, 8, 8), ("optimizer", 8, 8, 8)]
    rows = read_csv(root / "logs-recipe" / "rank0" / "run" / "version_0" / "metrics.csv")
    assert [int(row["step"]) for row in rows] == list(range(8))
    names = ["lr-SGD/decay", "lr-SGD/no_decay", "lr-SGD/decoder", "lr-SGD/decoder/no_decay"]
    for step, row in enumerate(rows):
        assert [float(row[name]) for name in names] == [0.1 * 0.5**step] * 2 + [0.4 * 0.5**step] * 2


def test_alternating_mixin_same_choices_and_lrs_on_every_rank(ddp_run):
    root, ranks = ddp_run
    gan0, gan1 = ranks[0]["gan"], ranks[1]["gan"]
    assert gan0["seen"] == gan1["seen"] and gan0["counts"] == gan1["counts"] == [6, 2]
    # run-wide cycle 2:1 over 8 batches (4 per epoch): C C G C | C G C C; the critic's lr halves after each of its
    # steps, the generator's stays 0.2
    choices = [which for _, _, which, _ in gan0["seen"]]
    assert choices == list("CCGCCGCC")
    assert [batch for _, batch, _, _ in gan0["seen"]] == [0, 1, 2, 3, 0, 1, 2, 3]
    critic_steps = [choices[:s].count("C") for s in range(8)]
    assert [lrs for _, _, _, lrs in gan0["seen"]] == [[[0.1 * 0.5**k], [0.2]] for k in critic_steps]
    assert gan0["report"] == gan1["report"]
    assert [(r["kind"], r["frequency"], r["expected"], r["actual"]) for r in gan0["report"]] == [
        ("scheduler", 1, 6, 6), ("optimizer", 2, 6, 6), ("optimizer", 1, 2, 2)]
    rows = read_csv(root / "logs-gan" / "rank0" / "run" / "version_0" / "metrics.csv")
    # LearningRateLogger: the critic's at every step ('step' scheduler), the generator's (no scheduler) too
    assert [int(row["step"]) for row in rows if row["lr-SGD"]] == list(range(8))
    assert [float(row["lr-SGD"]) for row in rows if row["lr-SGD"]] == [0.1 * 0.5**k for k in critic_steps]
    assert {float(row["lr-SGD-1"]) for row in rows if row["lr-SGD-1"]} == {0.2}


def test_hybrid_optimizer_same_weights_and_lrs_on_every_rank(ddp_run):
    root, ranks = ddp_run
    hybrid0, hybrid1 = ranks[0]["hybrid"], ranks[1]["hybrid"]
    # DDP averages the gradients before both parts step: every rank ends with the same weights
    assert hybrid0["weights"] == hybrid1["weights"] and hybrid0["seen"] == hybrid1["seen"]
    # Muon's hidden group, then AdamW's three groups, halved after every step
    assert hybrid0["seen"] == [[s, [0.02 * 0.5**s] + [0.001 * 0.5**s] * 3] for s in range(8)]
    assert [(r["kind"], r["name"], r["expected"], r["actual"]) for r in hybrid0["report"]] == [
        ("scheduler", "lr-Muon+lr-AdamW", 8, 8), ("optimizer", "lr-Muon+lr-AdamW", 8, 8)]
    rows = read_csv(root / "logs-hybrid" / "rank0" / "run" / "version_0" / "metrics.csv")
    names = ["lr-Muon/hidden", "lr-AdamW/head", "lr-AdamW/head/no_decay", "lr-AdamW/scalar/no_decay"]
    for step, row in enumerate(rows):
        assert [float(row[name]) for name in names] == [0.02 * 0.5**step] + [0.001 * 0.5**step] * 3


def test_schedule_free_modes_on_every_rank(ddp_run):
    """`ScheduleFreeModes` (added by the mixin) switches the modes on both ranks: train mode for every step, the
    same evaluation weights after fit on both, and rank 0's checkpoints hold them in eval mode."""
    import torch

    root, ranks = ddp_run
    sf0, sf1 = ranks[0]["schedulefree"], ranks[1]["schedulefree"]
    assert sf0["callbacks"].count("ScheduleFreeModes") == 1
    assert sf0["seen"] == sf1["seen"] == [[True, k] for k in range(8)]  # 4 steps per epoch and rank
    assert sf0["weights"] == sf1["weights"] and sf0["train_mode"] is sf1["train_mode"] is False
    saved = torch.load(root / "ckpt-schedulefree" / "epoch=1-step=8.ckpt", weights_only=False)
    assert [g["train_mode"] for g in saved["optimizer_states"][0]["param_groups"]] == [False, False]
    for name, value in sf0["weights"].items():  # the last save, then the end of fit: the same evaluation weights
        assert torch.allclose(saved["state_dict"][name], torch.tensor(value), rtol=1e-5, atol=1e-6), name
    assert sorted(p.name for p in (root / "ckpt-schedulefree").iterdir()) == ["epoch=0-step=4.ckpt",
                                                                             "epoch=1-step=8.ckpt"]


def test_logs_written_once(ddp_run):
    root, _ = ddp_run
    for name in ("recipe", "gan", "hybrid"):
        written = sorted(p.relative_to(root / f"logs-{name}").as_posix()
                         for p in (root / f"logs-{name}").rglob("*") if p.is_file())
        assert written == ["rank0/run/version_0/cadence_report.csv", "rank0/run/version_0/metrics.csv"]
