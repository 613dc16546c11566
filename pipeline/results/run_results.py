"""Reads what a pipeline run produced from ML Metadata: the latest run, or any run.

A run is a `pipeline_run` context; each of its executions is one component
(`NodeResult`). A component TFX reused from its cache is a CACHED execution of
this run whose OUTPUT events point at the earlier run's artifacts, so a cached
component's outputs read exactly like a fresh one's.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Mapping

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline.config import PIPELINE_NAME

_OUTPUT_EVENTS = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)
_INPUT_EVENTS = (metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.DECLARED_INPUT)
_CACHED = metadata_store_pb2.Execution.CACHED
_FAILED = metadata_store_pb2.Execution.FAILED
_DONE = (metadata_store_pb2.Execution.COMPLETE, _CACHED)


@dataclasses.dataclass(frozen=True)
class NodeResult:
    """One component's execution in a run: its input and output artifacts by key."""

    cached: bool
    inputs: dict[str, list[metadata_store_pb2.Artifact]]
    outputs: dict[str, list[metadata_store_pb2.Artifact]]
    # The execution's properties (TFX's exec properties: `custom_config` is a JSON string).
    properties: dict[str, Any] = dataclasses.field(default_factory=dict)
    state: str = "COMPLETE"  # MLMD's execution state: COMPLETE, CACHED, FAILED, RUNNING, ...
    # From the execution's creation to its last update (its end, once done); ~0 when cached.
    seconds: float | None = None

    @property
    def failed(self) -> bool:
        """Whether the component failed in this run."""
        return self.state == metadata_store_pb2.Execution.State.Name(_FAILED)

    @property
    def done(self) -> bool:
        """Whether the component finished in this run (ran or was reused from the cache)."""
        return self.state in [metadata_store_pb2.Execution.State.Name(state) for state in _DONE]

    def json_property(self, name: str) -> Any:
        """An execution property holding JSON (e.g. `custom_config`); None if absent or bad."""
        value = self.properties.get(name)
        if not isinstance(value, str):
            return None
        try:
            return json.loads(value)
        except ValueError:
            return None

    def output_uri(self, key: str) -> str:
        """The URI of the single artifact output under `key`."""
        return self.outputs[key][0].uri


def has_output(run: Mapping[str, NodeResult], node: str, key: str) -> bool:
    """Whether `node` ran (or was cached) in `run` and recorded an output under `key`."""
    return node in run and bool(run[node].outputs.get(key))


def open_store(metadata_path: str) -> metadata_store.MetadataStore:
    """Opens an ML Metadata SQLite store read-only."""
    if not os.path.exists(metadata_path):
        raise FileNotFoundError(f"{metadata_path}: no ML Metadata store; run `qqp-tfx run` first")
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(config)


def latest_run_context(store: metadata_store.MetadataStore, metadata_path: str
                       ) -> metadata_store_pb2.Context:
    """The newest `pipeline_run` context of a store."""
    runs = store.get_contexts_by_type("pipeline_run")
    if not runs:
        raise LookupError(f"{metadata_path}: holds no pipeline run")
    return max(runs, key=lambda context: context.create_time_since_epoch)


def run_contexts(store: metadata_store.MetadataStore) -> list[metadata_store_pb2.Context]:
    """Every `pipeline_run` context of a store, oldest first."""
    return sorted(store.get_contexts_by_type("pipeline_run"),
                  key=lambda context: (context.create_time_since_epoch, context.id))


def latest_run_id(metadata_path: str) -> str:
    """The name (run id) of the newest pipeline run."""
    return latest_run_context(open_store(metadata_path), metadata_path).name


def latest_run(metadata_path: str) -> dict[str, NodeResult]:
    """Maps each component id of the newest pipeline run to its `NodeResult`."""
    store = open_store(metadata_path)
    return run_nodes(store, latest_run_context(store, metadata_path))


def _property_value(value: metadata_store_pb2.Value) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind in ("string_value", "int_value", "double_value",
                                            "bool_value") else None


def run_nodes(store: metadata_store.MetadataStore, run: metadata_store_pb2.Context
              ) -> dict[str, NodeResult]:
    """Maps each component id of one pipeline run (a `pipeline_run` context) to its result."""
    results = {}
    node_prefix = PIPELINE_NAME + "."
    for execution in sorted(store.get_executions_by_context(run.id),
                            key=lambda execution: execution.id):
        node_id = next((context.name[len(node_prefix):]
                        for context in store.get_contexts_by_execution(execution.id)
                        if context.name.startswith(node_prefix)), None)
        if node_id is None:
            continue
        events = store.get_events_by_execution_ids([execution.id])
        artifacts = {artifact.id: artifact for artifact in
                     store.get_artifacts_by_id([event.artifact_id for event in events])}
        by_direction: dict[bool, dict[str, list[metadata_store_pb2.Artifact]]] = {
            True: {}, False: {}}
        for event in events:
            if event.type in _OUTPUT_EVENTS + _INPUT_EVENTS and event.artifact_id in artifacts:
                by_direction[event.type in _OUTPUT_EVENTS].setdefault(
                    event.path.steps[0].key, []).append(artifacts[event.artifact_id])
        properties = {name: _property_value(value) for name, value in
                      list(execution.properties.items()) + list(
                          execution.custom_properties.items())}
        results[node_id] = NodeResult(
            execution.last_known_state == _CACHED, inputs=by_direction[False],
            outputs=by_direction[True], properties=properties,
            state=metadata_store_pb2.Execution.State.Name(execution.last_known_state),
            seconds=(execution.last_update_time_since_epoch
                     - execution.create_time_since_epoch) / 1000)
    return results


def split_names(artifact: metadata_store_pb2.Artifact) -> list[str]:
    """The split names recorded on an Examples or statistics artifact."""
    return json.loads(artifact.properties["split_names"].string_value)
