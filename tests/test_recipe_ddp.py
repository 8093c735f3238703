"""`strategy="ddp"` with 2 CPU processes (gloo): `OptimRecipeMixin` gives every rank the same lrs, and lengths in
units resolve against each rank's share of the data.

Lightning's "ddp" launches its other ranks by re-running the command line (`sys.argv`), which under pytest would
re-run the test session: so the test writes a small script to `tmp_path`, runs it with `python script.py`, and each
rank writes what it saw as JSON.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import NAMESPACE

pytestmark = [pytest.mark.trainer, pytest.mark.slow]

TESTS = Path(__file__).resolve().parent

SCRIPT = textwrap.dedent(
    """
    import json, sys, warnings
    sys.path.insert(0, sys.argv[2])
    warnings.filterwarnings("ignore")
    from helpers import NAMESPACE, TinyRegressor, loader, pl
    import torch
    from lightning_optim_recipes import OptimRecipeMixin, warmup_stable_decay

    class RecipeRegressor(OptimRecipeMixin, TinyRegressor):
        optim_recipe = {
            "optimizer": "AdamW", "lr": 0.1, "weight_decay": 0.01, "overrides": {"decoder": {"lr": 0.05}},
            "scheduler": {"type": "warmup_cosine", "warmup_steps": 3, "min_lr": 0.001},
        }

    model = RecipeRegressor()
    trainer = pl.Trainer(
        accelerator="cpu", devices=2, strategy="ddp", max_epochs=2, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=sys.argv[1],
    )
    trainer.fit(model, loader(8))  # 8 batches of 4, split by the DistributedSampler: 4 batches per rank and epoch
    groups = trainer.optimizers[0].param_groups
    # lengths in units, resolved against this rank's share of the run
    units = warmup_stable_decay(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1), warmup="1ep",
                                decay="25%", decay_start="6ba", trainer=trainer)["scheduler"].lengths
    with open(f"{sys.argv[1]}/rank{trainer.global_rank}.json", "w") as f:
        json.dump({
            "namespace": NAMESPACE, "world_size": trainer.world_size, "backend": trainer.strategy._process_group_backend,
            "total_steps": trainer.lr_scheduler_configs[0].scheduler.total_steps,
            "names": [g["name"] for g in groups], "lr_log": model.lr_log, "units": units,
        }, f)

    # end cleanly: both ranks have written their results; gloo's threads at interpreter exit can abort a rank
    # ("terminate called without an active exception") on a loaded machine
    import os, torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    sys.stdout.flush(); sys.stderr.flush()
    os._exit(0)
    """
)


def expected_lr(step: int, base: float, warmup: int = 3, total: int = 8, min_lr: float = 0.001) -> float:
    """warmup_cosine's closed form: (k + 1) / warmup during warmup, then a cosine to min_lr at the last step."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - (warmup - 1)) / (total - warmup)
    final = min_lr / 0.1
    return base * (final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress)))


def test_every_rank_sees_the_same_lrs(tmp_path):
    script = tmp_path / "ddp_recipe.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path), str(TESTS)],
        cwd=tmp_path, env=dict(os.environ), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    for seen in ranks:
        assert seen["namespace"] == NAMESPACE and seen["world_size"] == 2 and seen["backend"] == "gloo"
        assert seen["total_steps"] == 8  # estimated_stepping_batches counts each rank's share of the data
        assert seen["names"] == ["decay", "no_decay", "decoder", "decoder/no_decay"]
        # each rank's epoch is 4 batches (4 optimizer steps), its run 8: '6ba' is one epoch and 2 batches
        assert seen["units"] == {"warmup": ["1ep", 4], "decay": ["25%", 2], "decay_start": ["6ba", 6]}
    assert ranks[0]["lr_log"] == ranks[1]["lr_log"]
    log = ranks[0]["lr_log"]
    assert [(epoch, batch) for epoch, batch, _ in log] == [(e, b) for e in range(2) for b in range(4)]
    for step, (_, _, lrs) in enumerate(log):
        base, decoder = expected_lr(step, 0.1), expected_lr(step, 0.05)
        assert lrs == pytest.approx([base, base, decoder, decoder], rel=1e-9), step
    assert log[-1][2][0] == pytest.approx(0.001)
