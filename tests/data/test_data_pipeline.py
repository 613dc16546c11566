"""The data half of the pipeline under LocalDagRunner, driven through the CLI."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import cli
from pipeline.results import run_results
from pipeline.results.data_summary import label_counts, load_split_statistics
from tests.conftest import REPO_ROOT


def _run_cli(data: Path, root: Path, *extra: str) -> int:
    return cli.main(["run", "--data", str(data), "--pipeline-root", str(root / "pipeline"),
                     "--metadata", str(root / "metadata.sqlite"), "--until", "DataValidationGate",
                     *extra])


def test_ingests_validates_and_caches(small_qqp_dir: Path, tmp_path: Path, capsys):
    assert _run_cli(small_qqp_dir, tmp_path) == 0
    assert "train: 120 pairs" in capsys.readouterr().out
    run = run_results.latest_run(str(tmp_path / "metadata.sqlite"))
    assert {"QqpExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator",
            "DataValidationGate"} <= set(run)
    examples = run["QqpExampleGen"].outputs["examples"][0]
    assert run_results.split_names(examples) == ["train", "eval"]
    statistics = run["StatisticsGen"].output_uri("statistics")
    train_stats = load_split_statistics(statistics, "train")
    assert train_stats.num_examples == 120
    labels_in_file = [row.split("\t")[-1] for row in
                      (small_qqp_dir / "train.tsv").read_text().splitlines()[1:]]
    assert label_counts(train_stats) == {value: labels_in_file.count(value) for value in "01"}
    assert load_split_statistics(statistics, "eval").num_examples == 40

    assert _run_cli(small_qqp_dir, tmp_path) == 0
    assert run_results.latest_run(str(tmp_path / "metadata.sqlite"))["QqpExampleGen"].cached

    train_file = small_qqp_dir / "train.tsv"
    train_file.write_text(train_file.read_text() + "999\t1\t2\tnew?\trow?\t0\n")
    os.utime(train_file, (1, 1))  # a changed size alone must invalidate the cache
    assert _run_cli(small_qqp_dir, tmp_path) == 0
    run = run_results.latest_run(str(tmp_path / "metadata.sqlite"))
    assert not run["QqpExampleGen"].cached
    assert "train: 121 pairs" in capsys.readouterr().out


@pytest.mark.parametrize("content, message", [
    (b"", "train.tsv: the file is empty"),
    (b"1\t1\t2\ta\tb\t1\n", "train.tsv: line 1: expected the header"),
    (b"id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n1\t1\t2\ta\tb\t1\n2\t3\t4\ta\t\t0\n",
     "train.tsv: row 2 (line 3): question2 is empty"),
])
def test_bad_input_fails_the_run_with_file_row_and_problem(small_qqp_dir: Path, tmp_path: Path,
                                                           capsys, content, message):
    (small_qqp_dir / "train.tsv").write_bytes(content)
    assert _run_cli(small_qqp_dir, tmp_path) == cli.EXIT_BAD_INPUT
    error = capsys.readouterr().err
    assert f"qqp-tfx: error: {small_qqp_dir}/{message}" in error


def test_missing_data_path(tmp_path: Path, capsys):
    assert _run_cli(tmp_path / "absent", tmp_path) == cli.EXIT_BAD_INPUT
    assert "absent: no such file or directory" in capsys.readouterr().err


def test_console_script_help_lists_commands_and_options():
    script = Path(sys.executable).parent / "qqp-tfx"
    top = subprocess.run([script, "--help"], capture_output=True, text=True, check=True).stdout
    assert "run" in top
    run_help = subprocess.run([script, "run", "--help"], capture_output=True, text=True,
                              check=True, cwd=REPO_ROOT).stdout
    for option in ("--data", "--config", "--pipeline-root", "--metadata", "--beam-pipeline-args"):
        assert option in run_help


def test_early_stop_with_relative_paths(small_qqp_dir: Path, tmp_path: Path, monkeypatch,
                                        capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "--data", str(small_qqp_dir), "--pipeline-root", "root",
                     "--metadata", "m.sqlite", "--until", "QqpExampleGen"]) == 0
    output = capsys.readouterr().out
    assert f"Artifacts: {tmp_path / 'root'}  Metadata: {tmp_path / 'm.sqlite'}" in output
    run = run_results.latest_run(str(tmp_path / "m.sqlite"))
    assert set(run) == {"QqpExampleGen"}
    examples = run["QqpExampleGen"].outputs["examples"][0]
    assert examples.uri.startswith(str(tmp_path / "root") + "/")  # stored absolute
