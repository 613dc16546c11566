"""Leases: a writer proves it is still at work by renewing a heartbeat.

A heartbeat is a wall-clock time (`time.time()`) that its writer renews every
`HEARTBEAT_SECONDS` while it works. Anyone, on any host, may treat the work as
abandoned once its heartbeat is older than `LEASE_SECONDS`. No process id or
host name is involved, so this works across hosts, containers and PID
namespaces, and on object stores.

The lease (10 minutes) is 20 heartbeats long, so a few failed renewals (a slow
or briefly unreachable store) do not lose it, and it is far above the clock
skew between hosts kept in sync by NTP (well under a second). A writer paused
for longer than the lease (a suspended VM, a stopped container) loses it: it
notices at its next renewal or `check()` and must stop without publishing.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from absl import logging

LEASE_SECONDS = 600.0
HEARTBEAT_SECONDS = 30.0


class LeaseLostError(RuntimeError):
    """The lease was not renewed in time, or someone else holds it now."""


def expired(heartbeat: float) -> bool:
    """Whether a heartbeat (`time.time()` when written) is older than the lease."""
    return time.time() - heartbeat > LEASE_SECONDS


class Heartbeat:
    """Calls `renew` every HEARTBEAT_SECONDS on a background thread while in a `with` block.

    `renew` rewrites the heartbeat and returns False when the lease is no longer
    this writer's (renewals stop then). An exception from it is logged and the
    next beat retries.
    """

    def __init__(self, renew: Callable[[], bool], name: str) -> None:
        self._renew = renew
        self._name = name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat {name}", daemon=True)
        self._lost = False
        self._renewed = time.monotonic()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                if not self._renew():
                    self._lost = True
                    return
                self._renewed = time.monotonic()
            except Exception as error:  # pylint: disable=broad-except  # retried next beat
                logging.warning("Could not renew the lease of %s: %s", self._name, error)

    def check(self) -> None:
        """Raises LeaseLostError if the lease is someone else's or was not renewed in time."""
        if self._lost:
            raise LeaseLostError(f"{self._name} is no longer held by this process")
        if time.monotonic() - self._renewed > LEASE_SECONDS:
            raise LeaseLostError(f"{self._name} was not renewed for {LEASE_SECONDS:.0f} s")
