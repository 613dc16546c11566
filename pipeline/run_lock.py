"""One run at a time per metadata store: a lock file next to it.

`qqp-tfx run` creates `<metadata>.lock` exclusively, holding the owner's host,
pid and start time, and removes it when the run ends. A second run on the same
store stops at once (exit 2) naming the holder. A lock left by a process of this
host that no longer runs (a killed run) is taken over.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import socket
from typing import Iterator

from components.processes import is_dead_here
from pipeline.config import ConfigError


class RunLockedError(ConfigError):
    """Another run holds the metadata store."""


def _read(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as stream:
            return json.load(stream)
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def run_lock(metadata_path: str) -> Iterator[None]:
    """Holds `<metadata_path>.lock` for the duration of a run."""
    path = f"{metadata_path}.lock"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    record = {"host": socket.gethostname(), "pid": os.getpid(),
              "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
    while True:
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            break
        except OSError as error:
            if error.errno != errno.EEXIST:
                raise
        holder = _read(path)
        if is_dead_here(str(holder.get("host")), int(holder.get("pid", 0))):
            os.remove(path)  # left by a run that was killed: take it over
            continue
        raise RunLockedError(
            f"{metadata_path} is in use by another qqp-tfx run (pid {holder.get('pid', '?')} "
            f"on {holder.get('host', '?')}, started {holder.get('started', '?')}); wait for it "
            f"to finish, or use another --metadata and --pipeline-root")
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        json.dump(record, stream)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
