"""`make demo`'s third stage, the one that shows the trajectory check: the hand-written warm-up warns before the first
step and trains stuck in its warm-up; fixed, it is silent and reaches its peak at step 99."""

from __future__ import annotations

import contextlib
import importlib.util
import io
from pathlib import Path


DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo.py"


def test_the_demo_shows_a_hand_written_warm_up_caught_and_the_fixed_one_silent(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("demo", DEMO)
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    monkeypatch.chdir(tmp_path)
    with contextlib.redirect_stdout(io.StringIO()) as out:
        result = demo.run_never_silent()
    (said, lrs), (fixed_said, fixed_lrs) = result["as written"], result["fixed: 'interval': 'step'"]
    assert len(said) == 1 and said[0].startswith("A LambdaLR (interval='epoch') of lr-AdamW is still rising when the"
                                                 " run ends: its lr grows from 3e-05 at step 0 to 0.00012 at the last"
                                                 " of the run's 128 optimizer steps")
    assert fixed_said == []
    # 4 epochs of 32 steps; as written the lr moves once per epoch: (epoch + 1) / 100 of 3e-3
    assert [round(lrs[s], 9) for s in (0, 31, 32, 127)] == [3e-5, 3e-5, 6e-5, 1.2e-4]
    # fixed: (step + 1) / 100 of 3e-3, the peak from step 99 on
    assert [round(fixed_lrs[s], 9) for s in (0, 31, 98, 99, 127)] == [3e-5, 9.6e-4, 2.97e-3, 3e-3, 3e-3]
    assert "RecipeWarning (as written), before the first step:" in out.getvalue()
