"""The QQP pipeline definition, shared by every runner."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tfx import v1 as tfx
from tfx.components import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2

from components import example_gen, serving_pusher
from components.baseline_resolver import LatestBlessedOrFallbackStrategy
from components.data_gate import DataValidationGate
from components.hyperparameters import Hyperparameters
from pipeline.config import PIPELINE_NAME, PipelineConfig
from pipeline.data_inputs import DataInput
from pipeline.evaluation import build_eval_config

SCHEMA_FILE = Path(__file__).resolve().parent / "schema" / "schema.pbtxt"
COMPONENTS_DIR = Path(__file__).resolve().parents[1] / "components"
# Beam workers in other processes (multi-processing DirectRunner, Dataflow, Flink, Spark)
# load the transform graph and the model, whose tensorflow_text ops exist only once
# tensorflow_text is imported: Beam imports its plugins first in every worker.
TEXT_OPS_BEAM_ARG = "--beam_plugins=tensorflow_text"


def code_fingerprint() -> str:
    """Hash of the component code run by Transform and Trainer.

    Those components get their code by import path, which TFX does not hash, so
    the fingerprint goes into their `custom_config`: edited code re-runs them
    instead of reusing stale cached outputs.
    """
    digest = hashlib.sha256()
    for path in sorted(COMPONENTS_DIR.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _example_gen(data_input: DataInput) -> FileBasedExampleGen:
    input_config = example_gen_pb2.Input(splits=[
        example_gen_pb2.Input.Split(name=name, pattern=pattern)
        for name, pattern in data_input.split_patterns.items()])
    output_config = None
    if data_input.hash_buckets:
        output_config = example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(
            splits=[example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=buckets)
                    for name, buckets in data_input.hash_buckets.items()]))
    return FileBasedExampleGen(
        input_base=data_input.input_base,
        input_config=input_config,
        output_config=output_config,
        custom_executor_spec=executor_spec.BeamExecutorSpec(example_gen.Executor),
    ).with_id("QqpExampleGen")


def _trainer(transform: tfx.components.Transform, hparams: Hyperparameters
             ) -> tfx.components.Trainer:
    return tfx.components.Trainer(
        run_fn="components.trainer.run_fn",
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=transform.outputs["post_transform_schema"],
        custom_config={**hparams.to_custom_config(), "code_fingerprint": code_fingerprint()})


def _baseline_resolver(trainer: tfx.components.Trainer,
                       baseline_trainer: tfx.components.Trainer,
                       query_resolvers_only: bool) -> tfx.dsl.Resolver:
    model = tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model)
    model_blessing = tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing)
    if query_resolvers_only:  # the latest blessed model; none (no gate on change) at first
        return tfx.dsl.Resolver(
            strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
            model=model, model_blessing=model_blessing).with_id("BaselineResolver")
    return tfx.dsl.Resolver(
        strategy_class=LatestBlessedOrFallbackStrategy,
        model=model,
        model_blessing=model_blessing,
        candidate=trainer.outputs["model"],
        fallback=baseline_trainer.outputs["model"],
    ).with_id("BaselineResolver")


def _beam_args(args: list[str]) -> list[str]:
    """The user's Beam args (none: in-process DirectRunner) and, with them, the text ops."""
    return [*args, TEXT_OPS_BEAM_ARG] if args and TEXT_OPS_BEAM_ARG not in args else list(args)


def _local_or_remote(path: str) -> str:
    """An absolute local path, or a remote URI (gs://, s3://) unchanged."""
    return path if "://" in path else os.path.abspath(path)


def create_pipeline(config: PipelineConfig, data_input: DataInput,
                    metadata_connection_config=None, *, schema_file: str | None = None,
                    query_resolvers_only: bool = False) -> tfx.dsl.Pipeline:
    """Builds the whole pipeline, from ingestion to the Pusher.

    For orchestrators that run the components in containers (`pipeline.kubeflow`):
    `schema_file` is the curated schema's path as the containers see it (default:
    this checkout's), and `query_resolvers_only` replaces the baseline resolver by
    TFX's LatestBlessedModelStrategy, the kind Kubeflow Pipelines v2 and Vertex AI
    can run.
    """
    examples_gen = _example_gen(data_input)
    schema_importer = tfx.components.ImportSchemaGen(schema_file=schema_file or str(SCHEMA_FILE))
    statistics_gen = tfx.components.StatisticsGen(
        examples=examples_gen.outputs["examples"], schema=schema_importer.outputs["schema"])
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"],
        schema=schema_importer.outputs["schema"])
    data_gate = DataValidationGate(anomalies=example_validator.outputs["anomalies"])
    transform = tfx.components.Transform(
        examples=examples_gen.outputs["examples"],
        schema=schema_importer.outputs["schema"],
        preprocessing_fn="components.transform.preprocessing_fn",
        custom_config={"checkpoint": config.checkpoint,
                       "max_seq_length": config.max_seq_length,
                       "code_fingerprint": code_fingerprint()})
    transform.add_upstream_node(data_gate)
    trainer = _trainer(transform, config.hyperparameters()).with_id("Trainer")
    baseline_trainer = _trainer(transform, config.baseline_hyperparameters()).with_id(
        "BaselineTrainer")
    baseline_resolver = _baseline_resolver(trainer, baseline_trainer, query_resolvers_only)
    evaluator = tfx.components.Evaluator(
        examples=examples_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline_resolver.outputs["model"],
        example_splits=["eval"],
        eval_config=build_eval_config(config.min_accuracy, config.min_f1,
                                      config.baseline_margin))
    pusher = tfx.components.Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(
                base_directory=_local_or_remote(config.model_serving_dir))),
        custom_executor_spec=executor_spec.ExecutorClassSpec(serving_pusher.Executor))
    return tfx.dsl.Pipeline(
        pipeline_name=PIPELINE_NAME,
        pipeline_root=config.pipeline_root,
        components=[examples_gen, schema_importer, statistics_gen, example_validator,
                    data_gate, transform, trainer, baseline_trainer, baseline_resolver,
                    evaluator, pusher],
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=_beam_args(config.beam_pipeline_args),
    )
