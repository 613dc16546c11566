"""Fingerprints of the component code that TFX cannot see.

Transform and the Trainers get their code by import path (`module_path`-style
`preprocessing_fn` / `run_fn`), which TFX does not hash. The fingerprint of a
module and of every project module it imports (transitively) goes into the
component's `custom_config`: edited code re-runs exactly the components that
run it, and editing, say, the Pusher does not retrain.
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


def checkout_fingerprint() -> str:
    """A short hash of every project source file and the lock: what an image built now holds."""
    digest = hashlib.sha256()
    files = sorted(path for package in ("components", "pipeline")
                   for path in REPO_ROOT.joinpath(package).rglob("*.py"))
    for path in files + [REPO_ROOT / "pyproject.toml", REPO_ROOT / "uv.lock"]:
        digest.update(path.relative_to(REPO_ROOT).as_posix().encode() + b"\0"
                      + path.read_bytes())
    return digest.hexdigest()[:16]
