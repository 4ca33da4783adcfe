"""Imports point one way: dashboard -> profiling -> engines, and inside profiling along ``profiling.LAYERS``.

The import graph is read from the source with ``ast``: every ``import`` and ``from`` statement, including
those inside functions, relative ones, and ``importlib.import_module("...")`` with a literal name. Four
checks on it: no import from a lower profiling subpackage to a higher one (or to a peer), no cycle between
modules, the top-level packages' rules (the dashboard sees profiling only through ``profiling.api``), and,
in a fresh interpreter, what importing every module of a top-level package actually loads. The checker is
shown catching a planted back import and a planted cycle in a small fake package.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

import profiling
from tests.conftest import REPO_ROOT

#: The packages whose modules make up the graph (examples/ are plug-ins, checked by their rule only).
GRAPH_PACKAGES = ("engines", "profiling", "dashboard")


@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` (both module names) at ``line`` of ``path``."""

    source: str
    target: str
    path: Path
    line: int

    def where(self, root: Path) -> str:
        return f"{self.path.relative_to(root)}:{self.line} {self.source} -> {self.target}"


def module_files(root: Path, packages: Iterable[str]) -> dict[str, tuple[Path, bool]]:
    """Module name -> (file, is a package ``__init__``) for every ``.py`` under ``root/<package>``."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _known(name: str, modules: Mapping[str, object]) -> str | None:
    """The longest known module ``name`` is, or lies in (``a.b.C`` -> ``a.b``); None outside the graph."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _named(node: ast.AST, package: str) -> list[tuple[str, tuple[str, ...]]]:
    """What one node imports: (module, names taken from it), relative names made absolute."""
    if isinstance(node, ast.Import):
        return [(alias.name, ()) for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
        module = ".".join([*base, *([node.module] if node.module else [])])
        return [(module, tuple(alias.name for alias in node.names))]
    # importlib.import_module("a.b"): a dynamic import is an import all the same
    if (isinstance(node, ast.Call) and isinstance(node.func, (ast.Attribute, ast.Name))
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) == "import_module"
            and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
        return [(node.args[0].value, ())]
    return []


def import_graph(root: Path, packages: Iterable[str]) -> list[Edge]:
    """Every import between modules of ``packages`` under ``root``.

    ``from a import b`` points at ``a.b`` when that is a module, else at ``a`` (``b`` is a name in it);
    the parent packages an import runs on the way are not edges (every module would then import its root).
    """
    modules = module_files(root, packages)
    edges = []
    for source, (path, is_package) in modules.items():
        package = source if is_package else source.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            for module, names in _named(node, package):
                targets = [f"{module}.{n}" if f"{module}.{n}" in modules else module for n in names] or [module]
                for target in dict.fromkeys(_known(t, modules) for t in targets):
                    if target and target != source:
                        edges.append(Edge(source, target, path, node.lineno))
    return edges


def layer_of(module: str, top: str, layers: Sequence[Sequence[str]]) -> tuple[int, str] | None:
    """(rank, subpackage) of a module of ``top``: the root package is the API's facade, ``__main__`` the CLI's."""
    parts = module.split(".")
    if parts[0] != top:
        return None
    sub = parts[1] if len(parts) > 1 else ""
    name = {"": "api", "__main__": "cli"}.get(sub, sub)
    rank = next((i for i, layer in enumerate(layers) if name in layer), None)
    assert rank is not None, f"{module}: subpackage '{name}' is not declared in {top}.LAYERS"
    return rank, name


def wrong_way(edges: Iterable[Edge], top: str, layers: Sequence[Sequence[str]]) -> list[Edge]:
    """Imports inside ``top`` that point to a higher layer or to another subpackage of the same layer."""
    wrong = []
    for edge in edges:
        source, target = layer_of(edge.source, top, layers), layer_of(edge.target, top, layers)
        if source and target and source[1] != target[1] and target[0] >= source[0]:
            wrong.append(edge)
    return wrong


def cycles(edges: Iterable[Edge]) -> list[list[str]]:
    """One cycle path (``[a, b, ..., a]``) per strongly connected component of more than one module."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, set()).add(edge.target)
        graph.setdefault(edge.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for start in sorted(graph):  # Tarjan, iteratively (the graph is deep enough for recursion limits)
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(component)
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return [_cycle_path(graph, component) for component in components]


def _cycle_path(graph: Mapping[str, set[str]], component: set[str]) -> list[str]:
    """The shortest way from the component's first module back to itself (breadth first)."""
    start = min(component)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & component):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if child not in came_from:
                    came_from[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # a component of two or more always has one


def _hits(module: str, prefixes: Iterable[str]) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in prefixes)


@dataclass(frozen=True)
class Rule:
    """Modules under ``folder`` import nothing under ``forbidden`` (except under ``allowed``)."""

    folder: str
    forbidden: tuple[str, ...]
    why: str
    allowed: tuple[str, ...] = ()

    def breaks(self, edge: Edge) -> bool:
        return (_hits(edge.source, (self.folder,)) and _hits(edge.target, self.forbidden)
                and not _hits(edge.target, self.allowed))


RULES = (
    Rule("engines", ("profiling", "dashboard"), "engines are what runs; they see the lab only through hooks"),
    Rule("profiling", ("dashboard",), "the measuring layer must work without the UI"),
    Rule("dashboard", ("profiling",), "the dashboard builds and runs everything through profiling.api, so a new "
         "front end needs one import", allowed=("profiling.api",)),
    Rule("examples", ("profiling", "dashboard"), "a plug-in engine implements engines.base only"),
)


@pytest.fixture(scope="module")
def edges() -> list[Edge]:
    return import_graph(REPO_ROOT, (*GRAPH_PACKAGES, "examples"))


def test_every_subpackage_of_profiling_is_declared_once() -> None:
    declared = [name for layer in profiling.LAYERS for name in layer]
    on_disk = {p.name for p in (REPO_ROOT / "profiling").iterdir() if (p / "__init__.py").is_file()}
    on_disk |= {p.stem for p in (REPO_ROOT / "profiling").glob("*.py") if p.stem not in ("__init__", "__main__")}
    assert len(declared) == len(set(declared))
    assert set(declared) == on_disk


def test_no_import_points_down_the_layers_of_profiling(edges: list[Edge]) -> None:
    wrong = wrong_way(edges, "profiling", profiling.LAYERS)
    assert not wrong, "a lower (or peer) subpackage imports a higher one (profiling.LAYERS):\n" + "\n".join(
        e.where(REPO_ROOT) for e in wrong)


def test_no_cycle_between_modules(edges: list[Edge]) -> None:
    found = cycles(e for e in edges if _hits(e.source, GRAPH_PACKAGES))
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(path) for path in found)


@pytest.mark.parametrize("rule", RULES, ids=[r.folder for r in RULES])
def test_no_import_breaks_a_package_rule(rule: Rule, edges: list[Edge]) -> None:
    assert any(_hits(e.source, (rule.folder,)) for e in edges), rule.folder  # the rule sees the package
    wrong = [e.where(REPO_ROOT) for e in edges if rule.breaks(e)]
    assert not wrong, f"{rule.why}:\n" + "\n".join(wrong)


_LOAD_ALL = """
import importlib, json, pkgutil, sys
package = importlib.import_module(sys.argv[1])
for info in pkgutil.walk_packages(package.__path__, prefix=sys.argv[1] + "."):
    if not info.name.endswith("__main__"):  # running the CLI is not importing it
        importlib.import_module(info.name)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("engines", "profiling", "dashboard"))))
"""

#: What importing every module of a package must not load (the dashboard loads profiling, through the API).
_NOT_LOADED = {"engines": ("profiling", "dashboard"), "profiling": ("dashboard",), "dashboard": ("profiling.cli",)}


@pytest.mark.parametrize("package", list(_NOT_LOADED))
def test_importing_a_whole_package_loads_nothing_above_it(package: str) -> None:
    out = subprocess.run([sys.executable, "-c", _LOAD_ALL, package], cwd=REPO_ROOT, capture_output=True,
                         text=True, check=True, timeout=300)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert any(m.startswith(f"{package}.") for m in loaded)
    assert not [m for m in loaded if _hits(m, _NOT_LOADED[package])]


# --- the checks catch what they are for --------------------------------------------------------------------


def _fake_package(root: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_a_planted_back_import_is_caught(tmp_path: Path) -> None:
    _fake_package(tmp_path, {
        "fake/__init__.py": "",
        "fake/low/__init__.py": "import importlib\nimportlib.import_module('fake.high.top')\n",
        "fake/low/base.py": "from fake import high\n\ndef helper():\n    from ..high import top  # inside a function\n",
        "fake/mid/__init__.py": "",
        "fake/mid/work.py": "from fake import low\nfrom fake.low import base\n",
        "fake/high/__init__.py": "",
        "fake/high/top.py": "import importlib\nimportlib.import_module('fake.mid.work')\n",
        "fake/beside/__init__.py": "from fake.mid.work import *\n",
    })
    layers = (("low",), ("mid", "beside"), ("high",))
    wrong = {(e.source, e.target) for e in wrong_way(import_graph(tmp_path, ["fake"]), "fake", layers)}
    assert wrong == {("fake.low", "fake.high.top"), ("fake.low.base", "fake.high"), ("fake.low.base", "fake.high.top"),
                     ("fake.beside", "fake.mid.work")}  # the downward imports of mid and high pass


def test_a_planted_cycle_is_caught_with_its_path(tmp_path: Path) -> None:
    _fake_package(tmp_path, {
        "fake/__init__.py": "",
        "fake/a.py": "from fake import b\n",
        "fake/b.py": "def later():\n    from fake.c import thing\n",
        "fake/c.py": "from . import a\nthing = 1\n",
        "fake/d.py": "import fake.a\n",  # into the cycle, not on it
    })
    edges = import_graph(tmp_path, ["fake"])
    assert cycles(edges) == [["fake.a", "fake.b", "fake.c", "fake.a"]]
    assert cycles(e for e in edges if e.source != "fake.c") == []


def test_the_dashboard_rule_catches_a_reach_past_the_api(tmp_path: Path) -> None:
    _fake_package(tmp_path, {
        "dashboard/__init__.py": "",
        "dashboard/tab.py": "from profiling import api\nfrom profiling.api import figures\n"
                            "def f():\n    from profiling.store.results import ResultsStore\n",
    })
    _fake_package(tmp_path, {name: "" for name in ("profiling/__init__.py", "profiling/api/__init__.py",
                                                  "profiling/api/figures.py", "profiling/store/__init__.py",
                                                  "profiling/store/results.py")})
    rule = next(r for r in RULES if r.folder == "dashboard")
    wrong = [(e.source, e.target) for e in import_graph(tmp_path, ["dashboard", "profiling"]) if rule.breaks(e)]
    assert wrong == [("dashboard.tab", "profiling.store.results")]
