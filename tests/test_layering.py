"""The house rules of the code: imports run one way, no circles, small files, packages by idea.

The layers and the forbidden imports are import-linter contracts in pyproject.toml
(`[tool.importlinter]`); this runs them, and checks what import-linter does not.
"""

import ast
import os
import subprocess
import sys
from pathlib import Path

import grimp

from tests.conftest import REPO_ROOT

PRODUCT_PACKAGES = ("components", "pipeline", "fixtures")
MAX_LINES = 400
# The modules allowed at the top of components/ besides its packages: shared leaves.
SHARED_LEAVES = {"__init__.py", "features.py", "tensors.py", "file_trees.py"}


def test_import_contracts_hold():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=False,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The groups of modules that import each other in a circle (Tarjan's strongly
    connected components with more than one module, or a module importing itself)."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def connect(module: str) -> None:
        index[module] = lowlink[module] = len(index)
        stack.append(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                connect(imported)
                lowlink[module] = min(lowlink[module], lowlink[imported])
            elif imported in stack:
                lowlink[module] = min(lowlink[module], index[imported])
        if lowlink[module] == index[module]:
            group = []
            while not group or group[-1] != module:
                group.append(stack.pop())
            if len(group) > 1 or module in graph.find_modules_directly_imported_by(module):
                groups.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            connect(module)
    return sorted(groups)


def test_no_import_circles():
    graph = grimp.build_graph(*PRODUCT_PACKAGES)
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_circle():
    graph = grimp.ImportGraph()
    for module in ("a", "a.b", "a.c"):
        graph.add_module(module)
    graph.add_import(importer="a.b", imported="a.c")
    assert _cycles(graph) == []
    graph.add_import(importer="a.c", imported="a.b")
    assert _cycles(graph) == [["a.b", "a.c"]]


def _source_files() -> list[Path]:
    return sorted(path for package in (*PRODUCT_PACKAGES, "tests", "benchmarks")
                  for path in (REPO_ROOT / package).rglob("*.py"))


def test_no_source_file_is_over_400_lines():
    long_files = {str(path.relative_to(REPO_ROOT)): lines for path in _source_files()
                  if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long_files == {}


def test_components_top_level_holds_packages_and_a_few_shared_leaves():
    top = REPO_ROOT / "components"
    modules = {path.name for path in top.glob("*.py")}
    assert modules <= SHARED_LEAVES
    packages = [path for path in top.iterdir() if path.is_dir() and path.name != "__pycache__"]
    assert len(packages) >= 10
    for package in packages:
        init = package / "__init__.py"
        assert init.is_file(), package
        # Each package says what it is for.
        assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), package


def test_tests_mirror_the_component_packages():
    packages = {path.name for path in (REPO_ROOT / "components").iterdir()
                if (path / "__init__.py").is_file()}
    test_folders = {path.name for path in (REPO_ROOT / "tests").iterdir() if path.is_dir()}
    assert packages <= test_folders
