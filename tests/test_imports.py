"""Import hygiene of ``initwise/``: no cycle, no private name across packages, no stray imports.

Everything is read with :mod:`ast` (nothing is imported; the whole file takes about a second
of CPU). The walker is tested first on small synthetic packages in ``tmp_path``, so a cycle or a
violation brought back into ``initwise/`` is known to fail these tests.

**The import graph.** A node is a module; a package is its ``__init__.py`` (node ``pkg``). Every
import of a module of the package is an edge (top level, inside functions, under ``try:``,
absolute or relative), from the importing module to the module the import makes Python run:

* ``import a.b.c`` -> ``a.b.c`` (or its longest prefix that is a module of the package);
* ``from P import n`` -> ``P.n`` when ``P.n`` is a module (a submodule), else ``P``.

*Package re-exports.* In the second case ``n`` is an attribute of ``P``, defined or re-exported
by ``P/__init__.py``, and the edge goes to ``P`` itself, never "through" it to the submodule that
defines ``n``: Python runs the whole ``__init__``, with every import in it, before ``n`` exists.
So an importer of a re-exported name depends on everything its package ``__init__`` imports,
and a submodule importing a name its own package re-exports (while that ``__init__`` imports
the submodule) is a cycle -- a real one: the name does not exist yet while the ``__init__``
runs. The packages that Python imports *before* a submodule (``import a.b.c`` first runs ``a``
and ``a.b``) are edges as well, except those that contain the importer: they are already being
imported when it runs (an ``__init__`` importing its submodules would otherwise cycle with each
of them; Python allows that, the parent is in ``sys.modules``). So a module outside
``initwise.graph`` that imports ``initwise.graph._kinds`` also depends on ``initwise.graph``.
Imports under ``if TYPE_CHECKING:`` are not edges (they never run); they still obey the private
name rules. Dynamic imports (``importlib.import_module`` in ``initwise/__init__.py``'s PEP 562
``__getattr__``) are not seen: they are the documented lazy public surface.

**The rules** (each a test below):

* ``cycle``: the graph has no cycle (a strongly connected component with more than one module).
* ``private-name``: ``from M import _x`` only from inside the package that holds ``M`` (its
  subtree): ``initwise.theory.cmaps`` may import ``initwise.theory._common.check_sigmas``, but
  ``initwise.doctor`` may not import ``initwise.policy._rules._has_norm``.
* ``private-module``: a private module (``initwise.pkg._mod``, any component ``_x``) is imported
  only from inside the package that holds it; ``initwise._version`` is private to ``initwise``
  and so importable anywhere in the package.
* ``local-import``: a function-local import of a module of the package only where
  :data:`LAZY_ALLOWED` lists the pair (importer, imported) with its reason.
* ``import-guard``: no ``try: import initwise...`` with a handler that would catch an
  ``ImportError`` (``except ImportError``, ``ModuleNotFoundError``, ``Exception``,
  ``BaseException`` or bare): the package's own modules are always there.
* ``dead``: every public module-level function or class of ``initwise/``, and every public
  method of such a class, is referenced by its name somewhere in ``initwise/``, ``tests/``,
  ``benchmarks/`` or ``examples/`` (a name, an attribute, an imported name, or a string such as
  an ``__all__`` entry or a lazy export table's key), or is in :data:`CALLED_BY_NAME`. A name
  used anywhere counts (``.find`` on a string keeps a method ``find`` alive): the check finds
  what nothing mentions, no more; ``vulture`` gives the same list on this package.

:data:`KNOWN_VIOLATIONS` lists, per module, the violations that exist today in files other
sessions are rewriting; it may only shrink: a violation that is not listed fails, and so does a
listed one that no longer occurs (delete its entry). ``python tests/test_imports.py`` prints
today's violations, each marked known or new.
"""

from __future__ import annotations

import ast
import functools
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "initwise"
REFERENCE_DIRS = ("initwise", "tests", "benchmarks", "examples")
IMPORT_ERRORS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})
CALLED_BY_NAME = frozenset({"extra_repr"})
"""Public methods that a framework calls by name (``nn.Module.__repr__`` calls ``extra_repr``)."""
RULES = ("cycle", "private-name", "private-module", "local-import", "import-guard", "dead")

LAZY_ALLOWED: dict[tuple[str, str], str] = {
    # The CLI: `initwise --help`, `initwise theory` and `initwise gains` start without torch.
    ("initwise.cli", "initwise._commands"): "the CLI's verbs import torch: loaded when one runs",
    ("initwise.cli", "initwise.demo"): "the demo verb (torch, the built-in data set)",
    ("initwise._commands", "initwise.autoinit"): "verb `init` (torch)",
    ("initwise._commands", "initwise.doctor"): "verbs `doctor`, `init --html` (torch)",
    ("initwise._commands", "initwise.modelio"): "verbs `doctor`, `init` (torch)",
    ("initwise._commands", "initwise.policy"): "verb `init`: --policy checked against the "
                                               "registry once MODEL (which may add one) loaded",
    ("initwise._commands", "initwise.report"): "verbs `doctor`, `init`: the renderers",
    ("initwise._commands", "initwise.theory_points"): "`doctor --html`, `init --html` (torch)",
    ("initwise._commands", "initwise.report.profile"): "verbs `doctor`, `init` with --data",
    ("initwise._commands", "initwise.schemes.gains"): "verb `gains` (imports initwise.schemes,"
                                                      " torch)",
    ("initwise._commands", "initwise.theory.summary"): "verb `theory` (numpy/scipy only)",
    ("initwise._loading", "initwise.data.load"): "reading --data FILE imports torch (Dataset); "
                                                 "the CLI's prechecks run before torch",
    # A fix that calls init: the doctor does not import datainit until a fix is applied.
    ("initwise.doctor.fixes", "initwise.datainit"): "a fix that calls initwise.init",
}
"""Function-local imports of the package's own modules that are meant: (importer, imported)."""

KNOWN_VIOLATIONS: dict[str, frozenset[str]] = {}
"""Violations in files that other sessions are rewriting (issue 12); this list only shrinks."""


# --- the walker ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    """One import of a module of the package by one of its modules.

    Attributes:
        src: the importing module (dotted).
        target: the module the import makes Python run (the edge's end).
        name: for ``from P import n`` where ``n`` is not a submodule, ``n``; else ``""``.
        line: line number in ``src``.
        local: inside a function.
        guarded: in the body of a ``try`` with a handler that catches ``ImportError`` (also as
            ``ModuleNotFoundError``, ``Exception``, ``BaseException`` or a bare ``except:``).
        type_only: under ``if TYPE_CHECKING:`` (never runs, not an edge).
    """

    src: str
    target: str
    name: str
    line: int
    local: bool = False
    guarded: bool = False
    type_only: bool = False


@functools.cache
def _parse(path: Path, mtime_ns: int) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def parse(path: Path) -> ast.Module:
    """The syntax tree of ``path``, parsed once per test session (keyed by modification time)."""
    return _parse(path, path.stat().st_mtime_ns)


def find_modules(root: Path, package: str) -> dict[str, Path]:
    """Every module of ``root / package``: dotted name (a package without ``.__init__``) -> file."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:  # a bare `except:`
        return True
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(k, ast.Name) and k.id in IMPORT_ERRORS for k in kinds)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


class _Walker(ast.NodeVisitor):
    """The imports of one module, each with its context (function, try, TYPE_CHECKING)."""

    def __init__(self, src: str, is_package: bool, mods: dict[str, Path], package: str):
        self.src, self.mods, self.package = src, mods, package
        self.here = src if is_package else src.rpartition(".")[0]
        self.flags = {"local": False, "guarded": False, "type_only": False}
        self.found: list[Import] = []

    def _visit_with(self, nodes: Iterable[ast.AST], **flags: bool) -> None:
        saved = dict(self.flags)
        self.flags.update(flags)
        for node in nodes:
            self.visit(node)
        self.flags = saved

    def _add(self, target: str, name: str, node: ast.stmt) -> None:
        while target and target not in self.mods:
            target = target.rpartition(".")[0]
        if target and target != self.src:
            self.found.append(Import(self.src, target, name, node.lineno, **self.flags))

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._visit_with(ast.iter_child_nodes(node), local=True)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Try(self, node: ast.Try) -> None:
        guards = any(_catches_import_error(h) for h in node.handlers)
        self._visit_with(node.body, guarded=guards or self.flags["guarded"])
        self._visit_with([*node.handlers, *node.orelse, *node.finalbody])

    visit_TryStar = visit_Try

    def visit_If(self, node: ast.If) -> None:
        type_only = _is_type_checking(node.test) or self.flags["type_only"]
        self._visit_with([node.test, *node.body], type_only=type_only)
        self._visit_with(node.orelse)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.split(".")[0] == self.package:
                self._add(alias.name, "", node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            parts = self.here.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
        if base.split(".")[0] != self.package:
            return
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            if sub in self.mods:
                self._add(sub, "", node)
            else:
                self._add(base, alias.name, node)


def scan(root: Path, package: str) -> tuple[dict[str, Path], list[Import]]:
    """The modules of ``root / package`` and every import of one of them by another."""
    mods = find_modules(root, package)
    found: list[Import] = []
    for name, path in mods.items():
        walker = _Walker(name, path.name == "__init__.py", mods, package)
        walker.visit(parse(path))
        found += walker.found
    return mods, found


def import_graph(mods: Iterable[str], imports: Iterable[Import]) -> dict[str, set[str]]:
    """Module -> the modules it makes Python run (every import but TYPE_CHECKING ones).

    An import's target, plus each package above the target that does not contain the importer.
    """
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for imp in imports:
        if imp.type_only:
            continue
        parts = imp.target.split(".")
        ancestors = (".".join(parts[:i]) for i in range(1, len(parts)))
        edges[imp.src].update(a for a in ancestors if a in edges and not _inside(imp.src, a))
        edges[imp.src].add(imp.target)
    return edges


def cyclic_components(edges: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with a cycle (Tarjan), smallest module first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(v: str) -> None:  # recursion depth <= number of modules
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while not comp or w != v:
                w = stack.pop()
                comp.add(w)
            if len(comp) > 1 or v in edges[v]:
                found.append(comp)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found, key=min)


def cycle_path(comp: set[str], edges: dict[str, set[str]]) -> list[str]:
    """A shortest closed path ``[a, ..., a]`` through the smallest module of ``comp``."""
    start = min(comp)
    parent = {start: start}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(edges[v] & comp):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [*reversed(path), start]
                if w not in parent:
                    parent[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"{sorted(comp)} is not strongly connected")


# --- the rules ----------------------------------------------------------------------------


def _private(part: str) -> bool:
    return part.startswith("_") and not part.endswith("__")


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def private_owner(module: str) -> str | None:
    """The package that holds the first private component of ``module``, or ``None``."""
    parts = module.split(".")
    for i, part in enumerate(parts):
        if _private(part):
            return ".".join(parts[:i])
    return None


def _package_of(module: str, mods: dict[str, Path]) -> str:
    return module if mods[module].name == "__init__.py" else module.rpartition(".")[0]


def public_definitions(mods: dict[str, Path]) -> dict[str, tuple[str, str]]:
    """``"module.name"`` -> (module, name) for every public module-level function and class,
    and ``"module.Class.name"`` -> (module, name) for every public method of such a class."""
    found = {}
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    for module, path in mods.items():
        for node in parse(path).body:
            if not isinstance(node, kinds) or node.name.startswith("_"):
                continue
            found[f"{module}.{node.name}"] = (module, node.name)
            for item in node.body if isinstance(node, ast.ClassDef) else ():
                if isinstance(item, kinds[:2]) and not item.name.startswith("_"):
                    found[f"{module}.{node.name}.{item.name}"] = (module, item.name)
    return found


def referenced_names(files: Iterable[Path]) -> set[str]:
    """Names used in ``files``: names, attributes, imported names, identifier-like strings."""
    names: set[str] = set()
    for path in files:
        for node in ast.walk(parse(path)):
            if isinstance(node, ast.Name):
                names.add(node.id)
            elif isinstance(node, ast.Attribute):
                names.add(node.attr)
            elif isinstance(node, ast.alias):
                names.add(node.name.rpartition(".")[2])
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                if node.value.isidentifier():
                    names.add(node.value)
    return names


def violations(root: Path, package: str, lazy_allowed: dict[tuple[str, str], str],
               reference_dirs: Iterable[str] = ()) -> dict[tuple[str, str], str]:
    """Every violation of the rules: (module, ``"rule: what"``) -> a line saying where.

    Args:
        root: the folder holding the package folder.
        package: the package's name (its folder under ``root``).
        lazy_allowed: the allowed function-local imports, (importer, imported) -> reason.
        reference_dirs: folders under ``root`` searched for references by the ``dead`` rule;
            empty: the rule is not run.
    """
    mods, imports = scan(root, package)
    out: dict[tuple[str, str], str] = {}
    edges = import_graph(mods, imports)
    for comp in cyclic_components(edges):
        what = "cycle: " + ", ".join(sorted(comp))
        out[min(comp), what] = " -> ".join(cycle_path(comp, edges))
    for imp in imports:
        where = f"{mods[imp.src].relative_to(root)}:{imp.line}"
        owner = private_owner(imp.target)
        if owner is not None and not _inside(imp.src, owner):
            out.setdefault((imp.src, f"private-module: {imp.target}"), where)
        holder = _package_of(imp.target, mods)
        if imp.name and _private(imp.name) and not _inside(imp.src, holder):
            out.setdefault((imp.src, f"private-name: {imp.target}.{imp.name}"), where)
        if imp.local and not imp.type_only and (imp.src, imp.target) not in lazy_allowed:
            out.setdefault((imp.src, f"local-import: {imp.target}"), where)
        if imp.guarded:
            out.setdefault((imp.src, f"import-guard: {imp.target}"), where)
    if reference_dirs:
        files = [p for d in reference_dirs for p in sorted((root / d).rglob("*.py"))]
        used = referenced_names(files)
        for dotted, (module, name) in public_definitions(mods).items():
            if name not in used and name not in CALLED_BY_NAME:
                out[module, f"dead: {dotted}"] = f"{mods[module].relative_to(root)}: {name}"
    return out


def local_imports(root: Path, package: str) -> set[tuple[str, str]]:
    """The (importer, imported) pairs of the function-local imports that run."""
    return {(i.src, i.target) for i in scan(root, package)[1] if i.local and not i.type_only}


# --- the walker on synthetic packages -----------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def _rules(found: dict[tuple[str, str], str], rule: str) -> set[tuple[str, str]]:
    return {key for key in found if key[1].startswith(rule + ":")}


def test_walker_finds_a_cycle_through_a_function_local_import(tmp_path):
    root = _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg.b import g\n",
        "pkg/b.py": "def g():\n    from pkg import c\n",
        "pkg/c.py": "from . import a\n",  # relative: pkg.a
    })
    found = violations(root, "pkg", {("pkg.b", "pkg.c"): "test"})
    assert _rules(found, "cycle") == {("pkg.a", "cycle: pkg.a, pkg.b, pkg.c")}
    assert found["pkg.a", "cycle: pkg.a, pkg.b, pkg.c"] == "pkg.a -> pkg.b -> pkg.c -> pkg.a"
    assert not _rules(found, "local-import")  # allowed, yet still an edge of the graph


def test_walker_treats_reexports_as_edges_to_the_package_init(tmp_path):
    root = _write(tmp_path, {
        "pkg/__init__.py": "from pkg.sub import f\nfrom pkg import sub\n",
        "pkg/sub/__init__.py": "from pkg.sub._impl import f\n",
        "pkg/sub/_impl.py": "from .. import other\ndef f():\n    pass\n",
        "pkg/other.py": "from pkg.sub import f\n",  # a re-export: edge to pkg.sub
    })
    mods, imports = scan(root, "pkg")
    edges = import_graph(mods, imports)
    assert edges == {"pkg": {"pkg.sub"}, "pkg.sub": {"pkg.sub._impl"},
                     "pkg.sub._impl": {"pkg.other"}, "pkg.other": {"pkg.sub"}}
    assert [cycle_path(c, edges) for c in cyclic_components(edges)] == [
        ["pkg.other", "pkg.sub", "pkg.sub._impl", "pkg.other"]]


def test_walker_counts_the_packages_above_a_target_outside_the_importer(tmp_path):
    root = _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/x/__init__.py": "from pkg.y import g\n",
        "pkg/x/leaf.py": "",
        "pkg/y.py": "import pkg.x.leaf\ndef g():\n    pass\n",  # runs pkg/x/__init__.py first
    })
    mods, imports = scan(root, "pkg")
    edges = import_graph(mods, imports)
    assert edges["pkg.y"] == {"pkg.x", "pkg.x.leaf"}
    assert [cycle_path(c, edges) for c in cyclic_components(edges)] == [
        ["pkg.x", "pkg.y", "pkg.x"]]


def test_walker_own_ancestors_and_type_checking_are_not_edges(tmp_path):
    root = _write(tmp_path, {
        "pkg/__init__.py": "from pkg.a import f\n",
        "pkg/a.py": "import pkg.b\ndef f():\n    pass\n",  # runs pkg first: not an edge
        "pkg/b.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                     "    from pkg.a import f\n"),
    })
    mods, imports = scan(root, "pkg")
    assert import_graph(mods, imports) == {"pkg": {"pkg.a"}, "pkg.a": {"pkg.b"}, "pkg.b": set()}
    assert [i.type_only for i in imports if i.src == "pkg.b"] == [True]


def test_walker_flags_private_imports_across_packages_only(tmp_path):
    root = _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/_util.py": "def _h():\n    pass\n",  # private to pkg: fine anywhere in pkg
        "pkg/x/__init__.py": "from pkg._util import _h\n",
        "pkg/x/_kinds.py": "def _k():\n    pass\n",
        "pkg/x/run.py": "from pkg.x._kinds import _k\nfrom pkg.x import _kinds\n",
        "pkg/y/__init__.py": "",
        "pkg/y/use.py": "from pkg.x._kinds import _k\nimport pkg.x._kinds\n",
    })
    found = violations(root, "pkg", {})
    assert set(found) == {("pkg.y.use", "private-module: pkg.x._kinds"),
                          ("pkg.y.use", "private-name: pkg.x._kinds._k")}
    assert found["pkg.y.use", "private-name: pkg.x._kinds._k"] == "pkg/y/use.py:1"


def test_walker_flags_local_imports_import_guards_and_dead_code(tmp_path):
    root = _write(tmp_path, {
        "pkg/__init__.py": "__all__ = ['exported']\ndef exported():\n    pass\n",
        "pkg/a.py": """\
            class K:
                def used(self):
                    pass
                def idle(self):
                    pass
                def extra_repr(self):
                    return ""
            K().used()
            def f():
                from pkg import b
                try:
                    import pkg.c
                except (ModuleNotFoundError, ValueError):
                    pass
                try:
                    from pkg import b as again
                except KeyError:
                    pass
            def unused():
                try:
                    import numpy
                except ImportError:
                    pass
            """,
        "pkg/b.py": "",
        "pkg/c.py": "",
        "pkg/d.py": "from pkg.a import f\nf()\n",
    })
    found = violations(root, "pkg", {}, reference_dirs=["pkg"])
    assert set(found) == {("pkg.a", "local-import: pkg.b"), ("pkg.a", "local-import: pkg.c"),
                          ("pkg.a", "import-guard: pkg.c"), ("pkg.a", "dead: pkg.a.unused"),
                          ("pkg.a", "dead: pkg.a.K.idle")}
    assert local_imports(root, "pkg") == {("pkg.a", "pkg.b"), ("pkg.a", "pkg.c")}


# --- the rules on initwise/ ---------------------------------------------------------------


@pytest.fixture(scope="module")
def found() -> dict[tuple[str, str], str]:
    return violations(REPO, PACKAGE, LAZY_ALLOWED, REFERENCE_DIRS)


def _check(rule: str, found: dict[tuple[str, str], str]) -> None:
    known = {(m, v) for m, vs in KNOWN_VIOLATIONS.items() for v in vs if v.startswith(rule)}
    new = sorted(_rules(found, rule) - known)
    gone = sorted(known - _rules(found, rule))
    lines = [f"  {m}: {v}  ({found[m, v]})" for m, v in new]
    assert not new, f"{rule}: {len(new)} violation(s) of tests/test_imports.py's rule:\n" + (
        "\n".join(lines) + "\nfix them (see this file's docstring); do not add them to "
        "KNOWN_VIOLATIONS")
    assert not gone, (f"{rule}: fixed, so delete from KNOWN_VIOLATIONS in "
                      f"tests/test_imports.py: {gone}")


@pytest.mark.parametrize("rule", RULES)
def test_initwise_obeys_the_rule(rule, found):
    _check(rule, found)


def test_known_violations_name_only_existing_modules_and_rules():
    mods = find_modules(REPO, PACKAGE)
    for module, what in KNOWN_VIOLATIONS.items():
        assert module in mods, f"KNOWN_VIOLATIONS: no module {module}"
        assert all(v.split(":")[0] in RULES for v in what), (module, what)


def test_every_allowed_lazy_import_still_exists():
    stale = sorted(set(LAZY_ALLOWED) - local_imports(REPO, PACKAGE))
    assert not stale, f"LAZY_ALLOWED: no such function-local import any more, delete: {stale}"


if __name__ == "__main__":  # `python tests/test_imports.py`: today's violations, by module
    for (module, what), where in sorted(violations(REPO, PACKAGE, LAZY_ALLOWED,
                                                   REFERENCE_DIRS).items()):
        known = "known" if what in KNOWN_VIOLATIONS.get(module, ()) else "NEW  "
        print(f"{known} {module}: {what}  ({where})")
