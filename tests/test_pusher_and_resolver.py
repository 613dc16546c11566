"""Versioned, atomic pushes, and the choice of the latest blessed model."""

from pathlib import Path

import pytest
from tfx.types import standard_artifacts

from components.baseline_resolver import LatestBlessedOtherThanCandidateStrategy
from components.serving_pusher import next_version, push_model


def _saved_model(path: Path) -> Path:
    (path / "variables").mkdir(parents=True)
    (path / "saved_model.pb").write_bytes(b"pb")
    (path / "variables" / "variables.index").write_bytes(b"index")
    return path


def test_versions_increase_and_are_never_overwritten(tmp_path: Path):
    model = _saved_model(tmp_path / "model")
    base = tmp_path / "serving" / "qqp"
    assert next_version(str(base)) == 1
    first = push_model(str(model), str(base))
    assert first == str(base / "1")
    (base / "1" / "saved_model.pb").write_bytes(b"served")
    assert push_model(str(model), str(base)) == str(base / "2")
    assert (base / "1" / "saved_model.pb").read_bytes() == b"served"
    (base / "10").mkdir()
    assert next_version(str(base)) == 11


def test_failed_push_leaves_nothing_behind(tmp_path: Path):
    base = tmp_path / "serving" / "qqp"
    with pytest.raises(FileNotFoundError):
        push_model(str(tmp_path / "missing-model"), str(base))
    assert list(base.iterdir()) == []


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
