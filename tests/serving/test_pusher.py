"""Versioned pushes: atomic on local disks, safe on object stores, only while the gate holds."""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from tfx.dsl.io import fileio

from components.serving import history, leases, pusher
from components.serving.claims import (CLAIM_PREFIX, claim_path, next_version, read_claim,
                                       remove_stale_entries)
from components.serving.files import model_digest
from components.serving.layout import STAGING_PREFIX, versions
from components.serving.pusher import PushResult, push_model
from tests.serving.model_files import (EXPIRED, dead_pid, file_tree, saved_model, wait_until)


def test_versions_increase_and_are_never_overwritten(tmp_path: Path):
    base = tmp_path / "serving" / "qqp"
    assert next_version(str(base)) == 1
    first = push_model(str(saved_model(tmp_path / "model")), str(base))
    assert first == PushResult(str(base / "1"), new=True)
    (base / "1" / "saved_model.pb").write_bytes(b"served")
    other = saved_model(tmp_path / "other", content=b"another model")
    assert push_model(str(other), str(base)) == PushResult(str(base / "2"), new=True)
    assert (base / "1" / "saved_model.pb").read_bytes() == b"served"
    (base / "10").mkdir()
    assert next_version(str(base)) == 11


def test_the_same_model_is_not_pushed_twice(tmp_path: Path):
    base = tmp_path / "serving" / "qqp"
    push_model(str(saved_model(tmp_path / "model")), str(base))
    again = push_model(str(saved_model(tmp_path / "copy")), str(base))  # identical files
    assert again == PushResult(str(base / "1"), new=False)
    assert versions(str(base)) == [1]


def test_a_rollback_is_pushed_as_a_new_version(tmp_path: Path):
    base = tmp_path / "serving" / "qqp"
    model_a = str(saved_model(tmp_path / "a", content=b"model a"))
    model_b = str(saved_model(tmp_path / "b", content=b"model b"))
    assert push_model(model_a, str(base)).version_dir == str(base / "1")
    assert push_model(model_b, str(base)).version_dir == str(base / "2")
    assert push_model(model_a, str(base)) == PushResult(str(base / "3"), new=True)
    assert (base / "3" / "saved_model.pb").read_bytes() == b"model a"
    assert push_model(model_a, str(base)) == PushResult(str(base / "3"), new=False)
    assert versions(str(base)) == [1, 2, 3]


def test_nothing_is_pushed_when_the_served_version_changed_after_the_gate(tmp_path: Path):
    base = tmp_path / "serving" / "qqp"
    model_a = str(saved_model(tmp_path / "a", content=b"model a"))
    model_b = str(saved_model(tmp_path / "b", content=b"model b"))
    assert push_model(model_a, str(base), gated_against=0).version_dir == str(base / "1")
    # B was gated when nothing was served; version 1 appeared since.
    with pytest.raises(pusher.ServedModelChangedError, match="newest version is now 1"):
        push_model(model_b, str(base), gated_against=0)
    assert versions(str(base)) == [1] and not list(base.glob(f"{CLAIM_PREFIX}2.json"))
    assert push_model(model_b, str(base), gated_against=1).version_dir == str(base / "2")


def test_nothing_is_pushed_while_another_push_is_still_copying(tmp_path: Path):
    base = tmp_path / "serving" / "qqp"
    push_model(str(saved_model(tmp_path / "a", content=b"model a")), str(base))
    # Another run, alive, has claimed version 2 and is still copying it.
    (base / f"{CLAIM_PREFIX}2.json").write_text(json.dumps(
        {"owner": f"{socket.gethostname()}-{os.getpid()}", "version": 2}))
    model_b = str(saved_model(tmp_path / "b", content=b"model b"))
    with pytest.raises(pusher.ServedModelChangedError,
                       match="version 2 is being pushed by another run"):
        push_model(model_b, str(base), gated_against=1)
    assert versions(str(base)) == [1] and not (base / f"{CLAIM_PREFIX}3.json").exists()
    (base / f"{CLAIM_PREFIX}2.json").unlink()  # that push failed and released its claim
    assert push_model(model_b, str(base), gated_against=1).version_dir == str(base / "2")


def test_the_newest_version_is_compared_by_its_files_not_by_claims(tmp_path: Path):
    base = tmp_path / "serving" / "qqp"
    model = saved_model(tmp_path / "model")
    shutil.copytree(model, base / "4")  # written by another tool, without a claim
    assert push_model(str(model), str(base)) == PushResult(str(base / "4"), new=False)
    assert sorted(path.name for path in base.iterdir()) == ["4"]


def test_an_unreadable_claim_still_takes_its_number(tmp_path: Path):
    base = tmp_path / "serving" / "qqp"
    base.mkdir(parents=True)
    (base / f"{CLAIM_PREFIX}3.json").write_text('{"owner": "half writ')
    assert next_version(str(base)) == 4


def test_a_push_that_fails_mid_copy_leaves_nothing_behind(tmp_path: Path, monkeypatch):
    base = tmp_path / "serving" / "qqp"
    model = saved_model(tmp_path / "model")
    copied = []

    def copy_then_fail(source, destination, overwrite=False):
        if copied:  # the staging directory exists and holds one file by now
            assert any(path.name.startswith(STAGING_PREFIX) for path in base.iterdir())
            raise OSError("disk full")
        copied.append(destination)
        real_copy(source, destination, overwrite)

    real_copy = fileio.copy
    monkeypatch.setattr(fileio, "copy", copy_then_fail)
    with pytest.raises(OSError, match="disk full"):
        push_model(str(model), str(base))
    assert copied and list(base.iterdir()) == []


def test_leftovers_are_removed_once_their_lease_expired_whatever_their_pid(tmp_path: Path):
    base = tmp_path / "serving" / "qqp"
    base.mkdir(parents=True)
    here = socket.gethostname()
    # Version 1: expired, although its owner pid (this process) runs.
    (base / f"{STAGING_PREFIX}1-0123").mkdir()
    (base / f"{STAGING_PREFIX}1-0123" / "saved_model.pb").write_bytes(b"half")
    (base / f"{CLAIM_PREFIX}1.json").write_text(json.dumps(
        {"owner": f"{here}-{os.getpid()}", "version": 1, "heartbeat": EXPIRED}))
    (base / f"{CLAIM_PREFIX}1.json.89ab").write_text("a renewal that was never renamed")
    # Version 2: a live push whose pid means nothing here (another host or PID namespace).
    (base / f"{STAGING_PREFIX}2-4567").mkdir()
    (base / f"{CLAIM_PREFIX}2.json").write_text(json.dumps(
        {"owner": f"{here}-{dead_pid()}", "version": 2, "heartbeat": time.time()}))
    # Version 3: written by older code, without a heartbeat: its file's time counts.
    (base / f"{CLAIM_PREFIX}3.json").write_text(json.dumps({"owner": "elsewhere-1"}))
    os.utime(base / f"{CLAIM_PREFIX}3.json", (EXPIRED, EXPIRED))
    (base / f"{STAGING_PREFIX}elsewhere-1-cdef").mkdir()  # named by older code: no claim
    assert push_model(str(saved_model(tmp_path / "model")), str(base)).version_dir == str(
        base / "3")
    assert sorted(path.name for path in base.iterdir()) == sorted(
        ["3", f"{CLAIM_PREFIX}2.json", f"{CLAIM_PREFIX}3.json", f"{STAGING_PREFIX}2-4567"])


def test_a_push_longer_than_the_lease_keeps_it_by_renewing(store: str, short_lease: float,
                                                             tmp_path: Path, monkeypatch):
    removed = []

    def slow_copy(source, destination, overwrite=False):
        if os.path.basename(destination) == "saved_model.pb":  # the last file
            time.sleep(short_lease + 0.5)  # its claim was written more than a lease ago
            removed.extend(remove_stale_entries(store))  # another push's cleanup
        real_copy(source, destination, overwrite)

    real_copy = fileio.copy
    monkeypatch.setattr(fileio, "copy", slow_copy)
    result = push_model(str(saved_model(tmp_path / "model")), store)
    assert removed == []
    assert result == PushResult(os.path.join(store, "1"), new=True)
    assert sorted(file_tree(store)) == sorted([f"{CLAIM_PREFIX}1.json", "1/saved_model.pb",
                                           "1/variables/variables.index"])


def test_a_push_that_lost_its_claim_publishes_nothing(store: str, short_lease: float,
                                                      tmp_path: Path, monkeypatch):
    def copy_then_lose_the_claim(source, destination, overwrite=False):
        real_copy(source, destination, overwrite)
        claim = os.path.join(store, f"{CLAIM_PREFIX}1.json")
        if fileio.exists(claim):
            # Another push found this claim expired (this one was paused) and removed it.
            fileio.remove(claim)
            wait_until(lambda: not any(thread.name == f"heartbeat {claim}"
                                        for thread in threading.enumerate()))  # noticed

    real_copy = fileio.copy
    monkeypatch.setattr(fileio, "copy", copy_then_lose_the_claim)
    with pytest.raises(leases.LeaseLostError, match=f"{CLAIM_PREFIX}1.json is no longer held"):
        push_model(str(saved_model(tmp_path / "model")), store)
    assert file_tree(store) == {}


PUSH = """
import os, sys, time
from components.serving import claims, pusher
model, base, start = sys.argv[1:]
listing = claims.next_version

def slow_next_version(base_directory):  # a slow listing: every push reads the same number
    number = listing(base_directory)
    time.sleep(0.5)
    return number

claims.next_version = slow_next_version
print("ready", flush=True)
while not os.path.exists(start):
    time.sleep(0.01)
print(pusher.push_model(model, base).version_dir, flush=True)
"""


@pytest.mark.slow  # process start-ups (make test-slow)
def test_concurrent_pushes_from_several_processes_take_distinct_versions(tmp_path: Path):
    base = tmp_path / "serving" / "qqp"
    models = [saved_model(tmp_path / f"model{i}", content=f"m{i}".encode()) for i in range(3)]
    start = tmp_path / "start"
    pushes = [subprocess.Popen([sys.executable, "-c", PUSH, str(model), str(base), str(start)],
                               stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
              for model in models]
    try:
        for push in pushes:
            assert push.stdout.readline().strip() == "ready"
        start.touch()
        outputs = [push.communicate(timeout=300)[0].strip() for push in pushes]
    finally:
        for push in pushes:
            push.kill()
            push.wait()
    assert [push.returncode for push in pushes] == [0, 0, 0]
    assert sorted(outputs) == [str(base / str(number)) for number in (1, 2, 3)]
    for model, version_dir in zip(models, outputs):
        assert file_tree(version_dir) == file_tree(str(model))
    assert versions(str(base)) == [1, 2, 3]


def test_push_to_a_remote_filesystem(tmp_path: Path):
    base = f"ram://serving-{uuid.uuid4().hex}/qqp"
    result = push_model(str(saved_model(tmp_path / "model")), base)
    assert result == PushResult(f"{base}/1", new=True)
    assert fileio.exists(f"{base}/1/variables/variables.index")
    assert fileio.exists(f"{base}/1/saved_model.pb")
    assert not (tmp_path / "ram:").exists() and not Path("ram:").exists()
    assert [name for name in fileio.listdir(base)
            if name.startswith(STAGING_PREFIX)] == []


def test_the_version_record_is_pushed_with_the_model_on_every_store(store: str, tmp_path: Path):
    def record(version: int, digest: str) -> dict[str, bytes]:
        return {history.RECORD_FILE: f"{version} {digest}".encode()}

    model = str(saved_model(tmp_path / "model"))
    result = push_model(model, store, version_files=record)
    assert result == PushResult(os.path.join(store, "1"), new=True)
    assert file_tree(result.version_dir) == {**file_tree(model), history.RECORD_FILE: (
        f"1 {model_digest(model)}".encode())}
    # Listed in the claim, so a push that dies is cleaned up to its record on object stores.
    assert history.RECORD_FILE in read_claim(claim_path(store, 1))["files"]
