"""`qqp-tfx compile` (KFP v2 / Vertex AI spec) and Beam beyond one process.

The compile tests drive `pipeline.runners.vertex` and the CLI; the last test runs the
pipeline up to Transform with the multi-process DirectRunner, whose workers must
load the transform graph's tensorflow_text ops.
"""

import json
from pathlib import Path

import pytest
import yaml

from fixtures.tiny_bert import make_tiny_checkpoint
from pipeline import cli
from pipeline.config import ConfigError, PipelineConfig
from pipeline.data_inputs import resolve_data
from pipeline.pipeline import TEXT_OPS_BEAM_ARG, create_pipeline
from pipeline.results import run_results
from pipeline.runners.vertex import IMAGE_ROOT, TrainerResources, compile_pipeline
from tests.conftest import REPO_ROOT, sample_rows, write_tsv

IMAGE = "us-docker.pkg.dev/my-project/qqp/qqp-tfx:test"
TFX_COMMAND = ["python", "-m", "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"]
BEAM_ARGS = ["--runner=DataflowRunner", "--project=my-project", "--region=us-central1",
             "--temp_location=gs://my-bucket/tmp"]
BEAM_COMPONENTS = ("QqpExampleGen", "StatisticsGen", "Transform", "Evaluator",
                   "ServedModelEvaluator")
REMOTE = {"data": "gs://my-bucket/qqp", "pipeline_root": "gs://my-bucket/root",
          "serving_dir": "gs://my-bucket/serving"}


def _remote_config(**overrides) -> PipelineConfig:
    return PipelineConfig(**{**REMOTE, "beam_pipeline_args": list(BEAM_ARGS), **overrides})


def _executors(spec: dict) -> dict:
    return spec["pipelineSpec"]["deploymentSpec"]["executors"]


def _tasks(spec: dict) -> dict:
    return spec["pipelineSpec"]["root"]["dag"]["tasks"]


def _parameter(spec: dict, task: str, name: str):
    value = _tasks(spec)[task]["inputs"]["parameters"][name]["runtimeValue"]["constantValue"]
    return next(iter(value.values()))


def test_beam_args_and_the_text_ops_plugin_reach_every_beam_component():
    from tfx.dsl.components.base.executor_spec import BeamExecutorSpec  # pylint: disable=C0415

    def beam_args(config: PipelineConfig) -> dict:
        pipeline = create_pipeline(config, resolve_data(config.data, config.download_dir))
        return {component.id: component.executor_spec.beam_pipeline_args
                for component in pipeline.components
                if isinstance(component.executor_spec, BeamExecutorSpec)}

    multi_process = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    assert beam_args(PipelineConfig(beam_pipeline_args=multi_process)) == {
        name: multi_process + [TEXT_OPS_BEAM_ARG] for name in BEAM_COMPONENTS}
    # No Beam args: in-process DirectRunner, nothing added (and no TFX sdist built).
    assert beam_args(PipelineConfig()) == {name: [] for name in BEAM_COMPONENTS}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict:
    output = tmp_path_factory.mktemp("compiled") / "nested" / "qqp.json"
    resources = TrainerResources(cpu=8, memory=30, accelerator_type="NVIDIA_TESLA_T4")
    path = compile_pipeline(_remote_config(), "vertex", str(output), IMAGE,
                            trainer_resources=resources)
    assert path == str(output)
    return json.loads(output.read_text())


def test_spec_names_every_component_with_the_image_and_arguments(compiled):
    local = PipelineConfig()
    local_pipeline = create_pipeline(local, resolve_data(local.data, local.download_dir))
    component_ids = {component.id for component in local_pipeline.components}
    # Every node is one container task: no resolver, no MLMD query picks the baseline.
    assert set(_tasks(compiled)) == component_ids
    assert {kind for executor in _executors(compiled).values() for kind in executor} == {
        "container"}
    containers = {label[:-len("_executor")]: executor["container"]
                  for label, executor in _executors(compiled).items()}
    assert set(containers) == component_ids
    # The served model is read on every run: Vertex may never take it from its cache.
    assert {name for name, task in _tasks(compiled).items()
            if not task.get("cachingOptions", {}).get("enableCache")} == {"ServedModel"}
    assert "Trainer" in _tasks(compiled)["ServedModel"]["dependentTasks"]
    for name, container in containers.items():
        assert container["image"] == IMAGE, name
        assert container["command"] == TFX_COMMAND, name
    for name in BEAM_COMPONENTS:  # pipeline-level Beam args reach every Beam component
        args = containers[name]["args"]
        assert args[-len(BEAM_ARGS) - 1:] == BEAM_ARGS + [TEXT_OPS_BEAM_ARG], name
    assert compiled["runtimeConfig"]["gcsOutputDirectory"] == REMOTE["pipeline_root"]
    assert _parameter(compiled, "QqpExampleGen", "input_base") == REMOTE["data"]
    assert json.loads(_parameter(compiled, "Pusher", "push_destination")) == {
        "filesystem": {"base_directory": REMOTE["serving_dir"] + "/qqp"}}
    assert _parameter(compiled, "ImportSchemaGen", "schema_file") == (
        f"{IMAGE_ROOT}/pipeline/schema/schema.pbtxt")
    assert containers["Trainer"]["resources"] == {
        "cpuLimit": 8.0, "memoryLimit": 30.0,
        "accelerator": {"type": "NVIDIA_TESLA_T4", "count": "1"}}
    assert "resources" not in containers["NotFineTunedModel"]
    trainer_config = json.loads(_parameter(compiled, "Trainer", "custom_config"))
    assert trainer_config["distribution_strategy"] == "none"
    assert trainer_config["mixed_precision"] == "auto"


def test_spec_parses_strictly_as_the_pipeline_spec_proto(compiled):
    from google.protobuf import json_format  # pylint: disable=import-outside-toplevel
    from kfp.pipeline_spec import pipeline_spec_pb2  # pylint: disable=import-outside-toplevel

    # Strict: an unknown field (a misspelt cachingOptions key, say) raises here.
    spec = json_format.ParseDict(compiled["pipelineSpec"], pipeline_spec_pb2.PipelineSpec())
    assert spec.pipeline_info.name == "qqp-tfx"
    caching = {name: task.caching_options.enable_cache
               for name, task in spec.root.dag.tasks.items()}
    assert caching.pop("ServedModel") is False
    assert set(caching.values()) == {True}


def test_project_paths_map_into_the_image(tmp_path):
    checkpoint = REPO_ROOT / "data"  # any directory of the project stands in for one
    config = PipelineConfig(pipeline_root="gs://b/root", serving_dir="/gcs/b/serving",
                            checkpoint=str(checkpoint), distribution_strategy="mirrored",
                            mixed_precision="mixed_bfloat16")
    output = tmp_path / "spec.json"
    compile_pipeline(config, "vertex", str(output), IMAGE, image_root="/app")
    spec = json.loads(output.read_text())
    assert _parameter(spec, "QqpExampleGen", "input_base") == "/app/data/qqp_sample"
    assert _parameter(spec, "ImportSchemaGen", "schema_file") == "/app/pipeline/schema/schema.pbtxt"
    trainer_config = json.loads(_parameter(spec, "Trainer", "custom_config"))
    assert trainer_config["checkpoint"] == "/app/data"
    assert (trainer_config["distribution_strategy"], trainer_config["mixed_precision"]) == (
        "mirrored", "mixed_bfloat16")
    transform_config = json.loads(_parameter(spec, "Transform", "custom_config"))
    assert transform_config["checkpoint"] == "/app/data"
    assert json.loads(_parameter(spec, "Pusher", "push_destination"))["filesystem"][
        "base_directory"] == "/gcs/b/serving/qqp"
    # No Beam args: the steps run Beam in-process, without the plugin flag.
    args = _executors(spec)["Transform_executor"]["container"]["args"]
    assert not any(arg.startswith("--beam_plugins") for arg in args)


@pytest.mark.parametrize("target, overrides, message", [
    ("kubeflow", {}, "KubeflowDagRunner"),
    ("argo", {}, "expected one of"),
    ("vertex", {"pipeline_root": "artifacts/pipeline"}, "pipeline-root artifacts/pipeline"),
    ("vertex", {"serving_dir": "artifacts/serving"}, "serving-dir artifacts/serving"),
    ("vertex", {"data": "hf:nyu-mll/glue"}, "do not download Hugging Face datasets"),
    ("vertex", {"checkpoint": "/"}, "checkpoint /: this local path is not in the container"),
    ("vertex", {"until": "Transform"}, "until Transform"),
])
def test_settings_a_container_cannot_use_are_rejected(tmp_path, target, overrides, message):
    with pytest.raises(ConfigError, match=message):
        compile_pipeline(_remote_config(**overrides), target, str(tmp_path / "spec.json"), IMAGE)
    assert not (tmp_path / "spec.json").exists()


def test_compile_command_merges_config_file_and_options(tmp_path, capsys):
    config_file = tmp_path / "vertex.yaml"
    config_file.write_text(yaml.safe_dump({
        "data": "gs://from-file/qqp", "pipeline-root": "gs://from-file/root",
        "serving-dir": "gs://from-file/serving", "image": IMAGE,
        "beam-pipeline-args": ["--runner=DataflowRunner", "--project=from-file"],
        "trainer-accelerator-type": "NVIDIA_L4", "trainer-accelerator-count": 2,
        "mixed-precision": "mixed_float16"}))
    output = tmp_path / "out.json"
    assert cli.main(["compile", "--config", str(config_file), "--output", str(output),
                     "--pipeline-root", "gs://from-cli/root"]) == 0
    assert capsys.readouterr().out.strip() == str(output)
    spec = json.loads(output.read_text())
    assert spec["runtimeConfig"]["gcsOutputDirectory"] == "gs://from-cli/root"
    assert _parameter(spec, "QqpExampleGen", "input_base") == "gs://from-file/qqp"
    transform = _executors(spec)["Transform_executor"]["container"]
    assert transform["image"] == IMAGE
    assert transform["args"][-3:] == ["--runner=DataflowRunner", "--project=from-file",
                                      TEXT_OPS_BEAM_ARG]
    assert _executors(spec)["Trainer_executor"]["container"]["resources"] == {
        "accelerator": {"type": "NVIDIA_L4", "count": "2"}}
    assert json.loads(_parameter(spec, "Trainer", "custom_config"))["mixed_precision"] == (
        "mixed_float16")


@pytest.mark.slow
def test_multi_process_direct_runner_runs_the_in_graph_tokenizer(tmp_path: Path):
    """ExampleGen to Transform in 2 worker processes; the workers run the tf.text graph."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from components.text.tokenization import load_tokenizer

    data = tmp_path / "data"
    data.mkdir()
    write_tsv(data / "train.tsv", sample_rows("train.tsv", 45))
    write_tsv(data / "dev.tsv", sample_rows("dev.tsv", 15))
    checkpoint = make_tiny_checkpoint(tmp_path / "tiny-bert")
    assert cli.main([
        "run", "--data", str(data), "--pipeline-root", str(tmp_path / "pipeline"),
        "--metadata", str(tmp_path / "md.sqlite"), "--checkpoint", str(checkpoint),
        "--max-seq-length", "32", "--until", "Transform", "--beam-pipeline-args",
        "--direct_running_mode=multi_processing --direct_num_workers=2"]) == 0
    run = run_results.latest_run(str(tmp_path / "md.sqlite"))
    assert "Transform" in run and "Trainer" not in run
    examples = run["Transform"].output_uri("transformed_examples")
    records = tf.data.TFRecordDataset(tf.io.gfile.glob(f"{examples}/Split-train/*"),
                                      compression_type="GZIP")
    produced = sorted(tuple(tf.train.Example.FromString(record.numpy()).features
                            .feature["input_ids$ragged_values"].int64_list.value)
                      for record in records)
    rows = [line.split("\t") for line in sample_rows("train.tsv", 45)]
    expected = load_tokenizer(str(checkpoint)).encode_pairs(
        tf.constant([row[3] for row in rows]), tf.constant([row[4] for row in rows]),
        32)["input_ids"]
    assert produced == sorted(tuple(ids) for ids in expected.numpy().tolist())


def test_compile_command_line(tmp_path, capsys):
    """Each `qqp-tfx compile` option lands in its own field of its own task or executor."""
    output = tmp_path / "pipeline.json"
    beam_args = ["--runner=DataflowRunner", "--project=p"]
    hub_id = "google/bert_uncased_L-2_H-128_A-2"  # not checked here: the steps download it
    assert cli.main([
        "compile", "--target", "vertex", "--output", str(output), "--image", IMAGE,
        "--image-root", "/app", "--pipeline-root", "gs://b/root", "--data", "gs://b/qqp",
        "--serving-dir", "gs://b/serving", "--checkpoint", hub_id,
        "--beam-pipeline-args", " ".join(beam_args), "--distribution-strategy", "mirrored",
        "--mixed-precision", "mixed_float16", "--trainer-cpu", "4", "--trainer-memory", "16",
        "--trainer-accelerator-type", "NVIDIA_TESLA_T4", "--trainer-accelerator-count", "2",
        "--no-cache"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(output)
    assert f"not checking checkpoint {hub_id} here" in captured.err
    spec = json.loads(output.read_text())
    containers = {label[:-len("_executor")]: executor["container"]
                  for label, executor in _executors(spec).items()}
    assert {name for name, container in containers.items() if container["image"] == IMAGE} == (
        set(containers))
    assert spec["runtimeConfig"]["gcsOutputDirectory"] == "gs://b/root"
    assert _parameter(spec, "QqpExampleGen", "input_base") == "gs://b/qqp"
    assert _parameter(spec, "ImportSchemaGen", "schema_file") == "/app/pipeline/schema/schema.pbtxt"
    assert json.loads(_parameter(spec, "Pusher", "push_destination")) == {
        "filesystem": {"base_directory": "gs://b/serving/qqp"}}
    for name in BEAM_COMPONENTS:
        assert containers[name]["args"][-3:] == [*beam_args, TEXT_OPS_BEAM_ARG], name
    trainer = json.loads(_parameter(spec, "Trainer", "custom_config"))
    assert (trainer["checkpoint"], trainer["distribution_strategy"],
            trainer["mixed_precision"]) == (hub_id, "mirrored", "mixed_float16")
    assert json.loads(_parameter(spec, "Transform", "custom_config"))["checkpoint"] == hub_id
    not_fine_tuned = json.loads(_parameter(spec, "NotFineTunedModel", "custom_config"))
    assert (not_fine_tuned["distribution_strategy"], not_fine_tuned["mixed_precision"]) == (
        "none", "auto")  # the Trainer's settings only
    assert {name for name, container in containers.items() if "resources" in container} == {
        "Trainer"}
    assert containers["Trainer"]["resources"] == {
        "cpuLimit": 4.0, "memoryLimit": 16.0,
        "accelerator": {"type": "NVIDIA_TESLA_T4", "count": "2"}}
    assert {name for name, task in _tasks(spec).items()
            if task.get("cachingOptions", {}).get("enableCache")} == set()
