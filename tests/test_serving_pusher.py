"""Versioned pushes: atomic on local disks, safe on object stores, only while the gate holds."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from components import leases, serving_pusher
from components.serving_pusher import (CLAIM_PREFIX, STAGING_PREFIX, PushResult, next_version,
                                       push_model, versions)


def _saved_model(path: Path, content: bytes = b"pb") -> Path:
    (path / "variables").mkdir(parents=True)
    (path / "saved_model.pb").write_bytes(content)
    (path / "variables" / "variables.index").write_bytes(b"index")
    return path


def test_versions_increase_and_are_never_overwritten(tmp_path: Path):
    base = tmp_path / "serving" / "qqp"
    assert next_version(str(base)) == 1
    first = push_model(str(_saved_model(tmp_path / "model")), str(base))
    assert first == PushResult(str(base / "1"), new=True)
    (base / "1" / "saved_model.pb").write_bytes(b"served")
    other = _saved_model(tmp_path / "other", content=b"another model")
    assert push_model(str(other), str(base)) == PushResult(str(base / "2"), new=True)
    assert (base / "1" / "saved_model.pb").read_bytes() == b"served"
    (base / "10").mkdir()
    assert next_version(str(base)) == 11


def test_the_same_model_is_not_pushed_twice(tmp_path: Path):
    base = tmp_path / "serving" / "qqp"
    push_model(str(_saved_model(tmp_path / "model")), str(base))
    again = push_model(str(_saved_model(tmp_path / "copy")), str(base))  # identical files
    assert again == PushResult(str(base / "1"), new=False)
    assert versions(str(base)) == [1]


def test_a_rollback_is_pushed_as_a_new_version(tmp_path: Path):
    base = tmp_path / "serving" / "qqp"
    model_a = str(_saved_model(tmp_path / "a", content=b"model a"))
    model_b = str(_saved_model(tmp_path / "b", content=b"model b"))
    assert push_model(model_a, str(base)).version_dir == str(base / "1")
    assert push_model(model_b, str(base)).version_dir == str(base / "2")
    assert push_model(model_a, str(base)) == PushResult(str(base / "3"), new=True)
    assert (base / "3" / "saved_model.pb").read_bytes() == b"model a"
    assert push_model(model_a, str(base)) == PushResult(str(base / "3"), new=False)
    assert versions(str(base)) == [1, 2, 3]


def test_nothing_is_pushed_when_the_served_version_changed_after_the_gate(tmp_path: Path):
    base = tmp_path / "serving" / "qqp"
    model_a = str(_saved_model(tmp_path / "a", content=b"model a"))
    model_b = str(_saved_model(tmp_path / "b", content=b"model b"))
    assert push_model(model_a, str(base), gated_against=0).version_dir == str(base / "1")
    # B was gated when nothing was served; version 1 appeared since.
    with pytest.raises(serving_pusher.ServedModelChangedError, match="newest version is now 1"):
        push_model(model_b, str(base), gated_against=0)
    assert versions(str(base)) == [1] and not list(base.glob(f"{CLAIM_PREFIX}2.json"))
    assert push_model(model_b, str(base), gated_against=1).version_dir == str(base / "2")


def test_nothing_is_pushed_while_another_push_is_still_copying(tmp_path: Path):
    base = tmp_path / "serving" / "qqp"
    push_model(str(_saved_model(tmp_path / "a", content=b"model a")), str(base))
    # Another run, alive, has claimed version 2 and is still copying it.
    (base / f"{CLAIM_PREFIX}2.json").write_text(json.dumps(
        {"owner": f"{socket.gethostname()}-{os.getpid()}", "version": 2}))
    model_b = str(_saved_model(tmp_path / "b", content=b"model b"))
    with pytest.raises(serving_pusher.ServedModelChangedError,
                       match="version 2 is being pushed by another run"):
        push_model(model_b, str(base), gated_against=1)
    assert versions(str(base)) == [1] and not (base / f"{CLAIM_PREFIX}3.json").exists()
    (base / f"{CLAIM_PREFIX}2.json").unlink()  # that push failed and released its claim
    assert push_model(model_b, str(base), gated_against=1).version_dir == str(base / "2")


def test_the_newest_version_is_compared_by_its_files_not_by_claims(tmp_path: Path):
    base = tmp_path / "serving" / "qqp"
    model = _saved_model(tmp_path / "model")
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
    model = _saved_model(tmp_path / "model")
    copied = []

    def copy_then_fail(source, destination, overwrite=False):
        if copied:  # the staging directory exists and holds one file by now
            assert any(path.name.startswith(STAGING_PREFIX) for path in base.iterdir())
            raise OSError("disk full")
        copied.append(destination)
        real_copy(source, destination, overwrite)

    real_copy = serving_pusher.fileio.copy
    monkeypatch.setattr(serving_pusher.fileio, "copy", copy_then_fail)
    with pytest.raises(OSError, match="disk full"):
        push_model(str(model), str(base))
    assert copied and list(base.iterdir()) == []


EXPIRED = time.time() - leases.LEASE_SECONDS - 60


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
        {"owner": f"{here}-{_dead_pid()}", "version": 2, "heartbeat": time.time()}))
    # Version 3: written by older code, without a heartbeat: its file's time counts.
    (base / f"{CLAIM_PREFIX}3.json").write_text(json.dumps({"owner": "elsewhere-1"}))
    os.utime(base / f"{CLAIM_PREFIX}3.json", (EXPIRED, EXPIRED))
    (base / f"{STAGING_PREFIX}elsewhere-1-cdef").mkdir()  # named by older code: no claim
    assert push_model(str(_saved_model(tmp_path / "model")), str(base)).version_dir == str(
        base / "3")
    assert sorted(path.name for path in base.iterdir()) == sorted(
        ["3", f"{CLAIM_PREFIX}2.json", f"{CLAIM_PREFIX}3.json", f"{STAGING_PREFIX}2-4567"])


@pytest.fixture(params=["local", "ram", "gcs-fuse"])
def store(request, tmp_path: Path, monkeypatch) -> str:
    """A base directory on a local disk, TF's in-memory filesystem, or a stand-in `/gcs/`."""
    if request.param == "ram":
        return f"ram://serving-{uuid.uuid4().hex}/qqp"
    if request.param == "gcs-fuse":
        monkeypatch.setattr(serving_pusher, "FUSE_MOUNT", f"{tmp_path}/gcs/")
        return f"{tmp_path}/gcs/bucket/qqp"
    return f"{tmp_path}/local/qqp"


@pytest.fixture
def short_lease(monkeypatch) -> float:
    """A 2 s lease renewed every 0.05 s; returns the lease."""
    monkeypatch.setattr(leases, "LEASE_SECONDS", 2.0)
    monkeypatch.setattr(leases, "HEARTBEAT_SECONDS", 0.05)
    return leases.LEASE_SECONDS


def test_a_push_longer_than_the_lease_keeps_it_by_renewing(store: str, short_lease: float,
                                                             tmp_path: Path, monkeypatch):
    removed = []

    def slow_copy(source, destination, overwrite=False):
        if os.path.basename(destination) == "saved_model.pb":  # the last file
            time.sleep(short_lease + 0.5)  # its claim was written more than a lease ago
            removed.extend(serving_pusher.remove_stale_entries(store))  # another push's cleanup
        real_copy(source, destination, overwrite)

    real_copy = serving_pusher.fileio.copy
    monkeypatch.setattr(serving_pusher.fileio, "copy", slow_copy)
    result = push_model(str(_saved_model(tmp_path / "model")), store)
    assert removed == []
    assert result == PushResult(os.path.join(store, "1"), new=True)
    assert sorted(_tree(store)) == sorted([f"{CLAIM_PREFIX}1.json", "1/saved_model.pb",
                                           "1/variables/variables.index"])


def test_a_push_that_lost_its_claim_publishes_nothing(store: str, short_lease: float,
                                                      tmp_path: Path, monkeypatch):
    def copy_then_lose_the_claim(source, destination, overwrite=False):
        real_copy(source, destination, overwrite)
        claim = os.path.join(store, f"{CLAIM_PREFIX}1.json")
        if serving_pusher.fileio.exists(claim):
            # Another push found this claim expired (this one was paused) and removed it.
            serving_pusher.fileio.remove(claim)
            _wait_until(lambda: not any(thread.name == f"heartbeat {claim}"
                                        for thread in threading.enumerate()))  # noticed

    real_copy = serving_pusher.fileio.copy
    monkeypatch.setattr(serving_pusher.fileio, "copy", copy_then_lose_the_claim)
    with pytest.raises(leases.LeaseLostError, match=f"{CLAIM_PREFIX}1.json is no longer held"):
        push_model(str(_saved_model(tmp_path / "model")), store)
    assert _tree(store) == {}


PUSH = """
import os, sys, time
from components import serving_pusher
model, base, start = sys.argv[1:]
listing = serving_pusher.next_version

def slow_next_version(base_directory):  # a slow listing: every push reads the same number
    number = listing(base_directory)
    time.sleep(0.5)
    return number

serving_pusher.next_version = slow_next_version
print("ready", flush=True)
while not os.path.exists(start):
    time.sleep(0.01)
print(serving_pusher.push_model(model, base).version_dir, flush=True)
"""


def test_concurrent_pushes_from_several_processes_take_distinct_versions(tmp_path: Path):
    base = tmp_path / "serving" / "qqp"
    models = [_saved_model(tmp_path / f"model{i}", content=f"m{i}".encode()) for i in range(3)]
    start = tmp_path / "start"
    pushes = [subprocess.Popen([sys.executable, "-c", PUSH, str(model), str(base), str(start)],
                               stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1])
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
        assert _tree(version_dir) == _tree(str(model))
    assert versions(str(base)) == [1, 2, 3]


def test_push_to_a_remote_filesystem(tmp_path: Path):
    base = f"ram://serving-{uuid.uuid4().hex}/qqp"
    result = push_model(str(_saved_model(tmp_path / "model")), base)
    assert result == PushResult(f"{base}/1", new=True)
    assert serving_pusher.fileio.exists(f"{base}/1/variables/variables.index")
    assert serving_pusher.fileio.exists(f"{base}/1/saved_model.pb")
    assert not (tmp_path / "ram:").exists() and not Path("ram:").exists()
    assert [name for name in serving_pusher.fileio.listdir(base)
            if name.startswith(STAGING_PREFIX)] == []


@pytest.fixture(params=["ram", "gcs-fuse"])
def object_store(request, tmp_path: Path, monkeypatch) -> str:
    """A base directory on TF's in-memory filesystem, or under a stand-in `/gcs/` mount."""
    if request.param == "ram":
        return f"ram://serving-{uuid.uuid4().hex}/qqp"
    monkeypatch.setattr(serving_pusher, "FUSE_MOUNT", f"{tmp_path}/gcs/")
    return f"{tmp_path}/gcs/bucket/qqp"


def _write(base: str, files: dict[str, bytes]) -> None:
    """Writes or replaces files below `base` (ram:// appends to an existing file)."""
    for relative, content in files.items():
        path = os.path.join(base, relative)
        serving_pusher.fileio.makedirs(os.path.dirname(path))
        if serving_pusher.fileio.exists(path):
            serving_pusher.fileio.remove(path)
        with serving_pusher.fileio.open(path, "wb") as stream:
            stream.write(content)


def _tree(base: str) -> dict[str, bytes]:
    """Relative path -> content, for every file below `base`."""
    tree = {}
    for directory, _, names in serving_pusher.fileio.walk(base):
        for name in names:
            path = os.path.join(directory, name)
            with serving_pusher.fileio.open(path, "rb") as stream:
                tree[os.path.relpath(path, base)] = stream.read()
    return tree


@pytest.mark.parametrize("path, object_store", [
    ("/gcs/bucket/serving/qqp", True), ("gs://bucket/serving/qqp", True), ("ram://qqp", True),
    ("/tmp/serving/qqp", False), ("serving/qqp", False), ("/gcsfuse/serving/qqp", False)])
def test_object_stores_are_told_apart_from_local_disks(path: str, object_store: bool):
    assert serving_pusher._is_object_store(path) is object_store


def test_a_failed_object_store_push_removes_only_its_own_files(object_store: str,
                                                                 tmp_path: Path, monkeypatch):
    base = object_store
    for name in ("m1", "m2"):
        push_model(str(_saved_model(tmp_path / name, content=name.encode())), base)
    before = _tree(base)
    copied, removed_trees = [], []

    def copy_then_fail(source, destination, overwrite=False):
        if copied:
            raise OSError("connection reset")
        real_copy(source, destination, overwrite)
        copied.append(destination)

    real_copy = serving_pusher.fileio.copy
    monkeypatch.setattr(serving_pusher.fileio, "copy", copy_then_fail)
    monkeypatch.setattr(serving_pusher.fileio, "rmtree", removed_trees.append)
    with pytest.raises(OSError, match="connection reset"):
        push_model(str(_saved_model(tmp_path / "m3", content=b"m3")), base)
    assert copied == [os.path.join(base, "3", "variables", "variables.index")]
    assert _tree(base) == before  # versions 1 and 2 intact; its own file and claim gone
    assert removed_trees == []  # no directory of the object store is removed whole


def test_a_version_another_writer_starts_during_the_push_is_left_alone(object_store: str,
                                                                        tmp_path: Path,
                                                                        monkeypatch):
    base = object_store
    push_model(str(_saved_model(tmp_path / "m1", content=b"m1")), base)
    # The other writer took the same number (no exclusive create) and writes 2/ meanwhile.
    theirs = {"2/saved_model.pb": b"their model", "2/assets/vocab.txt": b"vocab",
              f"{CLAIM_PREFIX}2.json": json.dumps({"owner": "elsewhere-1", "nonce": "x"}).encode()}
    expected = {**_tree(base), **theirs}

    def copy_while_another_writes(source, destination, overwrite=False):
        if not serving_pusher.fileio.exists(os.path.join(base, "2", "saved_model.pb")):
            _write(base, theirs)
        real_copy(source, destination, overwrite)

    real_copy = serving_pusher.fileio.copy
    monkeypatch.setattr(serving_pusher.fileio, "copy", copy_while_another_writes)
    target_file = os.path.join(base, "2", "saved_model.pb")
    with pytest.raises(FileExistsError, match=re.escape(target_file)):
        push_model(str(_saved_model(tmp_path / "m2", content=b"m2")), base)
    assert _tree(base) == expected  # their files and claim untouched, this push's gone


def test_files_of_an_object_store_push_whose_lease_expired_are_removed(object_store: str,
                                                                        tmp_path: Path):
    base = object_store
    here = socket.gethostname()
    expired = {"owner": f"{here}-{os.getpid()}", "version": 1, "heartbeat": EXPIRED,
               "files": ["variables/variables.index", "saved_model.pb"]}
    live = {"owner": f"{here}-{_dead_pid()}", "version": 2, "heartbeat": time.time(),
            "files": ["variables/variables.index", "saved_model.pb"]}
    _write(base, {"1/variables/variables.index": b"half", "1/assets/vocab.txt": b"not its own",
                  f"{CLAIM_PREFIX}1.json": json.dumps(expired).encode(),
                  "2/variables/variables.index": b"being copied",
                  f"{CLAIM_PREFIX}2.json": json.dumps(live).encode()})
    result = push_model(str(_saved_model(tmp_path / "model")), base)
    assert result == PushResult(os.path.join(base, "3"), new=True)
    assert sorted(_tree(base)) == sorted([
        "1/assets/vocab.txt", "2/variables/variables.index", f"{CLAIM_PREFIX}2.json",
        f"{CLAIM_PREFIX}3.json", "3/saved_model.pb", "3/variables/variables.index"])


def test_concurrent_pushes_to_an_object_store_never_mix_models(object_store: str,
                                                                tmp_path: Path, monkeypatch):
    """Pushes may collide there (the documented race): each one that succeeds is whole."""
    models = [str(_saved_model(tmp_path / f"model{i}", content=f"m{i}".encode()))
              for i in range(4)]
    listing = serving_pusher.next_version

    def slow_next_version(base_directory: str) -> int:  # every push reads the same number
        number = listing(base_directory)
        time.sleep(0.2)
        return number

    monkeypatch.setattr(serving_pusher, "next_version", slow_next_version)
    barrier = threading.Barrier(len(models))

    def push(model: str) -> PushResult | Exception:
        barrier.wait()
        try:
            return push_model(model, object_store)
        except (FileExistsError, leases.LeaseLostError) as error:
            return error

    with ThreadPoolExecutor(len(models)) as pool:
        outcomes = list(pool.map(push, models))
    pushed = [outcome for outcome in outcomes if isinstance(outcome, PushResult)]
    assert pushed and len({result.version_dir for result in pushed}) == len(pushed)
    for model, outcome in zip(models, outcomes):
        if isinstance(outcome, PushResult):
            assert outcome.new and _tree(outcome.version_dir) == _tree(model)
    for number in versions(object_store):  # nothing else there mixes two models either
        files = _tree(os.path.join(object_store, str(number))).items()
        assert any(files <= _tree(model).items() for model in models)


def _wait_until(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid



@pytest.mark.parametrize("object_store", [False, True])
def test_extra_files_are_pushed_with_the_model_and_count_in_its_identity(tmp_path: Path,
                                                                          object_store: bool):
    base = (f"ram://serving-{uuid.uuid4().hex}/qqp" if object_store
            else str(tmp_path / "serving" / "qqp"))
    model = str(_saved_model(tmp_path / "model"))
    warmup = "assets.extra/tf_serving_warmup_requests"
    first = push_model(model, base, extra_files={warmup: b"requests"})
    assert _tree(first.version_dir) == {"saved_model.pb": b"pb", warmup: b"requests",
                                        "variables/variables.index": b"index"}
    assert push_model(model, base, extra_files={warmup: b"requests"}) == PushResult(
        first.version_dir, new=False)
    assert push_model(model, base, extra_files={warmup: b"others"}).version_dir == f"{base}/2"
    assert push_model(model, base) == PushResult(f"{base}/3", new=True)  # without it: another
