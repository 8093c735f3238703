"""The notebooks run top to bottom, and are stored without outputs.

Each notebook's code cells run in order in one fresh namespace, from the notebooks' folder, with
``LOR_NOTEBOOK_QUICK=1`` (the notebooks shorten their longest training then), in this process: a kernel per notebook
would only add its start-up and a second import of torch and Lightning. `make docs` executes them again in real
Jupyter kernels (MyST-NB), outputs rendered.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import matplotlib
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

pytestmark = [pytest.mark.filterwarnings("ignore")]


def code_cells(path: Path) -> list[str]:
    cells = json.loads(path.read_text())["cells"]
    return ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 9


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_the_notebook_runs_top_to_bottom(path, monkeypatch):
    monkeypatch.chdir(path.parent)
    monkeypatch.setenv("LOR_NOTEBOOK_QUICK", "1")
    matplotlib.use("Agg")
    namespace = {"__name__": "__main__"}
    with warnings.catch_warnings():
        for index, source in enumerate(code_cells(path)):
            exec(compile(source, f"{path.name}, cell {index}", "exec"), namespace)
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_the_notebook_is_stored_without_outputs(path):
    cells = json.loads(path.read_text())["cells"]
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    assert code and all(cell["outputs"] == [] and cell["execution_count"] is None for cell in code)
