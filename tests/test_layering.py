"""Imports point one way: dashboard -> profiling -> engines (and plug-ins -> engines only).

Two checks: every import statement in the source (including those inside functions), and what
importing every module of a layer actually loads, in a fresh interpreter.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


@dataclass(frozen=True)
class Rule:
    """Modules under ``folder`` must not import anything under the ``forbidden`` packages."""

    folder: str
    forbidden: tuple[str, ...]
    why: str


RULES = (
    Rule("engines", ("profiling", "dashboard"), "engines are what runs; they see the lab only through hooks"),
    Rule("profiling", ("dashboard",), "the measuring layer must work without the UI"),
    Rule("dashboard", ("profiling.cli",), "the dashboard calls the API, not the command line's helpers"),
    Rule("examples", ("profiling", "dashboard"), "a plug-in engine implements engines.base only"),
    Rule("profiling/analysis", ("profiling.run",),
         "analysis reads runs; running them is profiling.run's job, which imports analysis (no cycle)"),
)


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            # `from profiling import cli` names the subpackage as an attribute
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def _hits(module: str, forbidden: tuple[str, ...]) -> bool:
    return any(module == f or module.startswith(f"{f}.") for f in forbidden)


@pytest.mark.parametrize("rule", RULES, ids=[r.folder for r in RULES])
def test_no_import_statement_points_the_wrong_way(rule: Rule) -> None:
    files = sorted((REPO_ROOT / rule.folder).rglob("*.py"))
    assert files, rule.folder
    wrong = [
        f"{path.relative_to(REPO_ROOT)}:{line} imports {module}"
        for path in files for line, module in _imports(path) if _hits(module, rule.forbidden)
    ]
    assert not wrong, f"{rule.why}:\n" + "\n".join(wrong)


_LOAD_ALL = """
import importlib, json, pkgutil, sys
package = importlib.import_module(sys.argv[1])
for info in pkgutil.walk_packages(package.__path__, prefix=sys.argv[1] + "."):
    if not info.name.endswith("__main__"):  # running the CLI is not importing it
        importlib.import_module(info.name)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("engines", "profiling", "dashboard"))))
"""


@pytest.mark.parametrize("rule", RULES[:3], ids=[r.folder for r in RULES[:3]])
def test_importing_a_whole_layer_loads_nothing_above_it(rule: Rule) -> None:
    out = subprocess.run([sys.executable, "-c", _LOAD_ALL, rule.folder], cwd=REPO_ROOT, capture_output=True,
                         text=True, check=True, timeout=300)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert any(m.startswith(f"{rule.folder}.") for m in loaded)
    assert not [m for m in loaded if _hits(m, rule.forbidden)], rule.why


def test_the_check_catches_a_wrong_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from profiling.cli.commands import common\n    import dashboard.app\n",
                   encoding="utf-8")
    modules = [module for _, module in _imports(bad)]
    assert _hits(modules[0], ("profiling.cli",)) and _hits(modules[-1], ("dashboard",))
