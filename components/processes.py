"""Whether the process that left a lock, claim or staging directory behind still runs."""

from __future__ import annotations

import os
import socket


def process_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, but belongs to another user
        return True
    return True


def is_dead_here(host: str, pid: int) -> bool:
    """True only for a process of this host that no longer runs (others are unknowable)."""
    return host == socket.gethostname() and not process_alive(pid)
