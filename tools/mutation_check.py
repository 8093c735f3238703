"""A small mutation check: break one spot of the library at a time and run only the tests that claim to cover it.

Each mutation below is a one-line break of a core module (the validator, param groups and the no-decay rule, the loop
model, the learning-rate logger, the 1.x port) or one that issue #23 found surviving its own test. Each is applied in
a temporary copy of the repository (the working tree is never touched, whatever happens), its tests are run with
``python -m pytest -q -x``, and a table says which break the tests caught. A break no test catches means a test that
cannot fail for the reason its name gives.

Sites are found by a unique source substring, not by line number, in the file named (or, when that file has moved,
anywhere in the package); a substring found nowhere, or more than once, is reported as "site not found".

Run from the repository root with the project's environment (3 to 5 minutes on 2 cores):

    .venv/bin/python tools/mutation_check.py             # every mutation
    .venv/bin/python tools/mutation_check.py cadence     # those whose name or file contains "cadence"

Exit status: 0 when every mutation was applied and caught; 1 when a mutation survived its tests; 2 when none survived
but a site was not found, the unmutated tests failed, or a run errored (collection error, timeout).
Only the standard library is used; the tests need the project's test extras (`make install`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "lightning_optim_recipes"
#: Not copied: version control, environments, caches and build outputs.
IGNORED = shutil.ignore_patterns(".git", ".venv", ".hypothesis", "__pycache__", ".mypy_cache", ".pytest_cache",
                                 "*.egg-info", "build", "dist", "demo_out", "lightning_logs", "_build", "_generated")
TIMEOUT_S = 600


@dataclasses.dataclass(frozen=True)
class Mutation:
    name: str
    path: str  # relative to the package
    find: str  # a unique source substring
    replace: str
    tests: tuple[str, ...]  # pytest node ids, relative to the repository root


MUTATIONS = (
    Mutation(
        "validator rejects every input",
        "validation.py",
        "    optimizers, entries, frequencies = _parse(value)\n",
        "    raise RecipeError('rejected')  # mutation\n",
        ("tests/test_fuzz.py::test_validate_optimizers_validates_or_raises_recipe_error",),
    ),
    Mutation(
        "lightning_value always raises",
        "validation.py",
        "        if not self.optimizers:\n            return None\n",
        "        raise RecipeError('no value')  # mutation\n",
        ("tests/test_fuzz.py::test_validate_optimizers_validates_or_raises_recipe_error",),
    ),
    Mutation(
        "a misspelt 'lr_scheduler' key passes",
        "validation.py",
        'if key not in OPTIMIZER_DICT_KEYS and "lr_scheduler" not in opt_dict and _holds_scheduler(value):',
        "if False:  # mutation",
        ("tests/test_validation.py::test_errors",),
    ),
    Mutation(
        "exempt groups keep their weight decay",
        "param_groups.py",
        'group["weight_decay"] = 0.0',
        "pass  # mutation",
        ("tests/test_param_groups.py::test_default_groups",),
    ),
    Mutation(
        "no_weight_decay() hooks never found",
        "no_decay.py",
        "    hook = getattr(module, \"no_weight_decay\", None)\n    return hook if callable(hook) else None\n",
        "    return None  # mutation\n",
        ("tests/test_param_groups.py::test_groups_equal_the_rule_stated_plainly",),
    ),
    Mutation(
        "'step' frequency counted in optimizer steps under automatic optimization",
        "cadence.py",
        'count = batch_idx + 1 if loop.mode == "automatic" else steps',
        "count = steps  # mutation",
        ("tests/test_cadence_check.py::test_correct_automatic_module_passes_and_reports",
         "tests/test_cadence_check.py::test_automatic_accumulation_follows_lightnings_rule"),
    ),
    Mutation(
        "the logger logs nothing",
        "callbacks/lr_logger.py",
        "    def _log(self, trainer: Any, entries: list[_Entry]) -> None:\n",
        "    def _log(self, trainer: Any, entries: list[_Entry]) -> None:\n        return  # mutation\n",
        ("tests/test_lr_logger_parity.py::test_no_momentum_warning_when_every_optimizer_has_one",),
    ),
    Mutation(
        "the mixin skips the module's own optimizer_step",
        "mixins/_port1x.py",
        "    return name in module.__dict__ or user_hook(type(module), name) is not None\n",
        '    return name != "optimizer_step" and (name in module.__dict__'
        ' or user_hook(type(module), name) is not None)  # mutation\n',
        ("tests/test_port1x.py::test_optimizer_step_ports_under_bf16",),
    ),
    Mutation(
        "the fit check never runs",
        "fit_checks.py",
        "    if trainer is None or not setup.schedulers:\n",
        "    if True:  # mutation\n",
        ("tests/test_fit_checks.py::test_schedules_that_fit_the_run_get_no_warning",),
    ),
    Mutation(
        "the cosine stops short",
        "schedules.py",
        "    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * progress))\n",
        "    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * progress * 0.9))  # mutation\n",
        ("tests/test_schedules.py::test_schedules_plug_into_lambda_lr_and_pickle",),
    ),
    Mutation(
        "TTUR's critic lr 4e-4 becomes 3e-4",
        "recipes/gans.py",
        '"critic": {"optimizer": "Adam", "lr": 4e-4,',
        '"critic": {"optimizer": "Adam", "lr": 3e-4,',
        ("tests/test_recipes_catalogue.py::test_get_recipe_works_wherever_a_recipe_dict_does",
         "tests/test_recipes_catalogue.py::test_gan_previews_alternate_and_keep_the_lrs",
         "tests/test_recipes_catalogue.py::test_gan_recipes_train"),
    ),
    Mutation(
        "wgan-gp's n_critic row deleted",
        "recipes/gans.py",
        '        ("5 critic steps per generator step", "Algorithm 1", "ncritic = 5"),\n',
        "",
        ("tests/test_recipes_catalogue.py::test_every_entry_cites_its_source_and_every_number",),
    ),
)


@dataclasses.dataclass
class Outcome:
    mutation: Mutation
    site: str = "-"
    verdict: str = "site not found"
    detail: str = ""
    seconds: float = 0.0


def locate(tree: Path, mutation: Mutation) -> tuple[Path, int] | None:
    """(file, offset) of the mutation's unique substring: in its file, else anywhere in the package; None if the
    substring is in no file, or more than once."""
    named = tree / PACKAGE / mutation.path
    if named.is_file() and named.read_text().count(mutation.find) == 1:
        return named, named.read_text().index(mutation.find)
    hits = [(path, path.read_text()) for path in sorted((tree / PACKAGE).rglob("*.py"))]
    hits = [(path, text) for path, text in hits if mutation.find in text]
    if len(hits) == 1 and hits[0][1].count(mutation.find) == 1:
        return hits[0][0], hits[0][1].index(mutation.find)
    return None


def pytest(tree: Path, tests: list[str], env: dict[str, str]) -> tuple[int | None, str, float]:
    """(return code or None on timeout, output, seconds) of ``python -m pytest -q -x tests`` in `tree`."""
    command = [sys.executable, "-m", "pytest", "-q", "-x", *tests]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None, "", time.perf_counter() - start
    return done.returncode, done.stdout + done.stderr, time.perf_counter() - start


def first_failure(output: str) -> str:
    found = re.search(r"^(?:FAILED|ERROR) (\S+)", output, flags=re.MULTILINE)
    return found.group(1).rpartition("/")[2] if found else ""


def run(mutations: list[Mutation], tree: Path) -> list[Outcome]:
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1")
    where = subprocess.run([sys.executable, "-c", f"import {PACKAGE}; print({PACKAGE}.__file__)"], cwd=tree, env=env,
                           capture_output=True, text=True)
    if not where.stdout.strip().startswith(str(tree)):
        sys.exit(f"the copy's package is not the one imported ({where.stdout.strip() or where.stderr.strip()})")
    tests = sorted({test for mutation in mutations for test in mutation.tests})
    print(f"unmutated: {len(tests)} test functions ...", flush=True)
    code, output, seconds = pytest(tree, tests, env)
    if code != 0:
        print(output[-3000:])
        print(f"the unmutated tests do not pass (return code {code}, {seconds:.0f} s): nothing to measure")
        sys.exit(2)
    print(f"unmutated: passed ({seconds:.0f} s)\n", flush=True)
    outcomes = []
    for number, mutation in enumerate(mutations, 1):
        outcome = Outcome(mutation)
        outcomes.append(outcome)
        site = locate(tree, mutation)
        if site is None:
            print(f"[{number}/{len(mutations)}] {mutation.name}: site not found", flush=True)
            continue
        path, offset = site
        original = path.read_text()
        line = original.count("\n", 0, offset) + 1
        outcome.site = f"{path.relative_to(tree / PACKAGE)}:{line}"
        path.write_text(original[:offset] + mutation.replace + original[offset + len(mutation.find):])
        try:
            code, output, outcome.seconds = pytest(tree, list(mutation.tests), env)
        finally:
            path.write_text(original)
        if code == 1:
            outcome.verdict, outcome.detail = "yes", f"first failure {first_failure(output)}"
        elif code == 0:
            outcome.verdict = "NO"
        else:
            outcome.verdict = "timeout" if code is None else f"error (pytest returned {code})"
            outcome.detail = output.strip().splitlines()[-1] if output.strip() else ""
        detail = f", {outcome.detail}" if outcome.detail else ""
        print(f"[{number}/{len(mutations)}] {mutation.name}: {outcome.verdict}{detail} ({outcome.seconds:.0f} s)",
              flush=True)
    return outcomes


def table(outcomes: list[Outcome]) -> str:
    """One row per mutation: its name, its site (file:line in the package), caught or not, seconds, tests run."""
    rows = [("mutation", "site", "caught", "s", "tests run")]
    for o in outcomes:
        tests = ", ".join(test.removeprefix("tests/") for test in o.mutation.tests)
        rows.append((o.mutation.name, o.site, o.verdict, f"{o.seconds:.0f}", tests))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join([*(cell.ljust(width) for cell, width in zip(row, widths)), row[4]]).rstrip()
                     for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("only", nargs="*", help="run only the mutations whose name or file contains one of these")
    args = parser.parse_args(argv)
    mutations = [m for m in MUTATIONS if not args.only or any(word in m.name or word in m.path for word in args.only)]
    if not mutations:
        parser.error(f"no mutation matches {args.only}")
    with tempfile.TemporaryDirectory(prefix="mutation_check_") as tmp:
        tree = Path(tmp) / "repo"
        shutil.copytree(ROOT, tree, ignore=IGNORED)
        outcomes = run(mutations, tree)
    print()
    print(table(outcomes))
    survived = [o for o in outcomes if o.verdict == "NO"]
    other = [o for o in outcomes if o.verdict not in ("yes", "NO")]
    print(f"\n{len(outcomes) - len(survived) - len(other)} of {len(outcomes)} mutations caught", end="")
    print(f"; survived: {', '.join(o.mutation.name for o in survived)}" if survived else "", end="")
    print(f"; not run: {', '.join(o.mutation.name for o in other)}" if other else "")
    return 1 if survived else 2 if other else 0


if __name__ == "__main__":
    sys.exit(main())
