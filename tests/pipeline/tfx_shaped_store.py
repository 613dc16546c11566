"""ML Metadata records shaped like those TFX 1.16's LocalDagRunner writes, and the artifact
files the readers open, for testing `qqp-tfx runs` and the report without running a pipeline.

A `pipeline_run` context and a `node` context per execution, exec properties as custom
properties, INPUT/OUTPUT events keyed by the component's channel names, CACHED executions
whose OUTPUT events point at an earlier run's artifacts; StatisticsGen's FeatureStats.pb and
a TFMA evaluation directory.
"""

from __future__ import annotations

import json
from pathlib import Path

import tensorflow as tf
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd
from tensorflow_metadata.proto.v0 import statistics_pb2
from tensorflow_model_analysis.proto import config_pb2, metrics_for_slice_pb2
from tensorflow_model_analysis.writers import eval_config_writer


class TfxShapedStore:
    """Writes ML Metadata records and artifact files the way a TFX pipeline run does."""

    def __init__(self, root: Path):
        self.root = root
        config = mlmd.ConnectionConfig()
        config.sqlite.filename_uri = str(root / "md.sqlite")
        config.sqlite.connection_mode = mlmd.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
        self.store = metadata_store.MetadataStore(config)
        self._types: dict[tuple[str, str], int] = {}
        self._contexts: dict[str, mlmd.Context] = {}
        self.pipeline = self._context("pipeline", "qqp-tfx")
        self.run = None

    @property
    def path(self) -> str:
        return str(self.root / "md.sqlite")

    def _type(self, kind: str, name: str) -> int:
        if (kind, name) not in self._types:
            if kind == "context":
                type_id = self.store.put_context_type(mlmd.ContextType(name=name))
            elif kind == "execution":
                type_id = self.store.put_execution_type(mlmd.ExecutionType(name=name))
            else:
                artifact_type = mlmd.ArtifactType(name=name)
                artifact_type.properties["split_names"] = mlmd.STRING
                type_id = self.store.put_artifact_type(artifact_type)
            self._types[kind, name] = type_id
        return self._types[kind, name]

    def _context(self, type_name: str, name: str) -> mlmd.Context:
        if name not in self._contexts:
            context = mlmd.Context(type_id=self._type("context", type_name), name=name)
            [context.id] = self.store.put_contexts([context])
            self._contexts[name] = context
        return self._contexts[name]

    def start_run(self, run_id: str) -> None:
        self.run = self._context("pipeline_run", run_id)

    def artifact(self, type_name: str, node: str, key: str, **custom) -> mlmd.Artifact:
        """A new output artifact whose directory is `<root>/<node>/<key>/<id>`."""
        artifact = mlmd.Artifact(type_id=self._type("artifact", type_name),
                                 state=mlmd.Artifact.LIVE)
        [artifact.id] = self.store.put_artifacts([artifact])
        artifact.uri = str(self.root / node / key / str(artifact.id))
        for name, value in custom.items():
            field = "int_value" if isinstance(value, int) else "string_value"
            setattr(artifact.custom_properties[name], field, value)
        self.store.put_artifacts([artifact])
        Path(artifact.uri).mkdir(parents=True, exist_ok=True)
        return artifact

    def execution(self, node: str, state: str = "COMPLETE", properties=None, inputs=None,
                  outputs=None) -> None:
        """One component's execution in the current run."""
        execution = mlmd.Execution(type_id=self._type("execution", f"tfx.{node}"),
                                   last_known_state=mlmd.Execution.State.Value(state))
        for name, value in (properties or {}).items():
            if isinstance(value, int):
                execution.custom_properties[name].int_value = value
            else:
                execution.custom_properties[name].string_value = (
                    value if isinstance(value, str) else json.dumps(value))
        events = []
        for kind, by_key in ((mlmd.Event.INPUT, inputs or {}), (mlmd.Event.OUTPUT,
                                                                 outputs or {})):
            for key, artifact in by_key.items():
                event = mlmd.Event(type=kind)
                event.path.steps.add().key = key
                event.path.steps.add().index = 0
                events.append((artifact, event))
        self.store.put_execution(execution, events, [
            self.pipeline, self.run, self._context("node", f"qqp-tfx.{node}")])


def write_statistics(artifact: mlmd.Artifact, splits: dict[str, tuple[int, int]]) -> None:
    """StatisticsGen's files: per split, (pairs, duplicates)."""
    artifact.properties["split_names"].string_value = json.dumps(list(splits))
    for split, (pairs, duplicates) in splits.items():
        statistics = statistics_pb2.DatasetFeatureStatistics(num_examples=pairs)
        label = statistics.features.add()
        label.path.step.append("is_duplicate")
        label.string_stats.top_values.add(value="0", frequency=pairs - duplicates)
        label.string_stats.top_values.add(value="1", frequency=duplicates)
        directory = Path(artifact.uri) / f"Split-{split}"
        directory.mkdir(parents=True)
        (directory / "FeatureStats.pb").write_bytes(statistics_pb2.DatasetFeatureStatisticsList(
            datasets=[statistics]).SerializeToString())


def write_evaluation(uri: str, metrics: dict[str, dict[str, float]]) -> None:
    """A TFMA output directory: model name -> overall metric name -> value."""
    eval_config = config_pb2.EvalConfig(model_specs=[
        config_pb2.ModelSpec(name="candidate"),
        config_pb2.ModelSpec(name="not_fine_tuned", is_baseline=True)])
    # pylint: disable-next=protected-access
    Path(uri, "eval_config.json").write_text(eval_config_writer._serialize_eval_run(
        eval_config, "", "tfrecord", {"candidate": "", "not_fine_tuned": ""}))
    overall = metrics_for_slice_pb2.MetricsForSlice()
    for model, values in metrics.items():
        for name, value in values.items():
            entry = overall.metric_keys_and_values.add()
            entry.key.name, entry.key.model_name = name, model
            entry.value.double_value.value = value
    with tf.io.TFRecordWriter(str(Path(uri, "metrics-00000-of-00001.tfrecord"))) as writer:
        writer.write(overall.SerializeToString())
