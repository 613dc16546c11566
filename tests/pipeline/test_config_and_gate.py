"""Configuration merging and the data-validation gate's messages."""

from pathlib import Path

import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2

from components.data.validation_gate import describe_anomalies
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


CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_the_full_data_recipe_is_a_valid_config():
    config = PipelineConfig().with_overrides(load_config_file(str(CONFIGS / "full.yaml")))
    hparams = config.hyperparameters()
    assert (config.max_train_examples, hparams.epochs, hparams.learning_rate) == (0, 2, 5e-5)


def test_the_mpnet_recipe_is_a_valid_config_for_the_packaged_checkpoint():
    config = PipelineConfig().with_overrides(load_config_file(str(CONFIGS / "mpnet.yaml")))
    assert config.checkpoint == "all-mpnet-base-v2"
    assert config.data == PipelineConfig().data  # the bundled sample, like make run


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


def test_yaml_numbers_are_coerced_like_command_line_values(tmp_path: Path):
    config_file = tmp_path / "run.yaml"
    config_file.write_text("learning-rate: 2e-5\nepochs: '3'\nwarmup-ratio: 0.06\n"
                           "beam-pipeline-args: [--a, --b]\n")
    config = PipelineConfig().with_overrides(load_config_file(str(config_file)))
    assert config.learning_rate == 2e-5 and config.epochs == 3
    assert config.hyperparameters().warmup_ratio == 0.06
    assert config.beam_pipeline_args == ["--a", "--b"]


def test_drift_thresholds_come_from_a_config_file(tmp_path: Path, capsys):
    config_file = tmp_path / "run.yaml"
    config_file.write_text("drift-thresholds:\n  tokens_per_question: 0.15\n")
    config = PipelineConfig().with_overrides(load_config_file(str(config_file)))
    assert config.drift_thresholds == {"tokens_per_question": 0.15}
    config_file.write_text("drift-thresholds:\n  token_count: 0.15\n")
    assert cli.main(["run", "--config", str(config_file)]) == cli.EXIT_BAD_INPUT
    assert ("--drift-thresholds: {'token_count': 0.15} is not allowed; expected a mapping of "
            "drift features (tokens_per_question, " in capsys.readouterr().err)


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "0"], "--epochs: 0 is not allowed; expected an integer >= 1"),
    (["--learning-rate=-1e-5"],
     "--learning-rate: -1e-05 is not allowed; expected a finite number > 0"),
    (["--warmup-ratio", "1"], "--warmup-ratio: 1.0 is not allowed; expected a number from 0 to"),
    (["--batch-size", "0"], "--batch-size: 0 is not allowed; expected an integer >= 1"),
    (["--max-seq-length", "4"], "--max-seq-length: 4 is not allowed; expected an integer >= 8"),
    (["--max-train-examples=-1"], "--max-train-examples: -1 is not allowed"),
    (["--min-f1", "1.5"], "--min-f1: 1.5 is not allowed; expected a number from 0 to 1"),
    (["--baseline-margin=-0.1"],
     "--baseline-margin: -0.1 is not allowed; expected a number from 0 to 1"),
    (["--train-window", "0"], "--train-window: 0 is not allowed; expected an integer >= 1"),
    (["--warm-start-epochs", "0"], "--warm-start-epochs: 0.0 is not allowed; expected a finite"),
    (["--until", "Evaluatr"], "--until: 'Evaluatr' is not allowed; expected one of QqpExampleGen"),
    (["--checkpoint", "./no-such-checkpoint"], "checkpoint './no-such-checkpoint': no such directory"),
])
def test_bad_options_stop_the_run_at_once(argv, message, tmp_path: Path, capsys):
    code = cli.main(["run", "--pipeline-root", str(tmp_path / "root"),
                     "--metadata", str(tmp_path / "m.sqlite"), *argv])
    assert code == cli.EXIT_BAD_INPUT
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("qqp-tfx: error: ") and message in error, error
    assert not (tmp_path / "m.sqlite").exists()  # nothing ran


def test_bad_values_in_a_config_file(tmp_path: Path, capsys):
    config_file = tmp_path / "run.yaml"
    config_file.write_text("mixed-precision: fp8\n")
    assert cli.main(["run", "--config", str(config_file)]) == cli.EXIT_BAD_INPUT
    assert ("--mixed-precision: 'fp8' is not allowed; expected one of auto, none"
            in capsys.readouterr().err)


def test_every_component_is_a_valid_until_target():
    from pipeline.config import COMPONENT_IDS  # pylint: disable=import-outside-toplevel
    from pipeline.data_inputs import resolve_data  # pylint: disable=import-outside-toplevel
    from pipeline.pipeline import create_pipeline  # pylint: disable=import-outside-toplevel

    config = PipelineConfig()
    pipeline = create_pipeline(config, resolve_data(config.data, config.download_dir))
    assert {node.id for node in pipeline.components} == set(COMPONENT_IDS)


def test_max_seq_length_beyond_the_checkpoint_is_refused(tmp_path: Path, capsys):
    from fixtures.tiny_bert import make_tiny_checkpoint  # pylint: disable=import-outside-toplevel

    checkpoint = make_tiny_checkpoint(tmp_path / "tiny")
    code = cli.main(["run", "--checkpoint", str(checkpoint), "--max-seq-length", "100000",
                     "--metadata", str(tmp_path / "m.sqlite"),
                     "--pipeline-root", str(tmp_path / "root")])
    assert code == cli.EXIT_BAD_INPUT
    assert ("--max-seq-length: 100000 is not allowed; the checkpoint takes at most 512 tokens"
            in capsys.readouterr().err)
    assert not (tmp_path / "m.sqlite").exists()
