"""Packaging: the build backend, the license, and a wheel that ships `py.typed` (PEP 561) and the declared metadata."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from configparser import ConfigParser
from email.parser import Parser
from pathlib import Path

import pytest

import lightning_optim_recipes

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.cfg", "setup.py", "README.md", "LICENSE", "lightning_optim_recipes")


def test_pyproject_declares_the_setuptools_backend():
    build_system = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]
    assert build_system["build-backend"] == "setuptools.build_meta"
    assert any(req.replace(" ", "").startswith("setuptools>=") for req in build_system["requires"])


def test_license_is_the_declared_apache_2():
    setup_cfg = ConfigParser()
    setup_cfg.read(ROOT / "setup.cfg")
    assert setup_cfg["metadata"]["license"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text


def test_py_typed_is_in_the_package():
    assert (Path(lightning_optim_recipes.__file__).parent / "py.typed").is_file()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the sources (so the build leaves nothing in the work tree)."""
    src, dist = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("dist")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, src / name)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-cache-dir", "-q"]
    result = subprocess.run([*command, "-w", str(dist), str(src)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    (path,) = dist.glob("lightning_optim_recipes-*.whl")
    return path


def test_the_wheel_ships_py_typed_and_the_license(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "lightning_optim_recipes/py.typed" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") or name.endswith(".dist-info/LICENSE") for name in names)
    assert not any(name.startswith(("tests/", "examples/", "benchmarks/")) for name in names)


def test_the_wheel_metadata(wheel):
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(archive.read(name).decode())
        entry_points = archive.read(name.replace("METADATA", "entry_points.txt")).decode()
    assert metadata["Version"] == lightning_optim_recipes.__version__
    assert metadata["Requires-Python"] == ">=3.11"
    assert "Apache-2.0" in (metadata["License-Expression"] or metadata["License"])
    requires = metadata.get_all("Requires-Dist")
    assert {r.split(">=")[0] for r in requires if "extra ==" not in r} == {"torch", "pytorch-lightning", "torchmetrics"}
    assert {"demo", "test"} <= set(metadata.get_all("Provides-Extra"))
    assert "lightning-optim-recipes = lightning_optim_recipes.__main__:main" in entry_points
