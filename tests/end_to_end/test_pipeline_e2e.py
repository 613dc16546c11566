"""The whole pipeline under LocalDagRunner with a tiny random BERT on a few hundred pairs,
on data not laid out in spans, and the commands that read its results.

All of it runs in `make test-slow` (about six minutes): `make test` plays LocalDagRunner
end to end on data in spans (`tests/end_to_end/test_spans_e2e.py`), and this file's
layout, a plain data directory, on the compiled spec (`test_run_compiled.py`).

One module-scoped workspace is shared by four runs of the gate scenario
(`tests.end_to_end.gate_scenario`): a good candidate (blessed, version 1), the same
run again with the data gate's code edited (cached up to the gate, except the data
gate; the gate reads the serving directory again; nothing new pushed), a reliably
worse candidate (better than the not-fine-tuned model, worse than version 1: not
blessed) and that run again with its Trainer reused (not blessed again). `tests/end_to_end/test_run_compiled.py` plays the same scenario
on the compiled Vertex AI spec.
"""

import io
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from fixtures.tiny_bert import make_tiny_checkpoint
from pipeline import cli, pipeline
from pipeline.results import run_results
from tests.end_to_end import gate_scenario
from tests.conftest import write_tsv

ALL_COMPONENTS = {"QqpExampleGen", "ImportSchemaGen", "StatisticsGen", "ExampleValidator",
                  "DataValidationGate", "DriftGate", "TrainingWindow", "WarmStart",
                  "Transform", "Trainer", "NotFineTunedModel", "Evaluator", "ServedModel",
                  "ServedModelEvaluator", "BlessingGate", "Pusher"}
MARKER = gate_scenario.MARKER
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("e2e")
    config = {"data": str(gate_scenario.write_data(root / "data")),
              "checkpoint": str(make_tiny_checkpoint(root / "tiny-bert")),
              "pipeline-root": str(root / "pipeline"), "metadata": str(root / "md.sqlite"),
              "serving-dir": str(root / "serving"), **gate_scenario.TRAINING}
    (root / "good.yaml").write_text(yaml.safe_dump(
        {**config, "max-seq-length": gate_scenario.GOOD_MAX_SEQ_LENGTH}))
    (root / "worse.yaml").write_text(yaml.safe_dump(
        {**config, "max-seq-length": gate_scenario.WORSE_MAX_SEQ_LENGTH}))
    return root


def _run(workspace: Path, config_name: str) -> dict[str, run_results.NodeResult]:
    assert cli.main(["run", "--config", str(workspace / config_name)]) == 0
    return run_results.latest_run(str(workspace / "md.sqlite"))


def _versions(workspace: Path) -> list[str]:
    """The version directories TF Serving sees (hidden claim files aside)."""
    return sorted(path.name for path in (workspace / "serving" / "qqp").iterdir()
                  if path.name.isdigit())


def _blessed(run) -> bool:
    return run["BlessingGate"].outputs["blessing"][0].custom_properties["blessed"].int_value == 1


def test_good_candidate_is_blessed_and_pushed(workspace: Path, capsys):
    run = _run(workspace, "good.yaml")
    assert ALL_COMPONENTS <= set(run)
    assert not any(result.cached for result in run.values())
    assert _blessed(run)
    assert "/NotFineTunedModel/" in run["Evaluator"].inputs["baseline_model"][0].uri
    served = run["ServedModel"].outputs["model"][0]
    assert served.custom_properties["served_version"].int_value == 0  # nothing served yet
    assert _versions(workspace) == ["1"]
    version_dir = workspace / "serving" / "qqp" / "1"
    assert (version_dir / "saved_model.pb").is_file()
    assert (version_dir / "variables").is_dir()
    assert (version_dir / "assets" / "vocab.txt").is_file()
    output = capsys.readouterr().out
    for row in ("fine-tuned candidate", "not fine-tuned (cosine)", "majority class"):
        assert row in output
    assert "served model" not in output.split("BLESSED")[0]  # no such row yet
    assert ("BLESSED: clears the floors and beats the not-fine-tuned model on accuracy and F1; "
            "no model is served yet") in output
    assert f"pushed to: {version_dir}" in output
    assert re.search(r"Training: epoch 4/5 done, [\d.]+ min elapsed, about [\d.]+ min left",
                     output)  # the whole run's ETA, after each epoch
    assert "Training: epoch 5/5 done" in output


def test_pushed_model_serves_raw_text_in_a_fresh_process(workspace: Path):
    script = textwrap.dedent("""
        import json, sys
        import tensorflow as tf
        import tensorflow_text  # noqa: F401
        model = tf.saved_model.load(sys.argv[1])
        assert set(model.signatures) == {"serving_default", "predict_text", "classification",
                                  "transform_features"}
        out = model.signatures["predict_text"](
            question1=tf.constant(["How do I learn Python?", "", "word " * 2000]),
            question2=tf.constant(["What is the best way to learn Python?", "Empty?", "x"]))
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in
                        ("transformers", "tensorflow_transform", "tfx", "components", "pipeline"))
        print(json.dumps({"p": out["probability"].numpy().tolist(),
                          "label": out["label"].numpy().tolist(), "modules": loaded}))
    """)
    result = subprocess.run([sys.executable, "-c", script,
                             str(workspace / "serving" / "qqp" / "1")],
                            capture_output=True, text=True, check=True, cwd=workspace)
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(answer["p"]) == 3 and all(0.0 <= p <= 1.0 for p in answer["p"])
    assert answer["label"] == [int(p >= 0.5) for p in answer["p"]]
    assert answer["modules"] == []


def test_rerun_with_an_edited_data_gate_reruns_it_and_the_gate_and_pushes_nothing(
        workspace: Path, capsys, monkeypatch):
    real_fingerprint = pipeline.code_fingerprint
    monkeypatch.setattr(pipeline, "code_fingerprint", lambda module: real_fingerprint(module) + (
        "-edited" if module == "components.data.validation_gate" else ""))
    run = _run(workspace, "good.yaml")
    assert not run["DataValidationGate"].cached  # its code changed
    for component in ("QqpExampleGen", "ImportSchemaGen", "StatisticsGen", "ExampleValidator",
                      "DriftGate", "TrainingWindow", "WarmStart", "Transform", "Trainer",
                      "NotFineTunedModel", "Evaluator"):
        assert run[component].cached, component
    # The gate's side reads the serving directory: it runs again, and so does the Pusher.
    for component in ("ServedModel", "ServedModelEvaluator", "BlessingGate", "ServingCheck",
                      "Pusher"):
        assert not run[component].cached, component
    assert _blessed(run)  # the candidate is version 1 itself: not worse than it
    assert "already served as" in capsys.readouterr().out
    pushed = run["Pusher"].outputs["pushed_model"][0]
    assert pushed.custom_properties["already_served"].int_value == 1
    assert _versions(workspace) == ["1"]


def _signature_probabilities(version_dir: Path, first: list[str], second: list[str]):
    """The served signature's own probabilities, without the CLI in between."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    signature = tf.saved_model.load(str(version_dir)).signatures["predict_text"]
    return signature(question1=tf.constant(first), question2=tf.constant(second)
                     )["probability"].numpy().reshape(-1)


def test_predict_and_evaluate_commands(workspace: Path, tmp_path: Path, capsys):
    model_base = workspace / "serving" / "qqp"
    labeled = workspace / "data" / "dev.tsv"
    # float32: equal to the signature's own output (bf16 scoring is checked in
    # tests/precision/test_scoring_precision.py).
    assert cli.main(["evaluate", "--model", str(model_base), "--input", str(labeled),
                     "--precision", "float32"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = [line.split("\t") for line in labeled.read_text().splitlines()[1:]]
    labels = np.array([int(row[5]) for row in rows])
    probabilities = _signature_probabilities(model_base / "1", [row[3] for row in rows],
                                             [row[4] for row in rows])
    predicted = probabilities >= 0.5
    true_positives = int(np.sum(predicted & (labels == 1)))
    assert metrics["n"] == len(rows) == 64
    assert metrics["accuracy"] == pytest.approx(np.mean(predicted == labels), abs=1e-9)
    assert metrics["f1"] == pytest.approx(
        2 * true_positives / (predicted.sum() + labels.sum()), abs=1e-9)
    assert set(metrics) == {"accuracy", "f1", "precision", "recall", "roc_auc", "n"}
    # The served model learned the marker: marked (duplicate) pairs score higher.
    assert probabilities[labels == 1].mean() > probabilities[labels == 0].mean() + 0.2

    unlabeled = write_tsv(tmp_path / "test.tsv", ["7\tIs it?\tIs it so?",
                                                  f"8\tIs it?\tIs it so?{MARKER}"],
                          header="id\tquestion1\tquestion2\n")
    output = tmp_path / "scores.tsv"
    assert cli.main(["predict", "--model", str(model_base / "1"), "--input", str(unlabeled),
                     "--output", str(output), "--precision", "float32"]) == 0
    lines = output.read_text().splitlines()
    assert lines[0] == "id\tprobability\tlabel"
    assert [line.split("\t")[0] for line in lines[1:]] == ["7", "8"]
    written = [_probability_and_label(line) for line in lines[1:]]
    expected = _signature_probabilities(model_base / "1", ["Is it?"] * 2,
                                        ["Is it so?", f"Is it so?{MARKER}"])
    for (probability, label), want in zip(written, expected):
        assert probability == pytest.approx(want, abs=1e-6) and label == int(want >= 0.5)
    assert written[1][0] > written[0][0]  # the marker makes a duplicate


def _probability_and_label(line: str) -> tuple[float, int]:
    probability, label = line.split("\t")[-2:]
    return float(probability), int(label)


def test_predict_one_pair_from_the_command_line(workspace: Path, capsys):
    model_base = str(workspace / "serving" / "qqp")
    duplicate = ["--question1", "Is it raining?", "--question2", "Is it raining?" + MARKER]
    # float32: exactly the signature's own output (auto would score in bf16 on bf16 CPUs).
    assert cli.main(["predict", "--model", model_base, "--precision", "float32", *duplicate]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "probability\tlabel" and len(lines) == 2
    probability, label = _probability_and_label(lines[1])
    assert 0.0 <= probability <= 1.0 and label == int(probability >= 0.5)
    # The same pair through the signature directly gives the same probability.
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    signature = tf.saved_model.load(str(workspace / "serving" / "qqp" / "1")
                                    ).signatures["predict_text"]
    expected = float(signature(question1=tf.constant([duplicate[1]]),
                               question2=tf.constant([duplicate[3]]))["probability"][0])
    assert probability == pytest.approx(expected, abs=1e-6)
    # Empty questions are questions too.
    assert cli.main(["predict", "--model", model_base, "--question1", "",
                     "--question2", ""]) == 0
    assert 0.0 <= _probability_and_label(capsys.readouterr().out.splitlines()[1])[0] <= 1.0


def test_predict_reads_standard_input(workspace: Path, monkeypatch, capsys):
    rows = "id\tquestion1\tquestion2\n5\tIs it?\tIs it so?\n6\t\tAn empty first question\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(rows.encode("utf-8"))))
    assert cli.main(["predict", "--model", str(workspace / "serving" / "qqp"),
                     "--input", "-"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "id\tprobability\tlabel"
    assert [line.split("\t")[0] for line in lines[1:]] == ["5", "6"]


@pytest.mark.parametrize("arguments, message", [
    (["--model", "no/such/model", "--question1", "a", "--question2", "b"],
     "no/such/model: no such model directory"),
    (["--question1", "only one question"], "give --question1 and --question2"),
    (["--question1", "a", "--question2", "b", "--input", "x.tsv"], "not both"),
])
def test_predict_refuses_bad_arguments(workspace: Path, capsys, arguments, message):
    if "--model" not in arguments:
        arguments = ["--model", str(workspace / "serving" / "qqp"), *arguments]
    assert cli.main(["predict", *arguments]) == cli.EXIT_BAD_INPUT
    assert message in capsys.readouterr().err


def test_evaluate_needs_labels(workspace: Path, tmp_path: Path, capsys):
    unlabeled = write_tsv(tmp_path / "test.tsv", ["7\tIs it?\tIs it so?"],
                          header="id\tquestion1\tquestion2\n")
    assert cli.main(["evaluate", "--model", str(workspace / "serving" / "qqp"),
                     "--input", str(unlabeled)]) == cli.EXIT_BAD_INPUT
    assert "unlabeled GLUE test file" in capsys.readouterr().err


def test_html_report_of_the_latest_run(workspace: Path, capsys):
    from components.features import OVERLAP_BUCKETS  # pylint: disable=import-outside-toplevel

    output = workspace / "report" / "report.html"
    assert cli.main(["report", "--metadata", str(workspace / "md.sqlite"),
                     "--output", str(output)]) == 0
    assert str(output) in capsys.readouterr().out
    page = output.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert 'src="http' not in page and "<link" not in page and "@import" not in page
    assert "candidate" in page and "not fine-tuned (cosine)" in page
    assert "served model" in page
    # The latest run is the good candidate's rerun: blessed, already served as version 1.
    assert "BLESSED" in page and "NOT BLESSED" not in page
    assert page.count("<svg") == 2
    assert all(value in page for value in OVERLAP_BUCKETS)
    assert "<td>train</td>" in page and "<td>eval</td>" in page


def test_json_report_of_the_latest_run(workspace: Path, capsys):
    assert cli.main(["report", "--format", "json", "--metadata",
                     str(workspace / "md.sqlite")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary) == {"run_id", "blessed", "pushed_to", "verdict", "eval_examples",
                            "majority_accuracy", "models", "span", "train_spans", "warm_start",
                            "drift", "per_span", "comparisons", "serving_check"}
    # Data not laid out in spans: span 0, a window of itself, nothing to compare drift with.
    assert (summary["span"], summary["train_spans"]) == (0, [0])
    assert summary["drift"]["verdict"] == "passed" and summary["drift"]["features"] == {}
    assert summary["warm_start"]["from"] == "checkpoint"
    # The good candidate's rerun: blessed, compared with version 1, which it is.
    assert summary["blessed"] is True
    assert summary["pushed_to"] == str(workspace / "serving" / "qqp" / "1")
    assert summary["eval_examples"] == 64 and 0.5 <= summary["majority_accuracy"] <= 1.0
    assert ("not worse than the served model (version 1) by more than the margin"
            in summary["verdict"])
    # The same model as the served one: every paired difference and its interval are 0.
    served = [item for item in summary["comparisons"] if item["versus"] == "served"]
    assert served and all(item["difference"] == item["ci_low"] == item["ci_high"] == 0
                          for item in served), served
    assert [model["role"] for model in summary["models"]] == [
        "candidate", "not_fine_tuned", "served"]
    for model in summary["models"]:
        assert set(model["metrics"]) == {"accuracy", "f1", "precision", "recall", "roc_auc",
                                         "pr_auc"}
        assert (Path(model["uri"]) / "saved_model.pb").is_file()
    # `uri` is what `qqp-tfx evaluate --model` takes, and it gives the same accuracy.
    not_fine_tuned = summary["models"][1]
    assert cli.main(["evaluate", "--model", not_fine_tuned["uri"], "--input",
                     str(workspace / "data" / "dev.tsv")]) == 0
    evaluated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert evaluated["accuracy"] == pytest.approx(not_fine_tuned["metrics"]["accuracy"],
                                                  abs=1e-6)


# The gate scenario's worse candidate, last: the report tests above read the good rerun.
def _worse_run(workspace: Path, capsys) -> tuple[dict[str, run_results.NodeResult], str]:
    assert cli.main(["run", "--config", str(workspace / "worse.yaml"),
                     "--fail-if-not-blessed"]) == cli.EXIT_NOT_BLESSED
    return run_results.latest_run(str(workspace / "md.sqlite")), capsys.readouterr().out


@pytest.mark.slow
def test_worse_candidate_is_neither_blessed_nor_pushed(workspace: Path, capsys):
    run, output = _worse_run(workspace, capsys)
    assert not run["Trainer"].cached
    assert not _blessed(run)
    pushed = run["Pusher"].outputs["pushed_model"][0]
    assert pushed.custom_properties["pushed"].int_value == 0
    assert _versions(workspace) == ["1"]
    # Gated against both: the not-fine-tuned model, which it beats, and version 1.
    assert "/NotFineTunedModel/" in run["Evaluator"].inputs["baseline_model"][0].uri
    assert run["ServedModel"].outputs["model"][0].custom_properties[
        "served_version"].int_value == 1
    assert "served model" in output and "NOT BLESSED" in output
    verdict = output.split("NOT BLESSED: ")[1].splitlines()[0]
    # Rejected by the served comparison, beyond the noise (on 64 eval pairs its F1 lead over
    # the not-fine-tuned model is within the noise: that comparison does not decide it).
    assert ("vs the served model (version 1): worse by more than the margin (0.0000) with 95% "
            "confidence") in verdict, verdict
    assert "vs the served model (version 1)" in verdict, verdict


@pytest.mark.slow
def test_worse_candidate_resubmitted_with_its_trainer_reused_is_rejected_again(
        workspace: Path, capsys):
    run, output = _worse_run(workspace, capsys)
    assert run["Trainer"].cached
    assert not run["ServedModelEvaluator"].cached
    assert not _blessed(run)
    assert "vs the served model (version 1)" in output.split("NOT BLESSED: ")[1].splitlines()[0]
    assert _versions(workspace) == ["1"]


def test_runs_lists_every_run_of_the_workspace(workspace: Path, capsys):
    """`qqp-tfx runs` on real TFX records: the good run, its rerun (mostly cached), and
    with `make test-slow` the worse candidate's two runs."""
    metadata = str(workspace / "md.sqlite")
    assert cli.main(["runs", "--metadata", metadata, "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) >= 2
    first, rerun = listed[:2]
    assert all(run["status"] == "complete" and run["problems"] == [] for run in listed)
    assert first["cached_components"] == []
    assert {"QqpExampleGen", "StatisticsGen", "Transform", "Trainer", "Evaluator"} <= set(
        rerun["cached_components"])
    assert first["checkpoint"] == str(workspace / "tiny-bert") and first["family"] == "bert"
    assert first["data"] == str(workspace / "data")
    assert (first["train_pairs"], first["eval_pairs"]) == (gate_scenario.TRAIN_PAIRS,
                                                           gate_scenario.EVAL_PAIRS)
    assert (first["epochs"], first["learning_rate"], first["max_seq_length"]) == (
        5, 1e-3, gate_scenario.GOOD_MAX_SEQ_LENGTH)
    # The rerun's cached components show the figures of the run that computed them.
    for key in ("checkpoint", "family", "data", "train_pairs", "eval_pairs", "epochs",
                "learning_rate", "candidate_accuracy", "candidate_f1",
                "not_fine_tuned_accuracy", "not_fine_tuned_f1"):
        assert rerun[key] == first[key], key
    assert isinstance(first["candidate_accuracy"], float)
    assert (first["blessed"], first["pushed_version"], first["already_served"]) == (
        True, 1, False)
    assert (rerun["blessed"], rerun["pushed_version"], rerun["already_served"]) == (
        True, 1, True)
    # The newest run agrees with `report --format json`, which reads only that one.
    assert cli.main(["report", "--format", "json", "--metadata", metadata]) == 0
    report = json.loads(capsys.readouterr().out)
    latest = listed[-1]
    assert (latest["run_id"], latest["blessed"], latest["verdict"], latest["pushed_to"]) == (
        report["run_id"], report["blessed"], report["verdict"], report["pushed_to"])
    assert latest["candidate_accuracy"] == pytest.approx(report["models"][0]["metrics"]["accuracy"])
    assert latest["not_fine_tuned_f1"] == pytest.approx(report["models"][1]["metrics"]["f1"])
    assert cli.main(["runs", "--metadata", metadata]) == 0
    table = capsys.readouterr().out
    assert all(run["run_id"] in table for run in listed) and "tiny-bert" in table

