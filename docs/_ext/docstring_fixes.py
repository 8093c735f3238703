"""Docstring forms of this library that napoleon or docutils misread, normalized before napoleon parses them.

1. Several names on one line of an ``Args:`` or ``Attributes:`` section (``max_epochs, steps_per_epoch: the
   sizes``) become one entry per name with the same text; napoleon would read the first names as a type.
2. An attribute's docstring is prose (the library's types are in its annotations): napoleon would take the text
   before a first colon (``Explicit form: {method: batches}``) as the attribute's type. It is kept as text.

Tables are not repaired: a docstring's table that docutils rejects ("Malformed table") fails the build, to be fixed
at the source (a grid table, as in `lightning_optim_recipes.mixins.alternating`, or a ``list-table``).
"""

from __future__ import annotations

import re
from typing import Any

from sphinx.application import Sphinx
from sphinx.ext.napoleon.docstring import GoogleDocstring

_SECTION = re.compile(r"^(\s*)(Args|Arguments|Parameters|Attributes|Keyword Args|Other Parameters):\s*$")
_NAMES = re.compile(r"^(\s*)([A-Za-z_]\w*(?:,\s*[A-Za-z_]\w*)+):(\s.*|)$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def split_multi_name_entries(lines: list[str]) -> list[str]:
    out: list[str] = []
    header: Any = None  # the indent of the current Args/Attributes header, None outside one
    entry: Any = None  # the indent of its entries
    i = 0
    while i < len(lines):
        line = lines[i]
        section = _SECTION.match(line)
        if section:
            header, entry = len(section.group(1)), None
            out.append(line)
            i += 1
            continue
        if header is not None and line.strip():
            if _indent(line) <= header:
                header = None
            elif entry is None:
                entry = _indent(line)
        match = _NAMES.match(line) if header is not None and _indent(line) == entry else None
        if not match:
            out.append(line)
            i += 1
            continue
        j, continued = i + 1, []
        while j < len(lines):  # the entry's continuation: deeper lines, and blank lines between them
            k = j
            while k < len(lines) and not lines[k].strip():
                k += 1
            if k == len(lines) or _indent(lines[k]) <= entry:
                break
            continued.extend(lines[j:k + 1])
            j = k + 1
        for name in (n.strip() for n in match.group(2).split(",")):
            out.append(f"{match.group(1)}{name}:{match.group(3)}")
            out.extend(continued)
        i = j
    return out


def normalize(app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    lines[:] = split_multi_name_entries(lines)


def _attribute_docstring_as_text(self: GoogleDocstring) -> list[str]:
    return self.__class__(list(self._consume_to_end()), self._config).lines()


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("sphinx.ext.napoleon")
    GoogleDocstring._parse_attribute_docstring = _attribute_docstring_as_text  # type: ignore[method-assign]
    app.connect("autodoc-process-docstring", normalize, priority=400)  # napoleon's runs at 500
    return {"parallel_read_safe": True, "parallel_write_safe": True}
