"""Runs the pipeline on this machine with TFX's LocalDagRunner."""

from __future__ import annotations

import os

from pipeline.config import PipelineConfig
from pipeline.data_inputs import resolve_data


def run_local(config: PipelineConfig) -> None:
    """Runs the whole pipeline with LocalDagRunner and an SQLite metadata store."""
    from tfx import v1 as tfx  # pylint: disable=import-outside-toplevel

    from pipeline.pipeline import create_pipeline  # pylint: disable=import-outside-toplevel

    data_input = resolve_data(config.data, config.download_dir)
    os.makedirs(os.path.dirname(os.path.abspath(config.metadata)), exist_ok=True)
    metadata = tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata)
    tfx.orchestration.LocalDagRunner().run(create_pipeline(config, data_input, metadata))
