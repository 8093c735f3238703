"""The API reference, generated from ``lightning_optim_recipes.__all__`` at every build: nothing to keep in sync.

Writes ``api/index.rst`` (one section per area, a table of names with their first docstring line) and one page per
name (``api/<name>.rst``, rendered by autodoc from the docstrings). Names are grouped by the module that defines
them (`SECTIONS`); a name from a module no section claims lands in "More", so a new export is never left out.
Data (``DEFAULT_NO_DECAY``, ``NORM_LAYERS``) take their text from the ``#:`` comment above their definition.

A section may also document names that the root does not export but its signatures mention (``SchedulerDict``, the
return type of every scheduler factory) and whole modules (``schedules``, ``cadence``), under their module's path.
Annotations name an object by the module that defines it (``lightning_optim_recipes.callbacks._cadence_report.
CadenceReport``): such references, and unqualified ones that match exactly one documented object (a docstring's
``Raises: LearningRateLoggerError``), resolve to the documented name. Any other unresolved reference to the
library still fails the build.
"""

from __future__ import annotations

import ast
import re
import importlib
import inspect
import pkgutil
import sys
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple, Optional

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging

PACKAGE = "lightning_optim_recipes"
OUT = "api"


class Section(NamedTuple):
    title: str
    line: str
    prefixes: tuple[str, ...] = ()  # root exports defined in these submodules belong here
    # "submodule.Name" documented under that path (skipped if absent): for names only prose mentions (a docstring's
    # "Raises:"); a class that a documented signature names gets its page without being listed
    extras: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()  # submodules documented whole


#: In the README's API order.
SECTIONS: list[Section] = [
    Section("Param groups", "Weight decay where it belongs, per-module options, layer-wise lr decay.",
            ("param_groups", "param_checks", "no_decay", "layer_decay")),
    Section("Muon beside AdamW", "The per-parameter split and one optimizer over Muon and AdamW (see :doc:`/muon`).",
            ("muon_split", "hybrid")),
    Section("Schedulers with a cadence",
            "Scheduler dicts that say when they step, warmup-stable-decay and cooldowns from any checkpoint, pure"
            " step -> multiplier schedules for ``LambdaLR``, and lengths in units (``'10ep'``, ``'5%'``).",
            ("schedulers", "schedules", "wsd", "units"), (), ("schedules", "units")),
    Section("The validator", "Every ``configure_optimizers`` form of Lightning 1.x and 2.x, checked and normalized.",
            ("validation",)),
    Section("Declarative recipes",
            "A plain (YAML-friendly) dict for ``configure_optimizers``, and the mixin that checks it.",
            ("recipe", "mixins.recipe_mixin")),
    Section("The recipe catalogue", "Named recipes from papers, with their sources (see :doc:`/recipes`).",
            ("recipes", "catalogue")),
    Section("Alternating optimizers",
            "Several optimizers and WGAN ``n_critic`` on Lightning 2.x (see :doc:`/alternation`), and the one model "
            "of the training loop's cadence that it, the preview and the cadence check share.",
            ("mixins.alternating", "cadence"), (), ("cadence",)),
    Section("Callbacks", "Learning rates logged, scheduler cadences checked, ``configure_optimizers`` validated, "
            "schedule-free optimizers switched between train and eval mode.",
            ("callbacks", "schedule_free_modes"), ("naming.LearningRateLoggerError",
                             "callbacks.lr_logger.LearningRateLoggerWarning")),
    Section("Previews", "The schedule before training: records, a DataFrame, a plot.", ("preview", "trajectory", "plot")),
    Section("Errors and warnings", "What the library raises and warns.", ("errors",)),
]
MORE = Section("More", "Other names: public, or named by a signature above.")

#: "defining_module.QualName" -> the documented name, and short name -> documented names; filled by `generate`.
ALIASES: dict[str, str] = {}
SHORT: dict[str, set[str]] = {}

logger = logging.getLogger(__name__)


def _assigned_names(module: str) -> set[str]:
    """Names the module's own source assigns at top level (not those it imports)."""
    tree = ast.parse(inspect.getsource(importlib.import_module(module)))
    names: set[str] = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) else []
        names.update(target.id for target in targets if isinstance(target, ast.Name))
    return names


def _defining_module(package: Any, name: str, obj: Any) -> str:
    """The module an exported object comes from: ``__module__``, or for data, the submodule that assigns it."""
    module = getattr(obj, "__module__", None)
    if isinstance(module, str) and module.startswith(PACKAGE) and (inspect.isclass(obj) or callable(obj)):
        return module
    for info in pkgutil.walk_packages(package.__path__, PACKAGE + ".", onerror=lambda _: None):
        if info.name.endswith("__main__"):
            continue
        try:
            sub = importlib.import_module(info.name)
        except ImportError:  # a module for an optional dependency the docs do not install
            continue
        if vars(sub).get(name) is obj and name in _assigned_names(info.name):
            return info.name
    return PACKAGE


def _comment_doc(module: str, name: str) -> list[str]:
    return list(ModuleAnalyzer.for_module(module).find_attr_docs().get(("", name), []))


def _first_sentence(lines: list[str]) -> str:
    paragraph: list[str] = []
    for line in lines:
        if not line.strip():
            if paragraph:
                break
            continue
        paragraph.append(line.strip())
    text = " ".join(paragraph)
    end = re.search(r"(?<!\be\.g)(?<!\bi\.e)\.(\s|$)", text)  # not at "e.g. "
    return text[: end.start() + 1] if end else text


def _is_data(obj: Any) -> bool:
    return not (inspect.isclass(obj) or callable(obj) or inspect.ismodule(obj))


def _section_of(module: str) -> Section:
    best, length = MORE, -1
    for section in SECTIONS:
        for prefix in section.prefixes:
            full = f"{PACKAGE}.{prefix}"
            if (module == full or module.startswith(full + ".")) and len(full) > length:
                best, length = section, len(full)
    return best


def _title(text: str) -> str:
    return f"{text}\n{'=' * len(text)}\n\n"


def _page(name: str, obj: Any, module: str, where: str) -> str:
    """The page of `obj`, documented as ``<where>.<name>``."""
    head = _title(name) + f".. currentmodule:: {where}\n\n"
    if inspect.isclass(obj):
        options = "   :show-inheritance:\n" if issubclass(obj, BaseException) else \
            "   :members:\n   :show-inheritance:\n"
        return head + f".. autoclass:: {name}\n{options}"
    if inspect.isfunction(obj):
        return head + f".. autofunction:: {name}\n"
    doc = "\n".join(f"   {line}" for line in _comment_doc(module, name))
    kind = type(obj)
    if kind.__module__.startswith(PACKAGE):
        typ = f"   :type: {ALIASES.get(f'{kind.__module__}.{kind.__qualname__}', kind.__qualname__)}\n"
    else:
        typ = f"   :type: {kind.__qualname__}\n" if kind.__module__ == "builtins" else ""
        if isinstance(obj, tuple) and obj and all(inspect.isclass(item) for item in obj):
            doc += "\n\n   " + ", ".join(f"``{item.__module__}.{item.__qualname__}``" for item in obj)
        elif len(repr(obj)) < 400:
            doc += f"\n\n   ``{obj!r}``"
    return head + f".. py:data:: {name}\n{typ}\n{doc}\n\n   Defined in ``{module}``.\n"


def _module_page(module: str) -> str:
    return _title(f"The {module.rsplit('.', 1)[-1]} module") + f".. automodule:: {module}\n   :members:\n"


def _write(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _register(obj: Any, public: str) -> None:
    if inspect.isclass(obj) or inspect.isfunction(obj):
        ALIASES[f"{obj.__module__}.{obj.__qualname__}"] = public
    SHORT.setdefault(public.rsplit(".", 1)[-1], set()).add(public)


def _doc_lines(obj: Any, module: str, name: str) -> list[str]:
    return _comment_doc(module, name) if _is_data(obj) else (inspect.getdoc(obj) or "").splitlines()


def _classes_in(hint: Any) -> Iterator[type]:
    """The classes an annotation names: ``Optional[list[SchedulerDict]]`` -> ``SchedulerDict``, ``list``."""
    if isinstance(hint, type) and not typing.get_args(hint):
        yield hint
    origin = typing.get_origin(hint)
    if isinstance(origin, type):
        yield origin
    for arg in typing.get_args(hint):
        for item in arg if isinstance(arg, list) else [arg]:  # Callable[[A, B], C]
            yield from _classes_in(item)


def _mentioned(obj: Any) -> Iterator[type]:
    """The classes `obj`'s page shows: in its signature, its class's annotations and public members, its bases."""
    targets: list[Any] = []
    if inspect.isclass(obj):
        targets.append(obj)
        for name, member in vars(obj).items():
            if name.startswith("_") and name != "__init__":
                continue
            if isinstance(member, property):
                targets.append(member.fget)
            elif isinstance(member, (classmethod, staticmethod)):
                targets.append(member.__func__)
            elif inspect.isfunction(member):
                targets.append(member)
        yield from obj.__bases__
    elif inspect.isfunction(obj):
        targets.append(obj)
    for target in targets:
        try:
            hints = typing.get_type_hints(target)
        except Exception:  # an annotation only a type checker resolves: autodoc shows it as written
            continue
        for hint in hints.values():
            yield from _classes_in(hint)


def _public_module(cls: type) -> str:
    """The shortest path without a private part that has `cls` (``catalogue`` for ``catalogue._registry.Source``)."""
    parts = cls.__module__.split(".")
    for end in range(2, len(parts) + 1):
        if parts[end - 1].startswith("_"):
            break
        module = sys.modules.get(".".join(parts[:end]))
        if module is not None and getattr(module, cls.__name__, None) is cls:
            return ".".join(parts[:end])
    return cls.__module__


def generate(app: Sphinx) -> None:
    package = importlib.import_module(PACKAGE)
    out = Path(app.srcdir) / OUT
    ALIASES.clear()
    SHORT.clear()
    rows: dict[str, list[tuple[str, str, str]]] = {}  # section -> (reference, summary, page)
    documented: set[int] = set()  # ids of the objects with a page, or on a module's page
    scan: list[Any] = []  # objects whose pages may mention more classes of the library
    texts: dict[str, str] = {}

    def document(obj: Any, name: str, where: str, module: str, section: str) -> None:
        _register(obj, f"{where}.{name}")
        documented.add(id(obj))
        doc = _doc_lines(obj, module, name)
        if not doc:
            logger.warning("%s.%s has no docstring: its API page would be empty", where, name, type="lor")
        page = name if where == PACKAGE else f"{where}.{name}"
        ref = f":py:obj:`{name}`" if where == PACKAGE else f":py:obj:`~{where}.{name}`"
        rows.setdefault(section, []).append((ref, _first_sentence(doc), page))
        texts[page] = _page(name, obj, module, where)
        scan.append(obj)

    for name in package.__all__:
        obj = getattr(package, name)
        module = _defining_module(package, name, obj)
        document(obj, name, PACKAGE, module, _section_of(module).title)
    for section in SECTIONS:
        for module in section.modules:
            full = f"{PACKAGE}.{module}"
            imported = importlib.import_module(full)
            doc = _first_sentence((inspect.getdoc(imported) or "").splitlines())
            rows.setdefault(section.title, []).append((f":py:mod:`{full}`", doc, full))
            texts[full] = _module_page(full)
            for name in getattr(imported, "__all__", ()):
                obj = getattr(imported, name)
                if id(obj) not in documented:
                    _register(obj, f"{full}.{name}")
                    documented.add(id(obj))
                    scan.append(obj)
        for extra in section.extras:
            where, _, name = f"{PACKAGE}.{extra}".rpartition(".")
            obj = _import_optional(where, name)
            if obj is not None and id(obj) not in documented:
                document(obj, name, where, where, section.title)
    while scan:  # every class of the library that a documented signature names gets a page too
        for cls in _mentioned(scan.pop(0)):
            if id(cls) not in documented and cls.__module__.startswith(PACKAGE + "."):
                document(cls, cls.__name__, _public_module(cls), cls.__module__, _section_of(cls.__module__).title)
    text = [_title("API reference"), f".. currentmodule:: {PACKAGE}", "",
            f"Every public name of ``{PACKAGE}`` (its ``__all__``), to import from the package root::", "",
            f"    from {PACKAGE} import param_groups, warmup_cosine, OptimRecipeMixin", "",
            "and, under their module's name, the classes their signatures mention and two whole modules.", ""]
    pages: list[str] = []  # in the order of the sections, as the sidebar lists them
    for section in [*SECTIONS, MORE]:
        if not rows.get(section.title):
            continue
        pages += [page for _, _, page in rows[section.title]]
        text += [section.title, "-" * len(section.title), "", section.line, "", ".. list-table::",
                 "   :widths: 35 65", ""]
        for ref, summary, _ in rows[section.title]:
            text += [f"   * - {ref}", f"     - {summary}"]
        text.append("")
    text += [".. toctree::", "   :hidden:", "", *(f"   {page}" for page in pages), ""]
    for page, content in texts.items():
        _write(out / f"{page}.rst", content)
    _write(out / "index.rst", "\n".join(text))
    for stale in out.glob("*.rst"):
        if stale.stem not in pages and stale.stem != "index":
            stale.unlink()


def _import_optional(module: str, name: str) -> Optional[Any]:
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def resolve_alias(app: Sphinx, env: Any, node: nodes.Element, contnode: nodes.Element) -> Optional[nodes.Node]:
    """A reference by defining module, or by a short name only one documented object has: to that object."""
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"]
    public = ALIASES.get(target)
    if public is None and "." not in target and len(SHORT.get(target, ())) == 1:
        (public,) = SHORT[target]
    if public is None:
        return None
    return env.get_domain("py").resolve_xref(env, node["refdoc"], app.builder, node["reftype"], public, node,
                                             contnode)


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("builder-inited", generate)
    app.connect("missing-reference", resolve_alias, priority=50)  # before soft_refs' fallback to code
    return {"parallel_read_safe": True, "parallel_write_safe": True}
