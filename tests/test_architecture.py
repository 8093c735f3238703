"""The package's imports run one way, as docs/architecture.md lays out: no import from a lower layer to a higher one,
no circle (function-level imports included), every module placed in a layer, callbacks off the resume machinery."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lightning_optim_recipes"
DOC = ROOT / "docs" / "architecture.md"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)  # "" for the package root


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports_of(name: str, path: Path, modules: set[str]) -> set[str]:
    """The package's modules that `name` imports, anywhere in its source (function-level imports included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = [p for p in ("lightning_optim_recipes." + package).split(".") if p]
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names = [f"{module}.{alias.name}" for alias in node.names]
            # `from package import submodule` imports the submodule; `from module import Name`, the module
            targets = [t for t in names if _short(t) in modules] + ([module] if any(
                _short(t) not in modules for t in names) else [])
        else:
            continue
        for target in targets:
            if not target.startswith("lightning_optim_recipes"):
                continue
            short = _short(target)
            while short and short not in modules:
                short = short.rpartition(".")[0]
            if short and short in modules and short != name:  # the root runs first whatever is imported
                found.add(short)
    return found


def _short(target: str) -> str:
    return target[len("lightning_optim_recipes"):].lstrip(".")


def layers() -> list[tuple[int, list[str]]]:
    """(layer number, module patterns) from the table of docs/architecture.md."""
    rows = []
    for line in DOC.read_text().splitlines():
        match = re.match(r"\| (\d+) [^|]+\| ([^|]+) \|", line)
        if match:
            rows.append((int(match.group(1)), re.findall(r"`([^`]+)`", match.group(2))))
    return rows


def layer_of(module: str, table: list[tuple[int, list[str]]]) -> int:
    for number, patterns in table:
        for pattern in patterns:
            if pattern.endswith("/") and (module == pattern[:-1] or module.startswith(pattern[:-1] + ".")):
                return number
            if module == pattern:
                return number
    if module == "":  # the package root: the public surface, on top
        return max(number for number, _ in table)
    raise LookupError(module)


def test_the_table_places_every_module_once():
    table = layers()
    assert [number for number, _ in table] == list(range(11)), "layers 0..10, in order"
    unplaced = []
    for module in all_modules():
        try:
            layer_of(module, table)
        except LookupError:
            unplaced.append(module)
    assert unplaced == [], f"add these modules to a layer of docs/architecture.md: {unplaced}"
    patterns = [p for _, row in table for p in row]
    assert len(patterns) == len(set(patterns))


def test_no_import_goes_up():
    table, modules = layers(), all_modules()
    upward = []
    for name, path in modules.items():
        mine = layer_of(name, table)
        for target in imports_of(name, path, set(modules)):
            if layer_of(target, table) > mine:
                upward.append(f"{name or '(root)'} (layer {mine}) imports {target} (layer {layer_of(target, table)})")
    assert upward == []


def test_no_circle_function_level_imports_included():
    modules = all_modules()
    graph = {name: imports_of(name, path, set(modules)) for name, path in modules.items()}
    # a package's __init__ runs before any of its submodules: a submodule importing its own package's root is a circle
    circles = []
    for start in graph:
        stack, seen = [(start, (start,))], set()
        while stack:
            node, trail = stack.pop()
            for target in graph[node]:
                if target == start:
                    circles.append(" -> ".join(trail + (start,)))
                elif target not in seen:
                    seen.add(target)
                    stack.append((target, trail + (target,)))
    assert circles == []


@pytest.mark.parametrize("package", ["callbacks", "mixins"])
def test_entry_points_reach_the_resume_machinery_only_through_before_training(package):
    modules = all_modules()
    machinery = {"resume", "resume.checkpoint", "resume.place", "resume.compare", "resume.reconcile", "resume.preview"}
    reached = {
        (name, target)
        for name, path in modules.items() if name.startswith(package + ".")
        for target in imports_of(name, path, set(modules)) if target in machinery
    }
    assert reached == set()


def test_callbacks_and_mixins_do_not_import_each_other():
    modules = all_modules()
    crossing = {
        (name, target)
        for name, path in modules.items()
        for target in imports_of(name, path, set(modules))
        if {name.partition(".")[0], target.partition(".")[0]} == {"callbacks", "mixins"}
    }
    assert crossing == set()


def test_the_checks_can_fail(tmp_path):
    """The parser sees an upward import and a function-level circle (a test that cannot fail is a defect)."""
    table = layers()
    source = "def f():\n    from lightning_optim_recipes.preview import preview_schedule\n"
    path = tmp_path / "cadence.py"
    path.write_text(source)
    found = imports_of("cadence", path, set(all_modules()))
    assert found == {"preview"} and layer_of("preview", table) > layer_of("cadence", table)
