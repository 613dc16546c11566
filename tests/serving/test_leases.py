"""Leases: renewed on a background thread while held; lost when taken or not renewed in time."""

import time

import pytest

from components.serving import leases


@pytest.fixture(autouse=True)
def short_lease(monkeypatch) -> None:
    monkeypatch.setattr(leases, "LEASE_SECONDS", 0.5)
    monkeypatch.setattr(leases, "HEARTBEAT_SECONDS", 0.02)


def _wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_heartbeat_renews_until_the_block_ends():
    renewals = []
    with leases.Heartbeat(lambda: renewals.append(time.monotonic()) or True, "x") as lease:
        _wait_until(lambda: len(renewals) >= 3)
        time.sleep(2 * leases.LEASE_SECONDS)
        lease.check()  # renewed all along
    count = len(renewals)
    time.sleep(5 * leases.HEARTBEAT_SECONDS)
    assert len(renewals) == count  # stopped


def test_a_lease_taken_by_someone_else_is_lost():
    with leases.Heartbeat(lambda: False, "claim 7") as lease:
        with pytest.raises(leases.LeaseLostError, match="claim 7 is no longer held"):
            _wait_until(lambda: lease.check() and False)


def test_failed_renewals_are_retried_then_lose_the_lease():
    attempts = []

    def unreachable() -> bool:
        attempts.append(1)
        raise OSError("store unreachable")

    with leases.Heartbeat(unreachable, "claim 8") as lease:
        _wait_until(lambda: len(attempts) >= 3)
        lease.check()  # not lost yet: the lease still runs
        with pytest.raises(leases.LeaseLostError, match="claim 8 was not renewed"):
            _wait_until(lambda: lease.check() and False)


def test_a_heartbeat_expires_after_the_lease():
    assert not leases.expired(time.time() - leases.LEASE_SECONDS + 0.2)
    assert leases.expired(time.time() - leases.LEASE_SECONDS - 0.2)
