"""New data every week under LocalDagRunner: spans, the training window, warm start, drift.

A tiny random BERT on the gate scenario's pairs (`tests.end_to_end.gate_scenario`), laid
out in spans: span 1 is pushed as version 1; span 2 arrives and is ingested alone, the
window is spans 1 and 2, the candidate starts from version 1's weights and is compared
with it on both spans' eval pairs, and is pushed as version 2; a span 3 whose every
question2 ends in the same sentence stops the run before Transform, naming the feature;
a span 3 resampled from the same source passes the drift gate. The span-1 run and the
drifted run notify a local HTTP server (`--notify`): "pushed" with version 1, "failed" at
the DriftGate.
`tests/end_to_end/test_run_compiled_spans.py` plays the first two on the compiled spec.
Span 1 is `make test`'s end-to-end run on this runner; the rest, which builds on it, is
marked slow (`make test-slow` runs the whole file).
"""

import json
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from fixtures.tiny_bert import make_tiny_checkpoint
from pipeline import cli
from pipeline.results import run_results
from tests.end_to_end import gate_scenario
from tests.pipeline.test_notify import Received, receiving_server

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


@pytest.fixture(scope="module")
def notified() -> Iterator[Received]:
    """The URL given to --notify, and the documents POSTed to it."""
    with receiving_server() as server:
        yield server


def _notification(server: Received) -> dict:
    """The one document the server received since the last call."""
    [request] = server.requests
    server.requests.clear()
    assert (request["method"], request["content_type"]) == ("POST", "application/json")
    return request["document"]


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


def test_span_1_is_pushed_as_version_1(workspace: Path, notified: Received, capsys):
    assert _run(workspace, "--notify", notified.url) == 0
    output = capsys.readouterr().out
    assert "span 1, training window: spans 1" in output
    assert "drift: passed (no previous span to compare with)" in output
    assert "started from: the checkpoint (no model is served yet)" in output
    assert _versions(workspace) == ["1"]
    assert _warm_start_record(workspace / "serving" / "qqp" / "1")["train_spans"] == [1]
    document = _notification(notified)
    assert (document["status"], document["pushed_version"], document["failed_component"]) == (
        "pushed", 1, None)
    assert document["run_id"] == run_results.latest_run_id(str(workspace / "md.sqlite"))
    assert document["serving_dir"] == str(workspace / "serving")
    assert document["verdict"] and document["message"].startswith("blessed; pushed as version 1")


@pytest.mark.slow
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
    assert any(line.startswith("worst span: ") for line in report["verdict"])
    _check_the_release(workspace / "serving" / "qqp" / "2", report)


def _check_the_release(version_dir: Path, report: dict) -> None:
    """The serving check passed against version 1; the version's record and model card hold
    the report's figures: its metrics and every comparison with its interval."""
    check = report["serving_check"]
    assert check["passed"] and check["served_version"] == 1, check
    assert set(check["latency_ms"]["served"]) == {"b1", "b64"}
    comparisons = report["comparisons"]
    assert {(item["versus"], item["slice"]) for item in comparisons} == {
        ("not_fine_tuned", "all pairs"), ("served", "all pairs"), ("served", "span 1"),
        ("served", "span 2")}
    assert all(item["ci_low"] <= item["difference"] <= item["ci_high"] for item in comparisons)
    [candidate] = [model["metrics"] for model in report["models"] if model["role"] == "candidate"]
    record = json.loads((version_dir / "assets.extra" / "version.json").read_text())
    assert (record["accuracy"], record["f1"]) == (candidate["accuracy"], candidate["f1"])
    card = (version_dir / "assets.extra" / "model_card.md").read_text()
    header = yaml.safe_load(card.split("---\n")[1])
    assert {item["type"]: item["value"] for item in
            header["model-index"][0]["results"][0]["metrics"]} == {
        key: candidate[key] for key in ("accuracy", "f1", "roc_auc")}
    for item in comparisons:
        assert (f"| {item['difference']:+.4f} | 95% CI {item['ci_low']:+.4f}.."
                f"{item['ci_high']:+.4f} |") in card, item


@pytest.mark.slow
def test_a_shifted_span_stops_before_transform_naming_the_feature(workspace: Path,
                                                                 notified: Received, capsys):
    gate_scenario.write_data(workspace / "data" / "span-3", part=2, appended=SHIFT)
    assert _run(workspace, "--notify", notified.url) == cli.EXIT_BAD_INPUT
    error = capsys.readouterr().err
    assert "span 3 drifted from span 2: tokens_per_question diverges by" in error
    assert "above the threshold 0.1000" in error and "--accept-drift" in error
    run = _latest(workspace)
    assert run["DriftGate"].failed
    assert not {"TrainingWindow", "Transform", "Trainer", "Pusher"} & {
        node for node, result in run.items() if result.done}
    assert _versions(workspace) == ["1", "2"]
    assert not (workspace / "pipeline" / "spans" / "span-3.json").exists()
    document = _notification(notified)
    assert (document["status"], document["failed_component"], document["pushed_version"]) == (
        "failed", "DriftGate", None)
    assert document["message"].startswith("span 3 drifted from span 2: tokens_per_question")
    assert document["run_id"] == run_results.latest_run_id(str(workspace / "md.sqlite"))


@pytest.mark.slow
def test_a_resample_of_span_2_passes_the_drift_gate(workspace: Path, capsys):
    gate_scenario.write_data(workspace / "data" / "span-3", part=2)  # the same source
    assert _run(workspace, "--until", "DriftGate") == 0
    assert "drift: passed (largest: " in capsys.readouterr().out
    drift = json.loads(_latest(workspace)["DriftGate"].outputs["drift"][0]
                       .custom_properties["drift"].string_value)
    assert drift["verdict"] == "passed" and drift["previous_span"] == 2
    assert all(feature["divergence"] <= feature["threshold"]
               for feature in drift["features"].values())
