"""Versioned, atomic pushes, and the choice of the latest blessed model."""

import json
import os
import socket
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from tfx.types import standard_artifacts

from components import serving_pusher
from components.baseline_resolver import LatestBlessedOtherThanCandidateStrategy
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


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _artifact(kind, artifact_id: int, **int_properties):
    artifact = kind()
    artifact.id = artifact_id
    for name, value in int_properties.items():
        artifact.set_int_custom_property(name, value)
    return artifact


def _resolve(models, blessings, candidate):
    return LatestBlessedOtherThanCandidateStrategy().resolve_artifacts(
        None, {"model": models, "model_blessing": blessings, "candidate": candidate})["model"]


def test_latest_blessed_model_other_than_the_candidate():
    model = standard_artifacts.Model
    blessing = standard_artifacts.ModelBlessing
    old, older_blessed, newer, candidate = (_artifact(model, i) for i in (1, 2, 3, 4))
    blessings = [_artifact(blessing, 10, blessed=1, current_model_id=1),
                 _artifact(blessing, 11, blessed=1, current_model_id=2),
                 _artifact(blessing, 12, blessed=0, current_model_id=3),
                 _artifact(blessing, 13, blessed=1, current_model_id=4)]
    models = [old, older_blessed, newer, candidate]
    assert _resolve(models, blessings, [candidate]) == [older_blessed]
    assert _resolve(models, blessings[2:], [candidate]) == []  # only the candidate is blessed
    assert _resolve(models, [], [candidate]) == []
