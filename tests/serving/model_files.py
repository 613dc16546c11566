"""Model directories and file trees for the serving tests, on any filesystem TF knows."""

import os
import subprocess
import sys
import time
from pathlib import Path

from tfx.dsl.io import fileio

from components.serving import leases


def saved_model(path: Path, content: bytes = b"pb") -> Path:
    (path / "variables").mkdir(parents=True)
    (path / "saved_model.pb").write_bytes(content)
    (path / "variables" / "variables.index").write_bytes(b"index")
    return path


def write_files(base: str, files: dict[str, bytes]) -> None:
    """Writes or replaces files below `base` (ram:// appends to an existing file)."""
    for relative, content in files.items():
        path = os.path.join(base, relative)
        fileio.makedirs(os.path.dirname(path))
        if fileio.exists(path):
            fileio.remove(path)
        with fileio.open(path, "wb") as stream:
            stream.write(content)


def file_tree(base: str) -> dict[str, bytes]:
    """Relative path -> content, for every file below `base`."""
    tree = {}
    for directory, _, names in fileio.walk(base):
        for name in names:
            path = os.path.join(directory, name)
            with fileio.open(path, "rb") as stream:
                tree[os.path.relpath(path, base)] = stream.read()
    return tree


EXPIRED = time.time() - leases.LEASE_SECONDS - 60


def wait_until(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid
