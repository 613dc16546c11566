"""Pushes to object stores (in-memory ram://, a stand-in /gcs/ mount): no rename, no exclusive
create, so files are copied in place and a failed push removes exactly what it wrote."""

import json
import os
import re
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from tfx.dsl.io import fileio

from components.serving import claims, layout, leases
from components.serving.claims import CLAIM_PREFIX
from components.serving.layout import versions
from components.serving.pusher import PushResult, push_model
from tests.serving.model_files import EXPIRED, dead_pid, file_tree, saved_model, write_files


@pytest.mark.parametrize("path, object_store", [
    ("/gcs/bucket/serving/qqp", True), ("gs://bucket/serving/qqp", True), ("ram://qqp", True),
    ("/tmp/serving/qqp", False), ("serving/qqp", False), ("/gcsfuse/serving/qqp", False)])
def test_object_stores_are_told_apart_from_local_disks(path: str, object_store: bool):
    assert layout.is_object_store(path) is object_store


def test_a_failed_object_store_push_removes_only_its_own_files(object_store: str,
                                                                 tmp_path: Path, monkeypatch):
    base = object_store
    for name in ("m1", "m2"):
        push_model(str(saved_model(tmp_path / name, content=name.encode())), base)
    before = file_tree(base)
    copied, removed_trees = [], []

    def copy_then_fail(source, destination, overwrite=False):
        if copied:
            raise OSError("connection reset")
        real_copy(source, destination, overwrite)
        copied.append(destination)

    real_copy = fileio.copy
    monkeypatch.setattr(fileio, "copy", copy_then_fail)
    monkeypatch.setattr(fileio, "rmtree", removed_trees.append)
    with pytest.raises(OSError, match="connection reset"):
        push_model(str(saved_model(tmp_path / "m3", content=b"m3")), base)
    assert copied == [os.path.join(base, "3", "variables", "variables.index")]
    assert file_tree(base) == before  # versions 1 and 2 intact; its own file and claim gone
    assert removed_trees == []  # no directory of the object store is removed whole


def test_a_version_another_writer_starts_during_the_push_is_left_alone(object_store: str,
                                                                        tmp_path: Path,
                                                                        monkeypatch):
    base = object_store
    push_model(str(saved_model(tmp_path / "m1", content=b"m1")), base)
    # The other writer took the same number (no exclusive create) and writes 2/ meanwhile.
    theirs = {"2/saved_model.pb": b"their model", "2/assets/vocab.txt": b"vocab",
              f"{CLAIM_PREFIX}2.json": json.dumps({"owner": "elsewhere-1", "nonce": "x"}).encode()}
    expected = {**file_tree(base), **theirs}

    def copy_while_another_writes(source, destination, overwrite=False):
        if not fileio.exists(os.path.join(base, "2", "saved_model.pb")):
            write_files(base, theirs)
        real_copy(source, destination, overwrite)

    real_copy = fileio.copy
    monkeypatch.setattr(fileio, "copy", copy_while_another_writes)
    target_file = os.path.join(base, "2", "saved_model.pb")
    with pytest.raises(FileExistsError, match=re.escape(target_file)):
        push_model(str(saved_model(tmp_path / "m2", content=b"m2")), base)
    assert file_tree(base) == expected  # their files and claim untouched, this push's gone


def test_files_of_an_object_store_push_whose_lease_expired_are_removed(object_store: str,
                                                                        tmp_path: Path):
    base = object_store
    here = socket.gethostname()
    expired = {"owner": f"{here}-{os.getpid()}", "version": 1, "heartbeat": EXPIRED,
               "files": ["variables/variables.index", "saved_model.pb"]}
    live = {"owner": f"{here}-{dead_pid()}", "version": 2, "heartbeat": time.time(),
            "files": ["variables/variables.index", "saved_model.pb"]}
    write_files(base, {"1/variables/variables.index": b"half", "1/assets/vocab.txt": b"not its own",
                  f"{CLAIM_PREFIX}1.json": json.dumps(expired).encode(),
                  "2/variables/variables.index": b"being copied",
                  f"{CLAIM_PREFIX}2.json": json.dumps(live).encode()})
    result = push_model(str(saved_model(tmp_path / "model")), base)
    assert result == PushResult(os.path.join(base, "3"), new=True)
    assert sorted(file_tree(base)) == sorted([
        "1/assets/vocab.txt", "2/variables/variables.index", f"{CLAIM_PREFIX}2.json",
        f"{CLAIM_PREFIX}3.json", "3/saved_model.pb", "3/variables/variables.index"])


def test_concurrent_pushes_to_an_object_store_never_mix_models(object_store: str,
                                                                tmp_path: Path, monkeypatch):
    """Pushes may collide there (the documented race): each one that succeeds is whole."""
    models = [str(saved_model(tmp_path / f"model{i}", content=f"m{i}".encode()))
              for i in range(4)]
    listing = claims.next_version

    def slow_next_version(base_directory: str) -> int:  # every push reads the same number
        number = listing(base_directory)
        time.sleep(0.2)
        return number

    monkeypatch.setattr(claims, "next_version", slow_next_version)
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
            assert outcome.new and file_tree(outcome.version_dir) == file_tree(model)
    for number in versions(object_store):  # nothing else there mixes two models either
        files = file_tree(os.path.join(object_store, str(number))).items()
        assert any(files <= file_tree(model).items() for model in models)


@pytest.mark.parametrize("object_store", [False, True])
def test_extra_files_are_pushed_with_the_model_and_count_in_its_identity(tmp_path: Path,
                                                                          object_store: bool):
    base = (f"ram://serving-{uuid.uuid4().hex}/qqp" if object_store
            else str(tmp_path / "serving" / "qqp"))
    model = str(saved_model(tmp_path / "model"))
    warmup = "assets.extra/tf_serving_warmup_requests"
    first = push_model(model, base, extra_files={warmup: b"requests"})
    assert file_tree(first.version_dir) == {"saved_model.pb": b"pb", warmup: b"requests",
                                        "variables/variables.index": b"index"}
    assert push_model(model, base, extra_files={warmup: b"requests"}) == PushResult(
        first.version_dir, new=False)
    assert push_model(model, base, extra_files={warmup: b"others"}).version_dir == f"{base}/2"
    assert push_model(model, base) == PushResult(f"{base}/3", new=True)  # without it: another
