"""The command line: `python -m lightning_optim_recipes preview MODULE:CLASS`, called through `main(argv)`."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

from lightning_optim_recipes import __version__
from lightning_optim_recipes.__main__ import main

EXAMPLE = str(Path(__file__).resolve().parents[1] / "examples" / "preview_example.py")

CLASSIFIER_TABLE = f"""\
{EXAMPLE}:Classifier: 3 epochs x 4 batches -> 12 optimizer steps
learning rate of each param group, logged as named below: first -> last optimizer step of each epoch
epoch  steps  lr-AdamW/encoder  lr-AdamW/encoder/no_decay  lr-AdamW/decay   lr-AdamW/no_decay
0      0-3    0.0003            0.0003                     0.003            0.003
1      4-7    0.0003            0.0003                     0.003            0.003
2      8-11   0.00015           0.00015                    0.0015           0.0015
markers: step 8 milestone 2 (epoch)
"""


def test_preview_prints_the_table_and_writes_the_plot(tmp_path, capsys):
    out = tmp_path / "plots" / "lr.png"
    argv = ["preview", f"{EXAMPLE}:Classifier", "--epochs", "3", "--steps-per-epoch", "4",
            "--init-args", '{"lr": 0.003, "milestones": [2]}', "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert capsys.readouterr().out == CLASSIFIER_TABLE + f"plot written to {out}\n"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_preview_of_a_recipe_with_accumulation(capsys):
    argv = ["preview", f"{EXAMPLE}:WARMUP_RECIPE", "--epochs", "2", "--steps-per-epoch", "45",
            "--accumulate-grad-batches", "2"]  # fmt: skip
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    # ceil(45 / 2) = 23 optimizer steps per epoch; 20 warmup steps (peak at step 19), then a cosine over steps 19..45
    # to min_lr: lr(k) = 1e-5 + (1e-3 - 1e-5) * (1 + cos(pi * (k - 19) / 26)) / 2, so 0.0009678 at 22, 0.0009433 at 23
    assert lines[0] == f"{EXAMPLE}:WARMUP_RECIPE: 2 epochs x 45 batches, accumulating 2 -> 46 optimizer steps"
    assert lines[2].split() == ["epoch", "steps", "lr-AdamW/decay", "lr-AdamW/no_decay"]
    assert lines[3].split()[:5] == ["0", "0-22", "5e-05", "->", "0.0009678"]
    assert lines[4].split()[:5] == ["1", "23-45", "0.0009433", "->", "1e-05"]
    assert lines[5] == "markers: step 19 warmup end"


def test_long_runs_are_condensed(capsys):
    assert main(["preview", f"{EXAMPLE}:Classifier", "--epochs", "30", "--steps-per-epoch", "2"]) == 0
    rows = capsys.readouterr().out.splitlines()[3:-1]
    assert [row.split()[0] for row in rows] == [*map(str, range(10)), "...", *map(str, range(20, 30))]


def test_a_dotted_module_from_the_current_directory(tmp_path, monkeypatch, capsys):
    (tmp_path / "my_recipes.py").write_text("RECIPE = {'optimizer': 'SGD', 'lr': 0.5}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    assert main(["preview", "my_recipes:RECIPE", "--epochs", "1", "--steps-per-epoch", "2"]) == 0
    assert capsys.readouterr().out.splitlines()[3].split() == ["0", "0-1", "0.5", "0.5"]


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["preview", "no_colon"], "error: Expected MODULE:CLASS such as my_project.models:LitClassifier, got 'no_colon'."),
        (["preview", "no_such_module_xyz:Lit"], "error: Cannot import 'no_such_module_xyz': No module named"),
        (["preview", f"{EXAMPLE}:Missing"], "has no 'Missing'."),
        (["preview", f"{EXAMPLE}:Classifier", "--init-args", "[1]"], "error: --init-args must be a JSON object"),
        (["preview", f"{EXAMPLE}:Classifier", "--init-args", "{lr: 1}"], "error: --init-args must be a JSON object"),
        (["preview", f"{EXAMPLE}:Classifier", "--init-args", '{"size": 1}'],
         "error: Cannot build Classifier: Classifier.__init__() got an unexpected keyword argument 'size'."),
        (["preview", f"{EXAMPLE}:WARMUP_RECIPE", "--init-args", '{"a": 1}'], "--init-args is for a class, but"),
        (["preview", "missing_dir/model.py:Lit"], "error: No such file: 'missing_dir/model.py'."),
    ],
)
def test_errors_exit_with_1_and_a_message(argv, error, capsys):
    assert main(argv) == 1
    assert error in capsys.readouterr().err


@pytest.mark.parametrize(
    ("attr", "error"),
    [
        ("Classifer", "has no 'Classifer': did you mean 'Classifier'?"),
        ("classifier", "has no 'classifier': did you mean 'Classifier'?"),
        ("WARMUP_RECIPES", "has no 'WARMUP_RECIPES': did you mean 'WARMUP_RECIPE'?"),
        ("Missing", "has no 'Missing'."),
    ],
)
def test_a_missing_name_suggests_the_close_one(attr, error, capsys):
    assert main(["preview", f"{EXAMPLE}:{attr}"]) == 1
    assert capsys.readouterr().err == f"error: {EXAMPLE!r} {error}\n"


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"lightning-optim-recipes {__version__}\n"


def test_usage_errors_exit_with_2(capsys):
    assert main(["preview", "a:B", "--epochs", "0"]) == 2
    assert "--epochs: must be a positive int, got '0'" in capsys.readouterr().err
    assert main([]) == 2
    assert "preview" in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore:'lightning_optim_recipes.__main__' found in sys.modules:RuntimeWarning")
def test_python_dash_m_runs_it(monkeypatch, capsys):
    """`python -m lightning_optim_recipes` runs `__main__` as a script (in-process here: no second torch import)."""
    argv = ["lightning_optim_recipes", "preview", f"{EXAMPLE}:WARMUP_RECIPE", "--epochs", "1", "--steps-per-epoch", "25"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module("lightning_optim_recipes", run_name="__main__", alter_sys=True)
    assert exit_.value.code == 0
    assert "1 epochs x 25 batches -> 25 optimizer steps" in capsys.readouterr().out
