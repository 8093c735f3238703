import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(__file__))

warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*GPU available but not used.*")

import torch
from hypothesis import settings

# The property tests draw the same examples on every machine and keep no database: a failure in CI is a failure here.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.load_profile("repeatable")

# Tiny models: one thread is several times faster than two on a loaded 2-core machine.
torch.set_num_threads(1)


# ----------------------------------------------------------------------- every silencing advice silences its warning
# A RecipeWarning that says "silence this with `warnings.filterwarnings('ignore', PATTERN)`" must be silenced by it:
# `warnings` matches PATTERN at the start of the message (re.I). Every RecipeWarning the suite raises is checked.
import re  # noqa: E402

from lightning_optim_recipes.errors import RecipeWarning  # noqa: E402

_ADVICE = re.compile(r"warnings\.filterwarnings\('ignore', (['\"])(.*?)\1(?:, RecipeWarning)?\)")
_UNSILENCED: dict[str, str] = {}
_NO_ADVICE: dict[str, str] = {}
_warning_init = RecipeWarning.__init__


def _recording_init(self, *args):
    _warning_init(self, *args)
    text = str(args[0]) if args else ""
    if not _ADVICE.search(text):
        _NO_ADVICE[text[:60]] = text
    for match in _ADVICE.finditer(text):
        if not re.compile(match.group(2), re.I).match(text):
            _UNSILENCED[match.group(2)] = text


RecipeWarning.__init__ = _recording_init


def pytest_sessionfinish(session, exitstatus):
    if _NO_ADVICE and os.environ.get("LOR_REPORT_ADVICE"):
        print("\nNO ADVICE:\n" + "\n".join(_NO_ADVICE.values()))
    if _UNSILENCED:
        lines = [f"  {pattern!r} does not match the start of: {text[:160]}" for pattern, text in _UNSILENCED.items()]
        print("\nSilencing advice that would not silence its RecipeWarning:\n" + "\n".join(lines))
        session.exitstatus = 1


# ------------------------------------------------------------------------ the multi-rank run (tests/spawned.py)
# One script trains every 2-rank scenario (DDP, then FSDP2) in the same two processes. It starts in the background as
# soon as the tests are collected, when a collected test uses the `spawned` fixture, and those tests run last, so that
# its ranks train while the other tests run; the fixture waits for it (once per session).
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

_SPAWNED: dict = {}
_SPAWNED_TIMEOUT = 600  # seconds; each scenario's collectives time out sooner (spawned.TIMEOUT)


def pytest_collection_modifyitems(session, config, items):
    """The tests that read the multi-rank run last, so that its ranks train while all the others run."""
    items[:] = sorted(items, key=lambda item: "spawned" in getattr(item, "fixturenames", ()))


def pytest_collection_finish(session):
    if session.config.option.collectonly or not any(
            "spawned" in getattr(item, "fixturenames", ()) for item in session.items):
        return
    root = Path(tempfile.mkdtemp(prefix="lor-spawned-"))
    output = open(root / "output.txt", "w")
    script = Path(__file__).resolve().parent / "spawned.py"
    _SPAWNED.update(root=root, output=output, process=subprocess.Popen(
        [sys.executable, str(script), str(root)], cwd=root, stdout=output, stderr=subprocess.STDOUT,
        env=dict(os.environ, PYTHONWARNINGS="ignore")))


@pytest.fixture(scope="session")
def spawned():
    """The multi-rank run's results: ``(root, [rank 0's, rank 1's])``, each a dict of scenario name -> what that rank
    saw (see tests/spawned.py)."""
    if "process" not in _SPAWNED:
        pytest.fail("the multi-rank run was not started (collected tests use the `spawned` fixture)")
    process, root = _SPAWNED["process"], _SPAWNED["root"]
    try:
        code = process.wait(timeout=_SPAWNED_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        code = "killed after %d s" % _SPAWNED_TIMEOUT
    _SPAWNED["output"].close()
    ranks = [root / f"rank{rank}.json" for rank in (0, 1)]
    if code != 0 or not all(path.exists() for path in ranks):
        pytest.fail(f"the multi-rank run (tests/spawned.py) ended with {code}:\n"
                    + (root / "output.txt").read_text()[-4000:])
    return root, [json.loads(path.read_text()) for path in ranks]


def pytest_unconfigure(config):
    process = _SPAWNED.get("process")
    if process is not None and process.poll() is None:
        process.kill()
        process.wait()
    if "root" in _SPAWNED:
        shutil.rmtree(_SPAWNED["root"], ignore_errors=True)
