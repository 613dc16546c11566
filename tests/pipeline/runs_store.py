"""The runs of `tests/pipeline/test_runs.py` and `test_runs_report.py`: an ML Metadata store
written by `TfxShapedStore` (records and artifact files shaped like TFX 1.16's), and what
`qqp-tfx runs` must show of each run (`EXPECTED`).

Five runs: checkpoint A (blessed, pushed as version 1); checkpoint B with
ingestion reused from the cache (not blessed); checkpoint B again with
everything but the gate's side cached (blessed, already served as version 1);
a hub id that is not on this machine, failed at Transform; checkpoint A again,
killed while training. Then the same store with data in spans: span 1 (window [1],
started from the checkpoint, no previous span to compare with; blessed, pushed as
version 2) and span 2 (window [1, 2], warm-started from the served version 2, drift
accepted; blessed, pushed as version 3; its evaluation sliced by span): the newest run,
whose report shows its spans.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import tensorflow as tf
from tensorflow_model_analysis.proto import metrics_for_slice_pb2

from components.features import SPAN_FEATURE
from tests.pipeline.tfx_shaped_store import TfxShapedStore, write_evaluation, write_statistics

INGESTION = ("QqpExampleGen", "ImportSchemaGen", "StatisticsGen", "ExampleValidator",
             "DataValidationGate")
MISSING_HUB_ID = "qqp-tfx-tests/no-such-model"  # never in Hugging Face's local cache
BEFORE_SPANS = ("run-a", "run-b", "run-b-again", "run-hub", "run-killed")
SPAN_SLICES = {1: {"binary_accuracy": 0.85, "f1_score": 0.8},  # the candidate on each span
               2: {"binary_accuracy": 0.95, "f1_score": 0.9}}
DRIFT_FEATURES = {"word_overlap": {"divergence": 0.0912, "threshold": 0.07},
                  "tokens_per_question": {"divergence": 0.0123, "threshold": 0.1}}


def _checkpoint(directory: Path, model_type: str) -> Path:
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({"model_type": model_type}))
    return directory


def _add_span_slices(evaluation_uri: str, slices: dict[int, dict[str, float]]) -> None:
    """The candidate's metrics by span, added to a `write_evaluation` directory."""
    path = str(Path(evaluation_uri, "metrics-00000-of-00001.tfrecord"))
    records = [record.numpy() for record in tf.data.TFRecordDataset(path)]
    for span, values in slices.items():
        by_span = metrics_for_slice_pb2.MetricsForSlice()
        by_span.slice_key.single_slice_keys.add(column=SPAN_FEATURE, int64_value=span)
        for name, value in values.items():
            entry = by_span.metric_keys_and_values.add()
            entry.key.name, entry.key.model_name = name, "candidate"
            entry.value.double_value.value = value
        records.append(by_span.SerializeToString())
    with tf.io.TFRecordWriter(path) as writer:
        for record in records:
            writer.write(record)


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
    "run-span-1": dict(status="complete", span=1, train_spans=[1], drift="passed",
                       warm_start={"from": "checkpoint", "why": "no model is served yet"},
                       blessed=True, pushed_version=2),
    "run-span-2": dict(status="complete", span=2, train_spans=[1, 2], drift="accepted",
                       warm_start={"from": "served", "version": 2}, blessed=True,
                       pushed_version=3, candidate_accuracy=0.9),
}


def build_runs_store(root: Path) -> TfxShapedStore:
    """The seven runs of `EXPECTED`, written under `root`."""
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

    def ingest_span(span: int, window: list[int], drift: dict, warm_start: dict) -> None:
        """ExampleGen on one span, then the TrainingWindow, DriftGate and WarmStart."""
        ingestion["examples"] = fake.artifact("Examples", "QqpExampleGen", "examples",
                                              span=span)
        statistics = fake.artifact("ExampleStatistics", "StatisticsGen", "statistics")
        write_statistics(statistics, {"train": (100, 40), "eval": (20, 8)})
        fake.store.put_artifacts([statistics])
        fake.execution("QqpExampleGen", "COMPLETE", {"input_base": str(root / "spans"),
                                                     "span": span},
                       outputs={"examples": ingestion["examples"]})
        fake.execution("StatisticsGen", inputs={"examples": ingestion["examples"]},
                       outputs={"statistics": statistics})
        window_examples = fake.artifact("Examples", "TrainingWindow", "examples", span=span,
                                        train_spans=json.dumps(window))
        fake.execution("TrainingWindow", inputs={"span_examples": ingestion["examples"]},
                       outputs={"examples": window_examples})
        fake.execution("DriftGate", inputs={"examples": ingestion["examples"]},
                       outputs={"drift": fake.artifact("ExampleAnomalies", "DriftGate",
                                                       "drift", drift=json.dumps(drift))})
        fake.execution("WarmStart", inputs={"examples": window_examples},
                       outputs={"model": fake.artifact(
                           "Model", "WarmStart", "model",
                           warm_start=json.dumps({**warm_start, "train_spans": window}))})

    fake.start_run("run-span-1")
    ingest_span(1, [1], {"verdict": "passed", "features": {},
                         "why": "no previous span to compare with"},
                {"from": "checkpoint", "why": "no model is served yet"})
    model, _ = train_and_evaluate(checkpoint_a, 2, 5e-5, {
        "candidate": {"binary_accuracy": 0.875, "f1_score": 0.8}, **both})
    gate_and_push(model, True, ["clears the floors"], 2)

    fake.start_run("run-span-2")
    ingest_span(2, [1, 2], {"verdict": "accepted", "previous_span": 1,
                            "features": DRIFT_FEATURES},
                {"from": "served", "version": 2, "served_spans": [1]})
    model, (*_, evaluation) = train_and_evaluate(checkpoint_a, 2, 5e-5, {
        "candidate": {"binary_accuracy": 0.9, "f1_score": 0.85}, **both})
    _add_span_slices(evaluation.uri, SPAN_SLICES)
    gate_and_push(model, True, ["not worse than the served model (version 2)"], 3)
    return fake
