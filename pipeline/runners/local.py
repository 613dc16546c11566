"""Runs the pipeline on this machine with TFX's LocalDagRunner."""

from __future__ import annotations

import os

from pipeline.config import PipelineConfig
from pipeline.data_inputs import resolve_data


def run_local(config: PipelineConfig) -> None:
    """Runs the pipeline (up to `config.until`) with LocalDagRunner and SQLite metadata."""
    # pylint: disable=import-outside-toplevel
    from tfx import v1 as tfx
    from tfx.orchestration.pipeline import RunOptions

    from pipeline.pipeline import create_pipeline

    data_input = resolve_data(config.data, config.download_dir)
    os.makedirs(os.path.dirname(os.path.abspath(config.metadata)), exist_ok=True)
    metadata = tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata)
    run_options = RunOptions(to_nodes=[config.until]) if config.until else None
    tfx.orchestration.LocalDagRunner().run(create_pipeline(config, data_input, metadata),
                                           run_options=run_options)
