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


def _module_path(module: str) -> Path:
    return REPO_ROOT.joinpath(*module.split(".")).with_suffix(".py")


def _project_imports(path: Path) -> set[str]:
    """Project modules imported by one source file (`import x.y`, `from x import y`)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name.split(".")[0] in PROJECT_PACKAGES
            and _module_path(name).is_file()}


def module_closure(module: str) -> list[str]:
    """`module` and every project module it imports, directly or not, sorted."""
    seen: set[str] = set()
    pending = [module]
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending.extend(_project_imports(_module_path(name)) - seen)
    return sorted(seen)


def code_fingerprint(module: str) -> str:
    """A short hash of the source of `module` and of the project modules it imports."""
    digest = hashlib.sha256()
    for name in module_closure(module):
        digest.update(name.encode() + b"\0" + _module_path(name).read_bytes())
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
