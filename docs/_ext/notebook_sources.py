"""The tutorials: the repository's ``notebooks/*.ipynb``, made part of the docs' source tree when the build starts.

Sphinx reads only files under its source folder, so ``docs/notebooks`` is made a link to ``../notebooks`` (build
output, ignored by git). The notebooks stay where they are, stripped of outputs in git and run by ``make test``;
MyST-NB executes them at build time in their own folder, as nbmake does, so a relative path in a notebook works in
both. Where links cannot be made, the notebooks are copied instead. ``tutorials.md`` lists them with a glob.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx

SOURCE = "../notebooks"
OUT = "notebooks"


def link_notebooks(app: Sphinx) -> None:
    out = Path(app.srcdir) / OUT
    source = (Path(app.srcdir) / SOURCE).resolve()
    if out.is_symlink() and out.resolve() == source:
        return
    if out.is_symlink() or out.is_file():
        out.unlink()
    elif out.is_dir():
        shutil.rmtree(out)
    try:
        os.symlink(SOURCE, out, target_is_directory=True)
    except OSError:
        shutil.copytree(source, out, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("builder-inited", link_notebooks)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
