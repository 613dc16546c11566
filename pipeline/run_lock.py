"""One run at a time per metadata store: a kernel lock on `<metadata>.lock`.

`qqp-tfx run` holds `flock(LOCK_EX | LOCK_NB)` on `<metadata>.lock` for the
whole run. The kernel releases that lock when the holder's process ends, however
it ends (even SIGKILL), so a killed run leaves no lock behind, no process id is
ever trusted, and two runs racing for the lock cannot both get it. A second run
on the same store stops at once (exit 2), naming the lock file and its holder:
the holder writes its host, pid and start time into the file once it has the
lock, and empties the file again before releasing it.

The file itself is never deleted: deleting it would let a waiter lock the old,
unlinked file while a third run creates and locks a new one. An empty lock file
next to the store is therefore normal.

On NFS, Linux maps `flock` to `fcntl` byte-range locks held by the server, so
runs on different hosts exclude each other too, and a lock left by a host that
died is reclaimed: an NFSv4 server drops it once that client stops renewing its
lease (NFSv3's lock manager, when that host restarts). Byte-range locks are per
process, though: on NFS a second `run_lock` of the same store in the same
process is not refused, and closing it drops the first one's lock.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import socket
import time
from typing import Iterator

from pipeline.config import ConfigError

# How long a refused run waits for a holder that has just taken the lock to write its name.
_DESCRIPTION_WAIT_SECONDS = 1.0


class RunLockedError(ConfigError):
    """Another run holds the metadata store."""


def _holder(descriptor: int) -> str:
    """Who holds the lock, as written in the lock file by its holder."""
    deadline = time.monotonic() + _DESCRIPTION_WAIT_SECONDS
    while True:
        try:
            record = json.loads(os.pread(descriptor, 4096, 0))
            return (f"held by pid {record['pid']} on {record['host']} "
                    f"since {record['started']}")
        except (ValueError, KeyError, TypeError):
            if time.monotonic() > deadline:
                return "held by a run that has not written its name yet"
            time.sleep(0.05)


@contextlib.contextmanager
def run_lock(metadata_path: str) -> Iterator[None]:
    """Holds the lock of `metadata_path` for the duration of a run; RunLockedError if taken."""
    path = f"{metadata_path}.lock"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise RunLockedError(
                f"{metadata_path} is in use by another qqp-tfx run (lock {path}, "
                f"{_holder(descriptor)}); wait for it to finish, or use another --metadata "
                f"and --pipeline-root") from error
        record = {"host": socket.gethostname(), "pid": os.getpid(),
                  "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, json.dumps(record).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(descriptor, 0)  # still locked here: nobody reads a stale holder
    finally:
        os.close(descriptor)  # releases the lock
