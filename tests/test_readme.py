"""The README's code runs as written: every Python snippet, in a fresh namespace and an empty working directory; a
line `print(...)` followed by a comment line `# text` must print exactly `text`, and every snippet has one. The two
LightningCLI commands run one after the other."""

from __future__ import annotations

import contextlib
import io
import re
import runpy
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SNIPPETS = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)

pytestmark = pytest.mark.filterwarnings("ignore")


def expected_prints(code: str) -> list[str]:
    """The comment line right after each `print(...)` line."""
    lines = code.splitlines()
    return [lines[i + 1][2:] for i, line in enumerate(lines[:-1])
            if line.lstrip().startswith("print(") and lines[i + 1].startswith("# ")]


@pytest.mark.parametrize("code", SNIPPETS, ids=[f"snippet{i}" for i in range(len(SNIPPETS))])
def test_snippet_runs_as_written(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(code, "README.md", "exec"), {"__name__": "__readme__"})
    printed = [line for line in out.getvalue().splitlines() if line.strip()]
    for expected in expected_prints(code):
        assert expected in printed, f"expected the line {expected!r}, printed: {printed}"


def test_there_are_snippets_and_they_have_their_imports_and_their_output():
    assert len(SNIPPETS) >= 10
    for code in SNIPPETS:
        assert "import " in code, code[:80]
        assert expected_prints(code), f"no `print(...)` followed by `# expected output` in: {code[:80]}"


def test_the_two_lightningcli_commands_run_one_after_the_other(tmp_path, monkeypatch):
    """Each command as `python` would run it (the script as ``__main__``, its arguments in ``sys.argv``, from the
    repository's root), in this process: a second interpreter would only add its start-up."""
    commands = re.findall(r"^(python examples/train_cli\.py .*)$", README, flags=re.MULTILINE)
    assert len(commands) == 2
    monkeypatch.chdir(ROOT)
    for command in commands:
        script, *args = command.split()[1:]
        monkeypatch.setattr(sys, "argv", [script, *args, "--trainer.default_root_dir", str(tmp_path)])
        runpy.run_path(str(ROOT / script), run_name="__main__")
    assert (tmp_path / "lightning_logs").is_dir() or any(tmp_path.iterdir())
    assert not (ROOT / "config.yaml").exists()


def test_the_catalogue_table_lists_every_recipe_once():
    from lightning_optim_recipes import list_recipes

    section = README.split("## The recipe catalogue", 1)[1].split("\n## ", 1)[0]
    names = re.findall(r"^\| `([a-z0-9-]+)` \|", section, flags=re.MULTILINE)
    assert sorted(names) == sorted(list_recipes()) and len(names) == len(set(names))


def test_the_api_table_names_only_exported_names():
    import lightning_optim_recipes

    section = README.split("## API", 1)[1]
    for cell in re.findall(r"^\| (.+?) \| .+ \|$", section, flags=re.MULTILINE)[2:]:
        for name in re.findall(r"`([\w.]+)`", cell):
            if name.startswith("lightning_optim_recipes."):
                __import__(name)
            else:
                assert name in lightning_optim_recipes.__all__, name
