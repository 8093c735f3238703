"""The one multi-rank run of the test suite: ``python tests/spawned.py OUT`` trains every 2-rank CPU (gloo) scenario
one after the other in the same two processes, DDP's (`spawned_ddp`) then FSDP2's (`spawned_fsdp2`), and each rank
writes what it saw to ``OUT/rank<r>.json`` (one entry per scenario; a scenario that raised has ``{"error": ...}``
with its traceback, and the others still run).

Lightning's launcher (``strategy="ddp"`` and `ModelParallelStrategy` alike) starts rank 1 by re-running this command
line; the second and later Trainers reuse both processes and the process group. `conftest.py` starts this script in
the background as soon as the tests are collected (when a collected test uses the ``spawned`` fixture), so that the
ranks train while the other tests run, and the fixture waits for it; process start-up and imports are paid once.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
import warnings
from datetime import timedelta
from pathlib import Path

TESTS = Path(__file__).resolve().parent
#: The process group's timeout: a scenario that hangs on one rank fails in this time, not Lightning's 30 minutes.
TIMEOUT = timedelta(seconds=120)


def main(root: Path) -> None:
    sys.path.insert(0, str(TESTS))
    import torch

    torch.set_num_threads(1)  # tiny models: one thread each (2 ranks on a 2-core machine)
    import spawned_ddp
    import spawned_fsdp2

    from lightning_optim_recipes import RecipeWarning

    rank = int(os.environ.get("LOCAL_RANK", 0))  # set by the launcher for rank 1, and for rank 0 once it launched
    results: dict[str, object] = {}
    for module in (spawned_ddp, spawned_fsdp2):
        for name, scenario in module.SCENARIOS.items():
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("ignore")
                warnings.simplefilter("always", RecipeWarning)
                try:
                    result = scenario(root, rank)
                except Exception:  # noqa: BLE001 - the test of this scenario reports it
                    result = {"error": traceback.format_exc()}
            if isinstance(result, dict) and "recipe_warnings" not in result:
                result["recipe_warnings"] = [str(w.message) for w in caught if issubclass(w.category, RecipeWarning)]
            results[name] = result
    (root / f"rank{rank}.json").write_text(json.dumps(results))
    exit_cleanly()


def exit_cleanly() -> None:
    """Both ranks have written their results: end the process group and exit without the interpreter's teardown,
    where gloo's threads can abort a rank ("terminate called without an active exception") on a loaded machine."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    warnings.filterwarnings("ignore")
    main(Path(sys.argv[1]))
