"""`qqp-tfx run-compiled`: the compiled Vertex AI spec, executed here task by task.

The gate scenario of `tests.end_to_end.gate_scenario` on the compiled spec, with the verdicts
LocalDagRunner gives in `tests/end_to_end/test_pipeline_e2e.py`: a good candidate is blessed and
pushed as version 1; a worse one is rejected; submitted again with its Trainer reused
from the cache, it is rejected again. Data, checkpoint, pipeline root and serving
directory are Cloud Storage locations in the spec, all under one local root here.

Every task is a process that imports TensorFlow and TFX (about 16 s each here), so
the three submissions take about 12 minutes: `make test` runs the first one (the
whole spec, end to end, with a push), and `make test-slow`, which CI also runs, the
two later ones (marked `slow`), like the same scenario's in `test_pipeline_e2e.py`.
"""

import json
from pathlib import Path

import pytest
import yaml

from fixtures.tiny_bert import make_tiny_checkpoint
from pipeline import cli
from pipeline.runners.dry_run.run import STATE_DIR, CompiledRun, JobResult, summary_lines
from pipeline.runners.dry_run.spec import PathMap, UnsupportedSpecError, load_spec
from tests.end_to_end import gate_scenario

IMAGE = "us-docker.pkg.dev/my-project/qqp/qqp-tfx:test"
ENTRYPOINT_LINE = "Starting executor"  # logged by TFX's kubeflow_v2_run_executor
ALL_TASKS = {"QqpExampleGen", "ImportSchemaGen", "StatisticsGen", "ExampleValidator",
             "DataValidationGate", "DriftGate", "TrainingWindow", "WarmStart", "Transform",
             "Trainer", "NotFineTunedModel", "Evaluator",
             "ServedModel", "ServedModelEvaluator", "BlessingGate", "ServingCheck", "Pusher"}
GATE_TASKS = {"ServedModel", "ServedModelEvaluator", "BlessingGate", "ServingCheck", "Pusher"}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A local root holding bucket `b` (data, checkpoint) and the two compiled specs."""
    root = tmp_path_factory.mktemp("compiled")
    gate_scenario.write_data(root / "local" / "b" / "qqp")
    make_tiny_checkpoint(root / "local" / "b" / "tiny-bert")
    config = {"data": "gs://b/qqp", "checkpoint": "gs://b/tiny-bert",
              "pipeline-root": "gs://b/root", "serving-dir": "/gcs/b/serving",
              "image": IMAGE, **gate_scenario.TRAINING}
    for name, max_seq_length in (("good", gate_scenario.GOOD_MAX_SEQ_LENGTH),
                                 ("worse", gate_scenario.WORSE_MAX_SEQ_LENGTH)):
        (root / f"{name}.yaml").write_text(yaml.safe_dump(
            {**config, "max-seq-length": max_seq_length}))
    return root


def _compile(workspace: Path, name: str) -> Path:
    """The PipelineJob JSON of `<name>.yaml` (compiled once)."""
    spec = workspace / f"{name}.json"
    if not spec.exists():
        assert cli.main(["compile", "--config", str(workspace / f"{name}.yaml"),
                         "--output", str(spec)]) == 0
    return spec


def _submit(workspace: Path, name: str) -> JobResult:
    local_root = str(workspace / "local")
    return CompiledRun(load_spec(str(_compile(workspace, name)), PathMap(local_root)),
                       local_root).run()


def _versions(workspace: Path) -> list[str]:
    base = workspace / "local" / "b" / "serving" / "qqp"
    return sorted(path.name for path in base.iterdir() if path.name.isdigit())


def _ran(job: JobResult) -> set[str]:
    return {name for name, result in job.tasks.items() if not result.cached}


def _verdict(job: JobResult) -> tuple[bool, str]:
    metadata = job.output("BlessingGate", "blessing")["metadata"]
    return metadata["blessed"] == 1, "; ".join(json.loads(metadata["verdict"]))


def test_first_submission_runs_every_task_through_the_entrypoint_and_pushes(
        workspace: Path, capsys):
    assert cli.main(["run-compiled", str(_compile(workspace, "good")),
                     "--local-root", str(workspace / "local")]) == 0
    output = capsys.readouterr().out
    version_dir = workspace / "local" / "b" / "serving" / "qqp" / "1"
    assert ("BLESSED: clears the floors and beats the not-fine-tuned model on accuracy and F1; "
            "no model is served yet") in output
    assert "serving check: passed: loads" in output  # the check runs in the compiled spec
    assert f"pushed to: {version_dir}" in output
    assert (version_dir / "saved_model.pb").is_file()
    assert (version_dir / "assets.extra" / "model_card.md").is_file()
    assert _versions(workspace) == ["1"]
    # One process per task, each through TFX's container entrypoint, each with its own log.
    logs = list((workspace / "local" / STATE_DIR / "logs").glob("*/*.executor.log"))
    assert {log.name.split(".")[0] for log in logs} == ALL_TASKS
    assert all(ENTRYPOINT_LINE in log.read_text() for log in logs)
    assert list((workspace / "local" / STATE_DIR / "logs").glob("*/QqpExampleGen.preCacheCheck.log"))
    # Every output lives under the mapped pipeline root.
    trainer = json.loads(next((workspace / "local" / STATE_DIR / "jobs").glob("*.json"))
                         .read_text())["Trainer"]
    assert trainer["outputs"]["model"][0]["uri"].startswith(str(workspace / "local" / "b" / "root"))


@pytest.mark.slow
def test_worse_candidate_is_rejected_against_the_served_version(workspace: Path):
    job = _submit(workspace, "worse")
    assert {"Transform", "Trainer", "NotFineTunedModel", "Evaluator"} | GATE_TASKS <= _ran(job)
    assert "ImportSchemaGen" not in _ran(job)  # reused from the cache
    blessed, verdict = _verdict(job)
    assert not blessed
    # Rejected by the served comparison, beyond the noise (on 64 eval pairs its F1 lead over
    # the not-fine-tuned model is within the noise: that comparison does not decide it).
    assert ("vs the served model (version 1): worse by more than the margin (0.0000) with 95% "
            "confidence") in verdict, verdict
    assert "vs the served model (version 1)" in verdict, verdict
    assert "pushed: nothing" in summary_lines(job)
    assert _versions(workspace) == ["1"]


@pytest.mark.slow
def test_resubmitted_worse_candidate_reuses_its_trainer_and_is_rejected_again(workspace: Path):
    job = _submit(workspace, "worse")
    assert _ran(job) == GATE_TASKS  # the snapshot of the served model is never cached
    assert job.tasks["Trainer"].cached
    blessed, verdict = _verdict(job)
    assert not blessed and "vs the served model (version 1)" in verdict, verdict
    assert _versions(workspace) == ["1"]


def _spec(tmp_path: Path, executor: dict, args: list[str] | None = None,
          task: dict | None = None) -> str:
    """A one-task PipelineJob whose executor is `executor` (container args `args`)."""
    if "container" in executor and args is not None:
        executor["container"]["args"] = args
    task = {"componentRef": {"name": "T"}, "taskInfo": {"name": "T"}, **(task or {})}
    job = {"runtimeConfig": {"gcsOutputDirectory": "gs://b/root"},
           "pipelineSpec": {"pipelineInfo": {"name": "p"},
                            "root": {"dag": {"tasks": {"T": task}}},
                            "components": {"T": {"executorLabel": "T_executor"}},
                            "deploymentSpec": {"executors": {"T_executor": executor}}}}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(job))
    return str(path)


CONTAINER = {"container": {"image": IMAGE, "command": ["python", "-m", "x"]}}


@pytest.mark.parametrize("executor, args, task, message", [
    ({"resolver": {"outputArtifactQueries": {}}}, None, None, "executor kind resolver"),
    ({"importer": {"artifactUri": {}}}, None, None, "executor kind importer"),
    (CONTAINER, ["{{$.inputs.parameters['p'].json_escape[0]}}"], None, "json_escape"),
    (CONTAINER, ["{{$.pipeline_unknown}}"], None, "placeholder {{$.pipeline_unknown}}"),
    (CONTAINER, ["--runner=DataflowRunner"], None, "Beam --runner=DataflowRunner"),
    (CONTAINER, ["--runner", "FlinkRunner"], None, "Beam --runner=FlinkRunner"),
    (CONTAINER, [], {"triggerPolicy": {"condition": "x"}}, "triggerPolicy is not supported"),
    (CONTAINER, [], {"retryPolicy": {"maxRetryCount": 2}}, "retryPolicy is not supported"),
])
def test_what_cannot_run_here_stops_with_its_name(tmp_path: Path, executor, args, task,
                                                  message):
    spec = _spec(tmp_path, json.loads(json.dumps(executor)), args, task)
    with pytest.raises(UnsupportedSpecError, match="task T: .*" + message.replace(
            "[", r"\[").replace("{", r"\{").replace("$", r"\$")):
        load_spec(spec, PathMap("/r"))


def test_a_spec_compiled_from_another_layout_of_the_code_is_refused_before_any_task(
        tmp_path: Path):
    """A spec compiled before the components moved into packages names executors this
    checkout does not have: refused whole, naming them, rather than failing half-way."""
    old = ["--executor_class_path", "components.serving_pusher.Executor",
           "--json_serialized_invocation_args", "{{$}}"]
    with pytest.raises(UnsupportedSpecError, match=r"names components\.serving_pusher\.Executor"
                       r", which this checkout does not have; nothing was run\. Compile it "):
        load_spec(_spec(tmp_path, json.loads(json.dumps(CONTAINER)), old), PathMap("/r"))
    missing_name = ["--executor_class_path", "components.serving.pusher.NoSuchExecutor"]
    with pytest.raises(UnsupportedSpecError, match=r"names components\.serving\.pusher\.NoSuch"):
        load_spec(_spec(tmp_path, json.loads(json.dumps(CONTAINER)), missing_name),
                  PathMap("/r"))
    current = ["--executor_class_path", "components.serving.pusher.Executor",
               "--json_serialized_invocation_args", "{{$}}",
               "--tfx.components.trainer.executor.GenericExecutor",  # TFX's own: not ours
               "components.evaluation.gate.BlessingGate_Executor",  # made by @component
               "components.features"]  # a module
    assert list(load_spec(_spec(tmp_path, json.loads(json.dumps(CONTAINER)), current),
                          PathMap("/r")).tasks) == ["T"]


def test_cloud_storage_and_image_paths_map_to_this_machine():
    from pipeline.config import REPO_ROOT  # pylint: disable=import-outside-toplevel

    path_map = PathMap("/local", image_root="/pipeline")
    assert path_map.rewrite("gs://b/p") == "/local/b/p"
    assert path_map.rewrite("--temp_location=gs://b/tmp") == "--temp_location=/local/b/tmp"
    assert path_map.rewrite('{"base_directory": "/gcs/b/serving/qqp"}') == (
        '{"base_directory": "/local/b/serving/qqp"}')
    assert path_map.rewrite("/pipeline/data/qqp_sample") == f"{REPO_ROOT}/data/qqp_sample"
    # Not at the start of a path: left alone.
    assert path_map.rewrite("/tmp/gcs/x gs:/b /data/pipeline/y") == (
        "/tmp/gcs/x gs:/b /data/pipeline/y")
