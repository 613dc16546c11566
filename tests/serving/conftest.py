"""Serving directories for the tests: local, in memory, or under a stand-in Cloud Storage
FUSE mount, and a short lease."""

import uuid
from pathlib import Path

import pytest

from components.serving import layout, leases


@pytest.fixture(params=["local", "ram", "gcs-fuse"])
def store(request, tmp_path: Path, monkeypatch) -> str:
    """A base directory on a local disk, TF's in-memory filesystem, or a stand-in `/gcs/`."""
    if request.param == "ram":
        return f"ram://serving-{uuid.uuid4().hex}/qqp"
    if request.param == "gcs-fuse":
        monkeypatch.setattr(layout, "FUSE_MOUNT", f"{tmp_path}/gcs/")
        return f"{tmp_path}/gcs/bucket/qqp"
    return f"{tmp_path}/local/qqp"


@pytest.fixture
def short_lease(monkeypatch) -> float:
    """A 2 s lease renewed every 0.05 s; returns the lease."""
    monkeypatch.setattr(leases, "LEASE_SECONDS", 2.0)
    monkeypatch.setattr(leases, "HEARTBEAT_SECONDS", 0.05)
    return leases.LEASE_SECONDS


@pytest.fixture(params=["ram", "gcs-fuse"])
def object_store(request, tmp_path: Path, monkeypatch) -> str:
    """A base directory on TF's in-memory filesystem, or under a stand-in `/gcs/` mount."""
    if request.param == "ram":
        return f"ram://serving-{uuid.uuid4().hex}/qqp"
    monkeypatch.setattr(layout, "FUSE_MOUNT", f"{tmp_path}/gcs/")
    return f"{tmp_path}/gcs/bucket/qqp"
