"""New data every week under LocalDagRunner: spans, the training window, warm start, drift.

A tiny random BERT on the gate scenario's pairs (`tests.end_to_end.gate_scenario`), laid
out in spans: span 1 is pushed as version 1; span 2 arrives and is ingested alone, the
window is spans 1 and 2, the candidate starts from version 1's weights and is compared
with it on both spans' eval pairs, and is pushed as version 2; a span 3 whose every
question2 ends in the same sentence stops the run before Transform, naming the feature;
a span 3 resampled from the same source passes the drift gate.
`tests/end_to_end/test_run_compiled_spans.py` plays the first two on the compiled spec.
"""

import json
from pathlib import Path

import pytest
import yaml

from fixtures.tiny_bert import make_tiny_checkpoint
from pipeline import cli
from pipeline.results import run_results
from tests.end_to_end import gate_scenario

SHIFT = " Please answer this as soon as possible, thank you very much for your help."


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("spans")
    gate_scenario.write_data(root / "data" / "span-1")
    (root / "weekly.yaml").write_text(yaml.safe_dump({
        "data": str(root / "data"), "checkpoint": str(make_tiny_checkpoint(root / "tiny-bert")),
        "pipeline-root": str(root / "pipeline"), "metadata": str(root / "md.sqlite"),
        "serving-dir": str(root / "serving"), **gate_scenario.TRAINING,
        "max-seq-length": gate_scenario.GOOD_MAX_SEQ_LENGTH}))
    return root


def _run(workspace: Path, *options: str) -> int:
    return cli.main(["run", "--config", str(workspace / "weekly.yaml"), *options])


def _latest(workspace: Path) -> dict[str, run_results.NodeResult]:
    return run_results.latest_run(str(workspace / "md.sqlite"))


def _versions(workspace: Path) -> list[str]:
    return sorted(path.name for path in (workspace / "serving" / "qqp").iterdir()
                  if path.name.isdigit())


def _warm_start_record(saved_model_dir: Path) -> dict:
    """What a SavedModel's warm-start weights fit and where they started from."""
    return json.loads((saved_model_dir / "assets.extra" / "warm_start" / "model.json")
                      .read_text())


def test_span_1_is_pushed_as_version_1(workspace: Path, capsys):
    assert _run(workspace) == 0
    output = capsys.readouterr().out
    assert "span 1, training window: spans 1" in output
    assert "drift: passed (no previous span to compare with)" in output
    assert "started from: the checkpoint (no model is served yet)" in output
    assert _versions(workspace) == ["1"]
    assert _warm_start_record(workspace / "serving" / "qqp" / "1")["train_spans"] == [1]


def test_span_2_alone_is_ingested_warm_started_from_version_1_and_gated_span_by_span(
        workspace: Path, capsys):
    first_examples = _latest(workspace)["QqpExampleGen"].outputs["examples"][0].uri
    gate_scenario.write_data(workspace / "data" / "span-2", part=1)
    assert _run(workspace) == 0
    output = capsys.readouterr().out
    run = _latest(workspace)
    ingested = run["QqpExampleGen"]
    assert not ingested.cached
    assert ingested.outputs["examples"][0].custom_properties["span"].int_value == 2
    # Span 2's pairs alone were read; span 1's examples are those of the first run.
    assert f"train: {gate_scenario.TRAIN_PAIRS} pairs" in output
    registry = json.loads((workspace / "pipeline" / "spans" / "span-1.json").read_text())
    assert registry["uri"] == first_examples
    window = run["TrainingWindow"].outputs["examples"][0]
    assert json.loads(window.custom_properties["train_spans"].string_value) == [1, 2]
    assert "span 2, training window: spans 1, 2" in output
    # The candidate (the Trainer's export, pushed or not) started from version 1's weights.
    assert "started from: the served version 1" in output
    version_1 = _warm_start_record(workspace / "serving" / "qqp" / "1")
    candidate = _warm_start_record(
        Path(run["Trainer"].outputs["model"][0].uri) / "Format-Serving")
    assert candidate["started_from"] == {"from": "served", "version": 1}
    assert candidate["start_weights_sha256"] == version_1["weights_sha256"]
    assert version_1["start_weights_sha256"] != version_1["weights_sha256"]
    assert candidate["train_spans"] == [1, 2]
    assert _versions(workspace) == ["1", "2"]
    assert _warm_start_record(workspace / "serving" / "qqp" / "2") == candidate
    assert cli.main(["report", "--format", "json", "--metadata",
                     str(workspace / "md.sqlite")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["blessed"] is True
    assert (report["span"], report["train_spans"]) == (2, [1, 2])
    assert report["warm_start"] == {"from": "served", "version": 1}
    assert report["drift"]["verdict"] == "passed" and report["drift"]["previous_span"] == 1
    assert [row["span"] for row in report["per_span"]] == [1, 2]
    for row in report["per_span"]:  # both models on each span's own eval pairs
        assert set(row["candidate"]) == set(row["served"]) == {"accuracy", "f1"}
    assert report["verdict"][-1].startswith("worst span: ")


def test_a_shifted_span_stops_before_transform_naming_the_feature(workspace: Path, capsys):
    gate_scenario.write_data(workspace / "data" / "span-3", part=2, appended=SHIFT)
    assert _run(workspace) == cli.EXIT_BAD_INPUT
    error = capsys.readouterr().err
    assert "span 3 drifted from span 2: tokens_per_question diverges by" in error
    assert "above the threshold 0.1000" in error and "--accept-drift" in error
    run = _latest(workspace)
    assert run["DriftGate"].failed
    assert not {"TrainingWindow", "Transform", "Trainer", "Pusher"} & {
        node for node, result in run.items() if result.done}
    assert _versions(workspace) == ["1", "2"]
    assert not (workspace / "pipeline" / "spans" / "span-3.json").exists()


def test_a_resample_of_span_2_passes_the_drift_gate(workspace: Path, capsys):
    gate_scenario.write_data(workspace / "data" / "span-3", part=2)  # the same source
    assert _run(workspace, "--until", "DriftGate") == 0
    assert "drift: passed (largest: " in capsys.readouterr().out
    drift = json.loads(_latest(workspace)["DriftGate"].outputs["drift"][0]
                       .custom_properties["drift"].string_value)
    assert drift["verdict"] == "passed" and drift["previous_span"] == 2
    assert all(feature["divergence"] <= feature["threshold"]
               for feature in drift["features"].values())
