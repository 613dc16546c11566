"""The whole pipeline under LocalDagRunner with a tiny random BERT on ~200 pairs.

One module-scoped workspace is shared by three runs: a good candidate (gate
opened with floors 0 so the tiny model can pass), the same run again (all
cached, nothing new pushed), and a broken candidate (learning rate 0) that must
be neither blessed nor pushed.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from pipeline import cli, run_results
from tests.conftest import sample_rows, write_tsv
from tests.tiny_bert import make_tiny_checkpoint

ALL_COMPONENTS = {"QqpExampleGen", "ImportSchemaGen", "StatisticsGen", "ExampleValidator",
                  "DataValidationGate", "Transform", "Trainer", "BaselineTrainer",
                  "Evaluator", "Pusher"}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("e2e")
    data = root / "data"
    data.mkdir()
    write_tsv(data / "train.tsv", sample_rows("train.tsv", 160))
    write_tsv(data / "dev.tsv", sample_rows("dev.tsv", 48))
    config = {"data": str(data), "checkpoint": str(make_tiny_checkpoint(root / "tiny-bert")),
              "pipeline-root": str(root / "pipeline"), "metadata": str(root / "md.sqlite"),
              "serving-dir": str(root / "serving"), "epochs": 1, "batch-size": 16,
              "max-seq-length": 64, "learning-rate": 1e-3,
              "min-accuracy": 0.0, "min-f1": 0.0, "baseline-margin": 1.0}
    (root / "good.yaml").write_text(yaml.safe_dump(config))
    broken = {**config, "learning-rate": 0.0, "min-accuracy": 0.7, "min-f1": 0.6,
              "baseline-margin": 0.0}
    (root / "broken.yaml").write_text(yaml.safe_dump(broken))
    return root


def _run(workspace: Path, config_name: str) -> dict[str, run_results.NodeResult]:
    assert cli.main(["run", "--config", str(workspace / config_name)]) == 0
    return run_results.latest_run(str(workspace / "md.sqlite"))


def _blessed(run) -> bool:
    return run["Evaluator"].outputs["blessing"][0].custom_properties["blessed"].int_value == 1


def test_good_candidate_is_blessed_and_pushed(workspace: Path, capsys):
    run = _run(workspace, "good.yaml")
    assert ALL_COMPONENTS <= set(run)
    assert not any(result.cached for result in run.values())
    assert _blessed(run)
    assert "BaselineTrainer" in run["Evaluator"].inputs["baseline_model"][0].uri
    versions = sorted(path.name for path in (workspace / "serving" / "qqp").iterdir())
    assert versions == ["1"]
    version_dir = workspace / "serving" / "qqp" / "1"
    assert (version_dir / "saved_model.pb").is_file()
    assert (version_dir / "variables").is_dir()
    assert (version_dir / "assets" / "vocab.txt").is_file()
    output = capsys.readouterr().out
    assert "fine-tuned candidate" in output and "BLESSED" in output
    assert f"pushed to: {version_dir}" in output


def test_pushed_model_serves_raw_text_in_a_fresh_process(workspace: Path):
    script = textwrap.dedent("""
        import json, sys
        import tensorflow as tf
        import tensorflow_text  # noqa: F401
        model = tf.saved_model.load(sys.argv[1])
        assert set(model.signatures) == {"serving_default", "predict_text", "transform_features"}
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


def test_unchanged_rerun_is_cached_and_pushes_nothing(workspace: Path):
    run = _run(workspace, "good.yaml")
    for component in ("QqpExampleGen", "Transform", "Trainer", "BaselineTrainer", "Evaluator"):
        assert run[component].cached, component
    assert sorted(path.name for path in (workspace / "serving" / "qqp").iterdir()) == ["1"]


def test_broken_candidate_is_neither_blessed_nor_pushed(workspace: Path, capsys):
    run = _run(workspace, "broken.yaml")
    assert not run["Trainer"].cached
    assert not _blessed(run)
    pushed = run["Pusher"].outputs["pushed_model"][0]
    assert pushed.custom_properties["pushed"].int_value == 0
    assert sorted(path.name for path in (workspace / "serving" / "qqp").iterdir()) == ["1"]
    # The baseline is now the model blessed in the first run.
    assert "/Trainer/" in run["Evaluator"].inputs["baseline_model"][0].uri
    output = capsys.readouterr().out
    assert "NOT BLESSED" in output and "below the floor" in output


def test_predict_and_evaluate_commands(workspace: Path, tmp_path: Path, capsys):
    model_base = workspace / "serving" / "qqp"
    labeled = workspace / "data" / "dev.tsv"
    assert cli.main(["evaluate", "--model", str(model_base), "--input", str(labeled)]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["n"] == 48
    assert set(metrics) == {"accuracy", "f1", "precision", "recall", "roc_auc", "n"}
    assert all(0.0 <= metrics[name] <= 1.0 for name in ("accuracy", "f1", "roc_auc"))

    unlabeled = write_tsv(tmp_path / "test.tsv", ["7\tIs it?\tIs it so?", "8\tA?\tB?"],
                          header="id\tquestion1\tquestion2\n")
    output = tmp_path / "scores.tsv"
    assert cli.main(["predict", "--model", str(model_base / "1"), "--input", str(unlabeled),
                     "--output", str(output)]) == 0
    lines = output.read_text().splitlines()
    assert lines[0] == "id\tprobability\tlabel"
    assert [line.split("\t")[0] for line in lines[1:]] == ["7", "8"]
    for line in lines[1:]:
        probability, label = float(line.split("\t")[1]), int(line.split("\t")[2])
        assert 0.0 <= probability <= 1.0 and label == int(probability >= 0.5)


def test_evaluate_needs_labels(workspace: Path, tmp_path: Path, capsys):
    unlabeled = write_tsv(tmp_path / "test.tsv", ["7\tIs it?\tIs it so?"],
                          header="id\tquestion1\tquestion2\n")
    assert cli.main(["evaluate", "--model", str(workspace / "serving" / "qqp"),
                     "--input", str(unlabeled)]) == cli.EXIT_BAD_INPUT
    assert "unlabeled GLUE test file" in capsys.readouterr().err


def test_html_report_of_the_latest_run(workspace: Path, capsys):
    from components.transform import OVERLAP_BUCKETS  # pylint: disable=import-outside-toplevel

    output = workspace / "report" / "report.html"
    assert cli.main(["report", "--metadata", str(workspace / "md.sqlite"),
                     "--output", str(output)]) == 0
    assert str(output) in capsys.readouterr().out
    page = output.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert 'src="http' not in page and "<link" not in page and "@import" not in page
    assert "candidate" in page and "baseline" in page
    assert "NOT BLESSED" in page  # the latest run is the broken candidate's
    assert page.count("<svg") == 2
    assert all(value in page for value in OVERLAP_BUCKETS)
    assert "<td>train</td>" in page and "<td>eval</td>" in page
