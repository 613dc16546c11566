"""Every option of `run` and `compile` is checked before anything runs.

A bad value, from the command line or a --config file, exits 2 with one line naming
the option, the value and what is allowed, and nothing is written: no component
started (`run`), no spec (`compile`).
"""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline import cli
from tests.conftest import sample_rows, write_tsv

IMAGE = "example.com/qqp-tfx:test"
SEED = "an integer from 0 to 4294967295"
FRACTION = "a number from 0 to 1"
PATH = "a non-empty path"
# (option, bad value, what the error says is allowed): options both commands take.
PATHS = [
    ("data", "", "a non-empty path or hf:NAME"),
    ("pipeline-root", "", PATH),
    ("serving-dir", "", PATH),
    ("serving-dir", "  ", PATH),
    ("checkpoint", "", "a checkpoint directory, package or hub id"),
]
# Options of `run` (on `compile`, from a --config file only).
TRAINING = [
    ("seed", -1, SEED),
    ("seed", 2**32, SEED),
    ("learning-rate", float("inf"), "a finite number > 0"),
    ("learning-rate", float("nan"), "a finite number > 0"),
    ("warmup-ratio", float("nan"), "a number from 0 to less than 1"),
    ("min-accuracy", float("nan"), FRACTION),
    ("min-f1", float("inf"), FRACTION),
    ("baseline-margin", float("inf"), FRACTION),
    ("baseline-margin", float("nan"), FRACTION),
    ("baseline-margin", 1.5, FRACTION),
    ("baseline-margin", -0.1, FRACTION),
]
# Options of `compile` only.
COMPILE = [
    ("output", "", PATH),
    ("image-root", "", PATH),
    ("image", "", "a container image"),
    ("trainer-cpu", float("inf"), "a finite number > 0"),
    ("trainer-cpu", 0.0, "a finite number > 0"),
    ("trainer-memory", float("nan"), "a finite number > 0"),
    ("trainer-accelerator-type", "", "an accelerator type"),
    ("trainer-accelerator-count", 0, "an integer >= 1"),
]
# Values a command line cannot give (argparse refuses non-numbers itself).
CONFIG_FILE_ONLY = [
    ("trainer-memory", "lots", "a finite number > 0"),
    ("target", "argo", "one of vertex, kubeflow"),
]


def _message(option: str, value: Any, allowed: str) -> str:
    return f"qqp-tfx: error: --{option}: {value!r} is not allowed; expected {allowed}"


def _argv(option: str, value: Any, source: str, tmp_path: Path) -> list[str]:
    """The bad value on the command line, or in a --config file."""
    if source == "command line":
        return [f"--{option}={value}"]
    config_file = tmp_path / "options.yaml"
    config_file.write_text(yaml.safe_dump({option: value}))
    return ["--config", str(config_file)]


def _with_defaults(defaults: dict[str, str], option: str = "") -> list[str]:
    """`defaults` as options, except the one under test (the command line would win)."""
    return [f"--{name}={value}" for name, value in defaults.items() if name != option]


def _assert_one_line_error(capsys, message: str) -> None:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("qqp-tfx: error:")]
    assert errors == [err.strip().splitlines()[-1]], err
    assert errors[0].startswith(message), errors[0]


@pytest.fixture
def quiet_transformers():
    """transformers' warnings off while a checkpoint loads: its log handler, made in an
    earlier test, writes to that test's closed stderr capture (logging's own traceback)."""
    from transformers.utils import logging as hf_logging  # pylint: disable=C0415

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    yield
    hf_logging.set_verbosity(level)


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch) -> Path:
    """An empty working directory (so default paths land in it too) with a small dataset."""
    data = tmp_path / "qqp"
    data.mkdir()
    write_tsv(data / "train.tsv", sample_rows("train.tsv", 30))
    write_tsv(data / "dev.tsv", sample_rows("dev.tsv", 10))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run_defaults(run_dir: Path) -> dict[str, str]:
    return {"data": str(run_dir / "qqp"), "pipeline-root": str(run_dir / "root"),
            "metadata": str(run_dir / "metadata.sqlite"),
            "serving-dir": str(run_dir / "serving"), "until": "QqpExampleGen"}


@pytest.mark.parametrize("source", ["command line", "config file"])
@pytest.mark.parametrize("option, value, allowed",
                         PATHS + TRAINING + [("metadata", "", PATH)])
def test_bad_run_options_stop_before_any_component(source, option, value, allowed, run_dir,
                                                   capsys):
    # Valid, these options would run ExampleGen (--until QqpExampleGen) in `run_dir`.
    code = cli.main(["run", *_with_defaults(_run_defaults(run_dir), option),
                     *_argv(option, value, source, run_dir)])
    assert code == cli.EXIT_BAD_INPUT
    _assert_one_line_error(capsys, _message(option, value, allowed))
    # No pipeline root, metadata file or serving directory, here or at a default path.
    assert {path.name for path in run_dir.iterdir()} <= {"qqp", "options.yaml"}


@pytest.mark.usefixtures("quiet_transformers")
def test_max_seq_length_beyond_the_checkpoint_in_a_config_file(run_dir, capsys):
    config_file = run_dir / "options.yaml"
    config_file.write_text("max-seq-length: 100000\n")
    defaults = {**_run_defaults(run_dir), "until": "Transform"}  # Transform needs the checkpoint
    assert cli.main(["run", *_with_defaults(defaults), "--config",
                     str(config_file)]) == cli.EXIT_BAD_INPUT
    _assert_one_line_error(capsys, "qqp-tfx: error: --max-seq-length: 100000 is not allowed; "
                                   "the checkpoint takes at most 512 tokens")
    assert {path.name for path in run_dir.iterdir()} == {"qqp", "options.yaml"}


@pytest.mark.parametrize("command", ["run", "compile"])
def test_an_unsupported_model_type_stops_before_any_component(command, run_dir, capsys):
    checkpoint = run_dir / "gpt2"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text('{"model_type": "gpt2", "vocab_size": 50257}')
    if command == "run":  # Transform needs the checkpoint
        argv = ["run", *_with_defaults({**_run_defaults(run_dir), "until": "Transform"})]
    else:
        argv = ["compile", *_with_defaults(COMPILE_DEFAULTS)]
    assert cli.main([*argv, "--checkpoint", str(checkpoint)]) == cli.EXIT_BAD_INPUT
    _assert_one_line_error(capsys, f"qqp-tfx: error: {checkpoint}: model_type 'gpt2' is not "
                                   "supported; supported: bert, distilbert, electra, albert, "
                                   "roberta, mpnet, deberta-v2")
    assert {path.name for path in run_dir.iterdir()} == {"qqp", "gpt2"}


# Valid, these options compile (the default checkpoint and data are in the image).
COMPILE_DEFAULTS = {"image": IMAGE, "pipeline-root": "gs://b/root",
                    "serving-dir": "gs://b/serving", "output": "out/spec.json"}


def _compile(argv: list[str]) -> int:
    return cli.main(["compile", *argv])


@pytest.mark.parametrize("option, value, allowed, source", [
    *[(*case, source) for case in PATHS + COMPILE for source in ("command line", "config file")],
    *[(*case, "config file") for case in TRAINING + CONFIG_FILE_ONLY],
])
def test_bad_compile_options_write_no_spec(option, value, allowed, source, tmp_path, capsys,
                                           monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = _compile([*_with_defaults(COMPILE_DEFAULTS, option),
                     *_argv(option, value, source, tmp_path)])
    assert code == cli.EXIT_BAD_INPUT
    _assert_one_line_error(capsys, _message(option, value, allowed))
    assert not (tmp_path / "out").exists()


@pytest.mark.usefixtures("quiet_transformers")
def test_compile_checks_the_checkpoint_and_max_seq_length(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config_file = tmp_path / "options.yaml"
    config_file.write_text("max-seq-length: 100000\n")
    assert _compile([*_with_defaults(COMPILE_DEFAULTS), "--config",
                     str(config_file)]) == cli.EXIT_BAD_INPUT
    _assert_one_line_error(capsys, "qqp-tfx: error: --max-seq-length: 100000 is not allowed; "
                                   "the checkpoint takes at most 512 tokens")
    # A directory that is not there is not taken for a hub id the steps would download.
    assert _compile([*_with_defaults(COMPILE_DEFAULTS),
                     "--checkpoint", "./no-such-checkpoint"]) == cli.EXIT_BAD_INPUT
    _assert_one_line_error(capsys, "qqp-tfx: error: checkpoint './no-such-checkpoint': "
                                   "no such directory")
    assert not (tmp_path / "out").exists()


def test_accelerator_count_needs_a_type(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _compile([*_with_defaults(COMPILE_DEFAULTS),
                     "--trainer-accelerator-count", "2"]) == cli.EXIT_BAD_INPUT
    _assert_one_line_error(capsys, "qqp-tfx: error: --trainer-accelerator-count: 2 is not "
                                   "allowed without --trainer-accelerator-type")
    assert not (tmp_path / "out").exists()


@pytest.mark.usefixtures("quiet_transformers")
def test_compile_keys_from_a_config_file_are_coerced(tmp_path, capsys, monkeypatch):
    """YAML strings of numbers are numbers, as on the command line: `trainer-memory: "30"`."""
    monkeypatch.chdir(tmp_path)
    config_file = tmp_path / "vertex.yaml"
    config_file.write_text('trainer-memory: "30"\ntrainer-cpu: "8"\n'
                           'trainer-accelerator-type: NVIDIA_L4\n'
                           'trainer-accelerator-count: "2"\nseed: "7"\n')
    assert _compile([*_with_defaults(COMPILE_DEFAULTS), "--config", str(config_file)]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "out" / "spec.json")
    spec = json.loads((tmp_path / "out" / "spec.json").read_text())
    executors = spec["pipelineSpec"]["deploymentSpec"]["executors"]
    assert executors["Trainer_executor"]["container"]["resources"] == {
        "cpuLimit": 8.0, "memoryLimit": 30.0, "accelerator": {"type": "NVIDIA_L4", "count": "2"}}
    trainer = spec["pipelineSpec"]["root"]["dag"]["tasks"]["Trainer"]
    custom_config = json.loads(
        trainer["inputs"]["parameters"]["custom_config"]["runtimeValue"]["constantValue"][
            "stringValue"])
    assert custom_config["seed"] == 7
