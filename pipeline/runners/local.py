"""Runs the pipeline on this machine with TFX's LocalDagRunner."""

from __future__ import annotations

import os

from pipeline.config import PipelineConfig
from pipeline.data_inputs import resolve_data


def run_local(config: PipelineConfig) -> None:
    """Runs the pipeline (up to `config.until`) with LocalDagRunner and SQLite metadata."""
    # pylint: disable=import-outside-toplevel
    from tfx import v1 as tfx
    from tfx.dsl.compiler import compiler
    from tfx.proto.orchestration import pipeline_pb2

    from pipeline.pipeline import UNCACHED_NODES, create_pipeline

    data_input = resolve_data(config.data, config.download_dir, span=config.span)
    os.makedirs(os.path.dirname(os.path.abspath(config.metadata)), exist_ok=True)
    metadata = tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata)
    # Compiled here rather than by LocalDagRunner.run, to switch the cache off for
    # UNCACHED_NODES (no component takes a module_file, so no pip dependencies to resolve).
    ir = compiler.Compiler().compile(create_pipeline(config, data_input, metadata))
    for node in ir.nodes:
        if node.pipeline_node.node_info.id in UNCACHED_NODES:
            node.pipeline_node.execution_options.caching_options.enable_cache = False
    run_options = None
    if config.until:
        run_options = pipeline_pb2.RunOptions()
        run_options.partial_run.to_nodes.append(config.until)
        run_options.partial_run.snapshot_settings.latest_pipeline_run_strategy.SetInParent()
    tfx.orchestration.LocalDagRunner().run_with_ir(ir, run_options=run_options)
