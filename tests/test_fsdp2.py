"""FSDP2 (Lightning's `ModelParallelStrategy(data_parallel_size=2, tensor_parallel_size=1)`, ``fully_shard`` in
``configure_model``) on 2 CPU ranks (gloo): param groups by name and membership as on the unsharded module, the
mixins, a catalogue recipe, a GAN of two sharded submodules, Muon on sharded matrices and both callbacks train as the
DDP run of the same module on the same batches does, step for step; FSDP1's flattened parameters are refused.

The ranks train in the suite's one multi-rank run (tests/spawned.py, scenarios of tests/spawned_fsdp2.py); each
rank wrote what it saw as JSON, which the ``spawned`` fixture reads.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from helpers import scenario
from spawned_fsdp2 import Blocks, build_groups

pytestmark = [pytest.mark.trainer, pytest.mark.slow]

BIASES_AND_NORMS = ["blocks.0.0.bias", "blocks.0.1.weight", "blocks.0.1.bias", "blocks.1.0.bias", "blocks.1.1.weight",
                    "blocks.1.1.bias"]
TWIN_EXEMPT = ["twin.0.bias", "twin.1.weight", "twin.1.bias"]


def test_param_groups_on_the_sharded_module_are_the_unsharded_ones(spawned):
    ranks = scenario(spawned, "fsdp2_groups")
    for seen in ranks:  # every parameter of the sharded blocks is a DTensor; the unsharded twin's are not
        assert seen["types"] == {**{name: "DTensor" for name in ["embed.weight", "blocks.0.0.weight", *BIASES_AND_NORMS[:3],
                                                                 "blocks.1.0.weight", *BIASES_AND_NORMS[3:],
                                                                 "head.weight", "head.bias"]},
                                 **{name: "Parameter" for name in ["twin.0.weight", *TWIN_EXEMPT]}}
        assert seen["fsdp_modules"] == ["FSDPEmbedding", "FSDPSequential", "FSDPSequential", "FSDPLinear"]
    built = ranks[0]["built"]
    assert ranks[1]["built"] == built
    assert built == build_groups(Blocks())  # the same module, unsharded, in this process
    assert built["default"] == [
        ["decay", ["embed.weight", "blocks.0.0.weight", "blocks.1.0.weight", "head.weight", "twin.0.weight"], None, 0.1],
        ["no_decay", [*BIASES_AND_NORMS, "head.bias", *TWIN_EXEMPT], None, 0.0],
    ]
    assert built["overrides"] == [
        ["decay", ["embed.weight", "blocks.0.0.weight", "blocks.1.0.weight", "twin.0.weight"], None, 0.1],
        ["no_decay", [*BIASES_AND_NORMS, *TWIN_EXEMPT], None, 0.0],
        ["head", ["head.weight"], 0.5, 0.1],
        ["head/no_decay", ["head.bias"], 0.5, 0.0],
    ]
    assert built["layer_decay"] == [  # lr 1.0 at the top (layer 3), halved per layer below
        ["layer_0", ["embed.weight"], 0.125, 0.1],
        ["layer_1", ["blocks.0.0.weight"], 0.25, 0.1],
        ["layer_1/no_decay", BIASES_AND_NORMS[:3], 0.25, 0.0],
        ["layer_2", ["blocks.1.0.weight"], 0.5, 0.1],
        ["layer_2/no_decay", BIASES_AND_NORMS[3:], 0.5, 0.0],
        ["layer_3", ["head.weight", "twin.0.weight"], 1.0, 0.1],
        ["layer_3/no_decay", ["head.bias", *TWIN_EXEMPT], 1.0, 0.0],
    ]
    hidden = [line.split()[0] for line in built["muon_split"].splitlines() if " Muon " in line]
    assert hidden == ["blocks.0.0.weight", "blocks.1.0.weight", "twin.0.weight"]
    # the fit check read the sharded run: its cosine, written for 100 steps, warns once, on rank 0 (as Lightning's own
    # warnings do); the untrained twin (an unsharded copy of a sharded block, value for value) is known for a copy, not
    # reported as untrained
    assert [[w.split(":")[0] for w in seen["recipe_warnings"]] for seen in ranks] == [[
        "The CosineAnnealingLR scheduler is written for 100 scheduler steps (T_max=100), but this run steps it 4"
        " times (interval='step'"], []]


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("name", ["recipe", "gan", "hybrid"])
def test_sharded_runs_train_as_the_ddp_run_does(spawned, name):
    """The same module, seed and batches: FSDP2 steps and logs exactly what DDP does (the reduce-scatter averages
    the same two gradients the all-reduce does; Muon gathers each update whole, see test_muon_gathers...)."""
    ddp, fsdp2 = scenario(spawned, f"callbacks_{name}"), scenario(spawned, f"fsdp2_{name}")
    for rank in (0, 1):
        assert fsdp2[rank]["seen"] == ddp[rank]["seen"]
        assert fsdp2[rank]["weights"] == ddp[rank]["weights"]
        assert fsdp2[rank]["report"] == ddp[rank]["report"]  # the cadence check's rows, names included
        assert fsdp2[rank]["counts"] == ddp[rank]["counts"]
        assert fsdp2[rank]["recipe_warnings"] == []
    assert fsdp2[0]["weights"] == fsdp2[1]["weights"]
    if name == "recipe":  # the fit checks looked at the sharded module without calling its class (FSDP2 would
        assert [seen["made"] for seen in fsdp2] == [1, 1]  # run its __init__ again)


def test_the_logs_are_written_once_with_the_ddp_runs_values(spawned):
    root, _ = spawned
    for name in ("recipe", "gan", "hybrid"):
        folder = root / f"logs-fsdp2-{name}"
        written = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        assert written == ["rank0/run/version_0/cadence_report.csv", "rank0/run/version_0/metrics.csv"]
        assert _read_csv(folder / "rank0/run/version_0/metrics.csv") == \
            _read_csv(root / f"logs-{name}/rank0/run/version_0/metrics.csv")
    rows = _read_csv(root / "logs-fsdp2-hybrid/rank0/run/version_0/metrics.csv")
    assert [float(row["lr-Muon/hidden"]) for row in rows] == [0.02 * 0.5**step for step in range(8)]


def test_muon_gathers_sharded_matrices_and_torch_muon_on_them_warns(spawned):
    ranks = scenario(spawned, "fsdp2_hybrid")
    assert [len(seen["torch_muon"]) for seen in ranks] == [1, 0]  # rank 0 warns, as Lightning's own warnings do
    for seen in ranks:
        assert seen["parts"] == ["FlatMuon", "AdamW"]  # `hybrid_optimizer` chose the gathering Muon
        assert seen["flat_muon"] == []
    for seen in ranks[:1]:
        assert seen["torch_muon"][0].startswith(
            "torch.optim.Muon holds 1 matrices sharded as DTensors (FSDP2 or tensor parallelism): its Newton-Schulz"
            " iteration then runs as distributed matrix products")
        assert "Use `FlatMuon`" in seen["torch_muon"][0]


def test_schedule_free_modes_switch_on_every_rank_and_the_shards_are_saved_in_eval_mode(spawned):
    ddp, fsdp2 = scenario(spawned, "schedulefree"), scenario(spawned, "fsdp2_schedulefree")
    for rank in (0, 1):
        assert fsdp2[rank]["seen"] == ddp[rank]["seen"] == [[True, k] for k in range(8)]
        assert fsdp2[rank]["train_mode"] is False  # the end of fit: the evaluation weights
        assert fsdp2[rank]["callbacks"].count("ScheduleFreeModes") == 1
        assert fsdp2[rank]["saved_train_mode"] == [False, False]  # the directory's param groups, read back
        assert list(fsdp2[rank]["weights"]) == list(ddp[rank]["weights"])
        for name, value in fsdp2[rank]["weights"].items():  # the same evaluation weights as the DDP run's
            assert value == _flat(ddp[rank]["weights"][name]), name


def _flat(value):
    return [x for item in value for x in _flat(item)] if isinstance(value, list) else [value]


def gpt3_lr(k: int, peak: float = 0.01) -> float:
    """`gpt-pretrain` over 8 steps with a 2-step warm-up: (k + 1) / 2 of the peak, then a cosine from step 1 to
    10% at step 6 (its decay covers round(8 x 260 / 300) = 7 steps), held after."""
    if k < 2:
        return peak * (k + 1) / 2
    progress = min((k - 1) / 5, 1.0)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def test_a_catalogue_recipe_with_clipping_trains_as_under_ddp(spawned):
    for seen in scenario(spawned, "fsdp2_catalogue"):
        ddp, fsdp2 = seen["ddp"], seen["fsdp2"]
        assert fsdp2["lr_log"] == ddp["lr_log"]
        assert [lrs[0] for _, _, lrs in ddp["lr_log"]] == pytest.approx([gpt3_lr(k) for k in range(8)], rel=1e-12)
        assert all(before > 1.0 for before in ddp["norms_before"])  # the clipping at 1.0 is at work
        assert fsdp2["norms_after"] == pytest.approx([1.0] * 8, rel=1e-5)
        assert fsdp2["norms_before"] == pytest.approx(ddp["norms_before"], rel=1e-6)
        # the gradient norm is summed over the shards, in another order: the weights agree to float rounding
        assert [w for ws in fsdp2["weights"] for w in ws] == pytest.approx(
            [w for ws in ddp["weights"] for w in ws], rel=1e-6, abs=1e-8)


def test_fsdp1_flattened_parameters_are_refused_before_anything_is_decided(spawned):
    flat_views = ("`{}` got parameters that FSDP1 (`FullyShardedDataParallel(use_orig_params=True)`) has flattened"
                  " into 1-D views of each rank's shard: their names are right but their shapes are not")
    for seen in scenario(spawned, "fsdp1"):
        for what in ("param_groups", "muon_split"):
            assert seen[f"{what}/False"].startswith(
                f"`{what}` got the flat parameters of FSDP1 (`FullyShardedDataParallel` without"
                " `use_orig_params=True`): '_fsdp_wrapped_module._flat_param' hold every parameter")
            assert "`FSDPStrategy(use_orig_params=True)`" in seen[f"{what}/False"]
            assert seen[f"{what}/True"].startswith(flat_views.format(what))
            assert "`ModelParallelStrategy(data_parallel_size=..., tensor_parallel_size=1)`" in seen[f"{what}/True"]
        # the fix the message names for param groups: by name and module type only
        assert seen["by_name"] == [
            ["decay", ["_fsdp_wrapped_module.0.weight", "_fsdp_wrapped_module.2.weight"], None, 0.1],
            ["no_decay", ["_fsdp_wrapped_module.0.bias", "_fsdp_wrapped_module.1.weight",
                          "_fsdp_wrapped_module.1.bias", "_fsdp_wrapped_module.2.bias"], None, 0.0],
        ]
