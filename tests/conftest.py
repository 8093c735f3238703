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
