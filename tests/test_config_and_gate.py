"""Configuration merging and the data-validation gate's messages."""

from pathlib import Path

import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2

from components.data_gate import describe_anomalies
from pipeline import cli
from pipeline.config import ConfigError, PipelineConfig, load_config_file


def test_config_file_then_command_line(tmp_path: Path):
    config_file = tmp_path / "run.yaml"
    config_file.write_text("data: /from/file\nmetadata: m.sqlite\n"
                           "beam-pipeline-args: --direct_num_workers=2\n")
    args = cli.build_parser().parse_args(["run", "--config", str(config_file), "--data", "/cli"])
    config = cli.config_from_args(args)
    assert config.data == "/cli"
    assert config.metadata == "m.sqlite"
    assert config.beam_pipeline_args == ["--direct_num_workers=2"]
    assert config.pipeline_root == PipelineConfig().pipeline_root


def test_unknown_config_key(tmp_path: Path):
    config_file = tmp_path / "run.yaml"
    config_file.write_text("dta: typo\n")
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['dta'\]"):
        PipelineConfig().with_overrides(load_config_file(str(config_file)))


def test_config_file_that_is_not_a_mapping(tmp_path: Path):
    config_file = tmp_path / "run.yaml"
    config_file.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config_file(str(config_file))


def test_anomalies_are_described_in_plain_words():
    anomalies = anomalies_pb2.Anomalies()
    info = anomalies.anomaly_info["is_duplicate"]
    reason = info.reason.add()
    reason.short_description = "Out-of-range values"
    reason.description = "Unexpectedly large value: 2."
    assert describe_anomalies("train", anomalies) == [
        "split 'train', feature 'is_duplicate': Out-of-range values: Unexpectedly large value: 2."]
    assert describe_anomalies("eval", anomalies_pb2.Anomalies()) == []
