"""The QQP pipeline definition, shared by every runner."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tfx import v1 as tfx
from tfx.components import FileBasedExampleGen
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import example_gen_pb2, range_config_pb2

from components.data import example_gen
from components.data.validation_gate import DataValidationGate
from components.data.window import TrainingWindow
from components.drift.gate import DriftGate
from components.evaluation.eval_configs import not_fine_tuned_eval_config, served_model_eval_config
from components.evaluation.evaluator import Evaluator
from components.evaluation.gate import BlessingGate
from components.evaluation.served_model import ServedModel
from components.evaluation.served_model_evaluator import ServedModelEvaluator
from components.serving.check_component import ServingCheck
from components.serving.pusher import ServingPusher
from components.training.hyperparameters import Hyperparameters
from components.training.warm_start_component import WarmStart
from pipeline.config import PIPELINE_NAME, PipelineConfig
from pipeline.data_inputs import DataInput
from pipeline.fingerprint import PROJECT_PACKAGES, code_fingerprint, file_fingerprint

SCHEMA_FILE = Path(__file__).resolve().parent / "schema" / "schema.pbtxt"
# Beam workers in other processes (multi-processing DirectRunner, Dataflow, Flink, Spark)
# load the transform graph and the model, whose tensorflow_text ops exist only once
# tensorflow_text is imported: Beam imports its plugins first in every worker.
TEXT_OPS_BEAM_ARG = "--beam_plugins=tensorflow_text"
# Nodes that read state ML Metadata does not track (the serving directory): every runner
# must execute them on every run, never reuse their outputs from its cache.
UNCACHED_NODES = ("ServedModel",)
# The execution property holding a node's code fingerprint (part of TFX's cache key).
FINGERPRINT_PROPERTY = "code_fingerprint"
SPAN_REGISTRY = "spans"  # under the pipeline root: where each ingested span's examples are


def code_module(node: base_component.BaseComponent) -> str | None:
    """The project module whose code `node` runs: its `preprocessing_fn` or `run_fn` module,
    else its executor's module (None for TFX's own executors)."""
    for key in ("preprocessing_fn", "run_fn"):
        if node.exec_properties.get(key):
            return node.exec_properties[key].rsplit(".", 1)[0]
    module = getattr(node.executor_spec, "executor_class", type(None)).__module__
    return module if module.split(".")[0] in PROJECT_PACKAGES else None


def _fingerprinted(node: base_component.BaseComponent) -> base_component.BaseComponent:
    """`node` with the fingerprint of its code (`code_module`) in its execution properties.

    TFX's cache key holds a node's execution properties but not the code of its
    executor: with the fingerprint there, editing the code (or a project module it
    imports) re-runs the node, and so its dependents, and nothing else. Transform and
    the Trainers carry theirs in `custom_config` instead, where their code reads it
    (the Trainer keys its epoch backups with it).
    """
    module = code_module(node)
    if module is None:
        raise ValueError(f"{node.id} runs no project code: nothing to fingerprint")
    fingerprint = code_fingerprint(module)
    custom_config = node.exec_properties.get("custom_config")
    if custom_config is None:
        node.exec_properties[FINGERPRINT_PROPERTY] = fingerprint
    else:  # Transform and the Trainers: the JSON their code receives
        config = {**(json.loads(custom_config) or {}), FINGERPRINT_PROPERTY: fingerprint}
        node.exec_properties["custom_config"] = json.dumps(config, sort_keys=True)
    return node


def _example_gen(data_input: DataInput) -> FileBasedExampleGen:
    input_config = example_gen_pb2.Input(splits=[
        example_gen_pb2.Input.Split(name=name, pattern=pattern)
        for name, pattern in data_input.split_patterns.items()])
    output_config = None
    if data_input.hash_buckets:
        output_config = example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(
            splits=[example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=buckets)
                    for name, buckets in data_input.hash_buckets.items()]))
    range_config = None
    if data_input.span is not None:
        range_config = range_config_pb2.RangeConfig(static_range=range_config_pb2.StaticRange(
            start_span_number=data_input.span, end_span_number=data_input.span))
    return _fingerprinted(FileBasedExampleGen(
        input_base=data_input.input_base,
        input_config=input_config,
        output_config=output_config,
        range_config=range_config,
        custom_executor_spec=executor_spec.BeamExecutorSpec(example_gen.Executor),
    ).with_id("QqpExampleGen"))


def _trainer(transform: tfx.components.Transform, hparams: Hyperparameters, run_fn: str,
             base_model=None) -> tfx.components.Trainer:
    return _fingerprinted(tfx.components.Trainer(
        run_fn=run_fn,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        base_model=base_model,
        custom_config=hparams.to_custom_config()))


def _beam_args(args: list[str]) -> list[str]:
    """The user's Beam args (none: in-process DirectRunner) and, with them, the text ops."""
    return [*args, TEXT_OPS_BEAM_ARG] if args and TEXT_OPS_BEAM_ARG not in args else list(args)


def _local_or_remote(path: str) -> str:
    """An absolute local path, or a remote URI (gs://, s3://) unchanged."""
    return path if "://" in path else os.path.abspath(path)


def create_pipeline(config: PipelineConfig, data_input: DataInput,
                    metadata_connection_config=None, *, schema_file: str | None = None
                    ) -> tfx.dsl.Pipeline:
    """Builds the whole pipeline, from ingestion to the Pusher.

    The same graph runs on every runner; each runner must switch the cache off for
    `UNCACHED_NODES`. For orchestrators that run the components in containers
    (`pipeline.runners.vertex`), `schema_file` is the curated schema's path as the
    containers see it (default: this checkout's).
    """
    examples_gen = _example_gen(data_input)
    schema_importer = tfx.components.ImportSchemaGen(schema_file=schema_file or str(SCHEMA_FILE))
    # The cache key holds the schema's path, not its content: an edited schema must re-import.
    schema_importer.exec_properties["schema_fingerprint"] = file_fingerprint(SCHEMA_FILE)
    statistics_gen = tfx.components.StatisticsGen(
        examples=examples_gen.outputs["examples"], schema=schema_importer.outputs["schema"])
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"],
        schema=schema_importer.outputs["schema"])
    data_gate = _fingerprinted(
        DataValidationGate(anomalies=example_validator.outputs["anomalies"]))
    registry_dir = os.path.join(_local_or_remote(config.pipeline_root), SPAN_REGISTRY)
    serving_dir = _local_or_remote(config.model_serving_dir)
    drift_gate = _fingerprinted(DriftGate(
        examples=examples_gen.outputs["examples"], registry_dir=registry_dir,
        checkpoint=config.checkpoint, max_seq_length=config.max_seq_length,
        thresholds=json.dumps(config.drift_thresholds, sort_keys=True),
        accept_drift=int(config.accept_drift)))
    window = _fingerprinted(TrainingWindow(
        span_examples=examples_gen.outputs["examples"], train_window=config.train_window,
        registry_dir=registry_dir))
    # Only a span that passed both gates is registered. The drift gate needs ExampleGen's
    # output alone: orchestrators that run steps side by side run it beside the statistics.
    window.add_upstream_node(data_gate)
    window.add_upstream_node(drift_gate)
    examples = window.outputs["examples"]
    hparams = config.hyperparameters()
    warm_start = _fingerprinted(WarmStart(
        examples=examples, serving_dir=serving_dir,
        mode=config.warm_start, checkpoint=config.checkpoint,
        max_seq_length=config.max_seq_length, pooling=hparams.pooling,
        pair_order=hparams.pair_order))
    transform = _fingerprinted(tfx.components.Transform(
        examples=examples,
        schema=schema_importer.outputs["schema"],
        preprocessing_fn="components.text.preprocessing.preprocessing_fn",
        disable_statistics=True,  # nothing reads Transform's statistics
        custom_config={"checkpoint": config.checkpoint,
                       "max_seq_length": config.max_seq_length}))
    trainer = _trainer(transform, hparams, "components.training.trainer.run_fn",
                       base_model=warm_start.outputs["model"]).with_id("Trainer")
    not_fine_tuned = _trainer(transform, config.not_fine_tuned_hyperparameters(),
                              "components.training.not_fine_tuned.run_fn"
                              ).with_id("NotFineTunedModel")
    evaluator = _fingerprinted(Evaluator(
        examples=examples,
        model=trainer.outputs["model"],
        baseline_model=not_fine_tuned.outputs["model"],
        example_splits=["eval"],
        eval_config=not_fine_tuned_eval_config(config.min_accuracy, config.min_f1),
    ).with_id("Evaluator"))
    served_model = _fingerprinted(ServedModel(serving_dir=serving_dir).with_id("ServedModel"))
    # Read once the candidate exists, so the snapshot is as recent as it can be.
    served_model.add_upstream_node(trainer)
    served_model_evaluator = _fingerprinted(ServedModelEvaluator(
        examples=examples,
        model=trainer.outputs["model"],
        baseline_model=served_model.outputs["model"],
        example_splits=["eval"],
        eval_config=served_model_eval_config(),
    ).with_id("ServedModelEvaluator"))
    blessing_gate = _fingerprinted(BlessingGate(
        model=trainer.outputs["model"],
        not_fine_tuned_model=not_fine_tuned.outputs["model"],
        served_model=served_model.outputs["model"],
        examples=examples,
        not_fine_tuned_evaluation=evaluator.outputs["evaluation"],
        not_fine_tuned_blessing=evaluator.outputs["blessing"],
        served_model_evaluation=served_model_evaluator.outputs["evaluation"],
        served_model_blessing=served_model_evaluator.outputs["blessing"],
        baseline_margin=config.baseline_margin,
    ).with_id("BlessingGate"))
    # The candidate loaded as TF Serving loads it, timed against the served version.
    serving_check = _fingerprinted(ServingCheck(
        model=trainer.outputs["model"], served_model=served_model.outputs["model"],
        examples=examples_gen.outputs["examples"],  # the warm-up requests' eval pairs
        model_blessing=blessing_gate.outputs["blessing"],
        max_latency_ratio=config.max_latency_ratio, max_memory_ratio=config.max_memory_ratio,
    ).with_id("ServingCheck"))
    pusher = _fingerprinted(ServingPusher(
        model=trainer.outputs["model"],
        model_blessing=blessing_gate.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_dir)),
        examples=examples_gen.outputs["examples"],  # the warm-up requests' eval pairs
        infra_blessing=serving_check.outputs["infra_blessing"],
        # The version record's checkpoint; its family comes from the trained model.
        version_facts=json.dumps({"checkpoint": config.checkpoint}),
    ).with_id("Pusher"))
    return tfx.dsl.Pipeline(
        pipeline_name=PIPELINE_NAME,
        pipeline_root=config.pipeline_root,
        components=[examples_gen, schema_importer, statistics_gen, example_validator,
                    data_gate, drift_gate, window, warm_start,
                    transform, trainer, not_fine_tuned, evaluator, served_model,
                    served_model_evaluator, blessing_gate, serving_check, pusher],
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=_beam_args(config.beam_pipeline_args),
    )
