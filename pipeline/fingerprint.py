"""Fingerprints of the component code and files that TFX cannot see.

TFX's cache key holds a component's execution properties and inputs, not the
code it runs: neither `preprocessing_fn` / `run_fn` given by import path nor a
custom executor or a function component. The fingerprint of a module and of
every project module it imports (transitively) goes into the execution
properties of each component running it (`pipeline.pipeline`): edited code
re-runs exactly the components that run it, and editing, say, the Pusher does
not retrain. Files given by path (the curated schema) get a content fingerprint.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = ("components",)


def module_source(module: str) -> Path | None:
    """The source file of a project module or package (its __init__.py), if there is one."""
    base = REPO_ROOT.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _with_packages(module: str) -> set[str]:
    """`module` and the packages above it, whose __init__.py Python runs first."""
    parts = module.split(".")
    return {".".join(parts[:end]) for end in range(1, len(parts) + 1)}


def _project_imports(path: Path) -> set[str]:
    """Project modules imported by one source file (`import x.y`, `from x import y`)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {module for name in names if name.split(".")[0] in PROJECT_PACKAGES
            for module in _with_packages(name) if module_source(module) is not None}


def module_closure(module: str) -> list[str]:
    """`module` and every project module it imports, directly or not, sorted."""
    if module_source(module) is None:
        raise ValueError(f"{module}: no such project module under {REPO_ROOT}")
    seen: set[str] = set()
    pending = sorted(_with_packages(module))
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending.extend(_project_imports(module_source(name)) - seen)
    return sorted(seen)


def code_fingerprint(module: str) -> str:
    """A short hash of the source of `module` and of the project modules it imports."""
    digest = hashlib.sha256()
    for name in module_closure(module):
        digest.update(name.encode() + b"\0" + module_source(name).read_bytes())
    return digest.hexdigest()[:16]


def file_fingerprint(path: Path) -> str:
    """A short hash of one file's content."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def checkout_fingerprint() -> str:
    """A short hash of every project source file and the lock: what an image built now holds."""
    digest = hashlib.sha256()
    files = sorted(path for package in ("components", "pipeline")
                   for path in REPO_ROOT.joinpath(package).rglob("*.py"))
    for path in files + [REPO_ROOT / "pyproject.toml", REPO_ROOT / "uv.lock"]:
        digest.update(path.relative_to(REPO_ROOT).as_posix().encode() + b"\0"
                      + path.read_bytes())
    return digest.hexdigest()[:16]
