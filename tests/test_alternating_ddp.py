"""`AlternatingOptimizersMixin` under ``strategy="ddp"`` with 2 CPU processes (gloo): every rank makes the same
choices, and the same as one process on the whole batches. The ranks train in the suite's one multi-rank run
(tests/spawned.py, scenario ``alternating`` of tests/spawned_ddp.py, whose `train_alternating` this test runs again
in one process)."""

from __future__ import annotations

import pytest
from helpers import scenario
from spawned_ddp import train_alternating

pytestmark = [pytest.mark.trainer, pytest.mark.slow]


def test_ddp_two_cpu_ranks_make_the_same_choices(spawned, tmp_path):
    rank0, rank1 = scenario(spawned, "alternating")
    # 13 batches per rank and epoch, 26 over the run: the critic runs at run-wide positions p % 4 in {0, 1, 2}
    # (20 batches, windows of 2 -> 10 steps), the generator at p = 3, 7, ..., 23 (6 steps)
    assert rank0["counts"] == rank1["counts"] == [10, 6]
    assert rank0["global_step"] == rank1["global_step"] == 16
    assert rank0["events"] == rank1["events"]
    assert [e[1:3] for e in rank0["events"][:6]] == [[1, "C"], [3, "G"], [4, "C"], [6, "C"], [7, "G"], [9, "C"]]
    assert [e[3] for e in rank0["events"] if e[2] == "C"] == [0.1] * 4 + [0.05] * 4 + [0.025] * 2
    assert rank0["params"] == rank1["params"]  # gradients were all-reduced: the replicas stayed identical
    single = train_alternating(tmp_path, 0, devices=1)  # the same batches of 4 in one process: the same steps
    assert single["events"] == rank0["events"]
    assert [p for ps in single["params"] for p in ps] == pytest.approx([p for ps in rank0["params"] for p in ps])
