"""Versioned pushes: atomic on local disks, safe on object stores, only while the gate holds."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from components import serving_pusher
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


def test_leftovers_of_killed_pushes_are_removed(tmp_path: Path):
    base = tmp_path / "serving" / "qqp"
    base.mkdir(parents=True)
    dead = f"{socket.gethostname()}-{_dead_pid()}"
    (base / f"{STAGING_PREFIX}{dead}-0123").mkdir()
    (base / f"{STAGING_PREFIX}{dead}-0123" / "saved_model.pb").write_bytes(b"half")
    (base / f"{CLAIM_PREFIX}1.json").write_text(json.dumps({"owner": dead, "version": 1}))
    alive = f"{socket.gethostname()}-{os.getpid()}"
    (base / f"{STAGING_PREFIX}{alive}-4567").mkdir()  # a push still running: kept
    assert push_model(str(_saved_model(tmp_path / "model")), str(base)).version_dir == str(
        base / "1")
    assert sorted(path.name for path in base.iterdir()) == sorted(
        ["1", f"{CLAIM_PREFIX}1.json", f"{STAGING_PREFIX}{alive}-4567"])


def test_concurrent_pushes_take_distinct_versions(tmp_path: Path):
    base = tmp_path / "serving" / "qqp"
    models = [str(_saved_model(tmp_path / f"model{i}", content=f"m{i}".encode()))
              for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda model: push_model(model, str(base)), models))
    assert sorted(result.version_dir for result in results) == [
        str(base / str(number)) for number in (1, 2, 3, 4)]
    assert versions(str(base)) == [1, 2, 3, 4]


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


def test_files_of_a_killed_object_store_push_are_removed(object_store: str, tmp_path: Path):
    base = object_store
    claim = {"owner": f"{socket.gethostname()}-{_dead_pid()}", "version": 1,
             "files": ["variables/variables.index", "saved_model.pb"]}
    _write(base, {"1/variables/variables.index": b"half", "1/assets/vocab.txt": b"not its own",
                  f"{CLAIM_PREFIX}1.json": json.dumps(claim).encode()})
    result = push_model(str(_saved_model(tmp_path / "model")), base)
    assert result == PushResult(os.path.join(base, "2"), new=True)
    assert sorted(_tree(base)) == sorted([
        "1/assets/vocab.txt", f"{CLAIM_PREFIX}2.json", "2/saved_model.pb",
        "2/variables/variables.index"])


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid

