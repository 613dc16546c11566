"""`predict` and `evaluate` score chunk by chunk: order, streaming, kills, bad input, null metrics.

Most tests replace the model with `tests.pipeline.scoring_entry.fake_scorer` (the chunking
and writing do not depend on it); two load a tiny SavedModel with the real
`predict_text` signature's inputs and outputs through `scoring.load_scorer`.
"""

from __future__ import annotations

import itertools
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline import cli
from pipeline.cli import scoring
from tests.conftest import REPO_ROOT, write_tsv
from tests.pipeline.scoring_entry import fake_probability, fake_scorer

UNLABELED_HEADER = "id\tquestion1\tquestion2\n"
TIMEOUT = 30  # seconds a subprocess may take to show what is awaited


def _rows(count: int, labels: list[int] | None = None) -> list[str]:
    """Unlabeled (or labeled) TSV rows with ids 1..count and questions of varied lengths."""
    rows = [f"{i}\tQ{'x' * (i * 7 % 11)}?\tAnd {'y' * (i * 5 % 13)}?" for i in range(1, count + 1)]
    if labels is None:
        return rows
    return [f"{row.split(chr(9))[0]}\t0\t0\t{row.split(chr(9), 1)[1]}\t{label}"
            for row, label in zip(rows, labels)]


def _expected_lines(path: Path, count: int) -> list[str]:
    """The rows `predict` writes for the first `count` pairs of `path`, with the fake scorer."""
    pairs = itertools.islice(scoring.open_pairs(str(path), require_label=False), count)
    return [f"{pair.id}\t{fake_probability(pair):.6f}\t{int(fake_probability(pair) >= 0.5)}"
            for pair in pairs]


@pytest.fixture
def fake_model(tmp_path: Path) -> str:
    """A directory `resolve_model_dir` accepts; the fake scorer never reads it."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "saved_model.pb").write_bytes(b"")
    return str(tmp_path / "model")


def _entry(chunk_size: int, stall_after: int, *arguments: str, **popen) -> subprocess.Popen:
    """`qqp-tfx` with the fake scorer, in a subprocess."""
    return subprocess.Popen([sys.executable, "-m", "tests.pipeline.scoring_entry", str(chunk_size),
                             str(stall_after), *arguments], cwd=REPO_ROOT, **popen)


def test_rows_keep_input_order_across_chunks(fake_model, tmp_path, monkeypatch, capsys):
    seen: list[list[int]] = []
    monkeypatch.setattr(scoring, "CHUNK_SIZE", 3)
    monkeypatch.setattr(scoring, "load_scorer", fake_scorer(seen=seen))
    tsv = write_tsv(tmp_path / "in.tsv", _rows(10), header=UNLABELED_HEADER)
    assert cli.main(["predict", "--model", fake_model, "--input", str(tsv),
                     "--output", str(tmp_path / "out.tsv")]) == 0
    assert seen == [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10]]
    assert (tmp_path / "out.tsv").read_text().splitlines() == [
        "id\tprobability\tlabel", *_expected_lines(tsv, 10)]
    assert capsys.readouterr().out == ""


def test_the_scorer_batches_and_restores_the_input_order(tiny_model: str):
    scored = []
    scorer = scoring.load_scorer(tiny_model, batch_size=2)
    pairs = list(scoring.open_pairs(str(write_tsv(
        Path(tiny_model).parent / "in.tsv", _rows(7), header=UNLABELED_HEADER)), False))
    probabilities = scorer(pairs, scored.append)
    assert scored == [2, 2, 2, 1]
    differences = np.array([len(pair.question1) - len(pair.question2) for pair in pairs])
    assert len(set(differences)) > 3  # pairs of many lengths, sorted apart and put back
    np.testing.assert_allclose(probabilities, 1 / (1 + np.exp(-differences / 4)), atol=1e-6)
    np.testing.assert_allclose(scoring.predict_probabilities(tiny_model, pairs, 3, False),
                               probabilities, atol=1e-6)


def _read_until(stream, lines: int, deadline: float) -> bytes:
    """Bytes of a pipe up to its `lines`-th line break, waiting until `deadline` at most."""
    data = b""
    while data.count(b"\n") < lines:
        ready, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"timed out with {data!r}"
        chunk = os.read(stream.fileno(), 65536)
        assert chunk, f"the pipe closed with {data!r}"
        data += chunk
    return data


def test_standard_input_is_scored_as_it_arrives(fake_model, tmp_path):
    tsv = write_tsv(tmp_path / "in.tsv", _rows(4), header=UNLABELED_HEADER)
    lines = tsv.read_bytes().splitlines(keepends=True)
    process = _entry(3, 0, "predict", "--model", fake_model, "--input", "-",
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        process.stdin.write(b"".join(lines[:4]))  # the header and a first chunk of 3
        process.stdin.flush()
        first = _read_until(process.stdout, 4, time.monotonic() + TIMEOUT)
        assert process.poll() is None  # stdin is still open: the chunk was scored before EOF
        process.stdin.write(lines[4])  # one more pair alone, scored at EOF
        rest, _ = process.communicate(timeout=TIMEOUT)
    finally:
        process.kill()
    assert (first + rest).decode().splitlines() == [
        "id\tprobability\tlabel", *_expected_lines(tsv, 4)]
    assert process.returncode == 0


def test_a_killed_predict_leaves_only_complete_rows(fake_model, tmp_path):
    tsv = write_tsv(tmp_path / "in.tsv", _rows(9), header=UNLABELED_HEADER)
    output = tmp_path / "out.tsv"
    process = _entry(4, 1, "predict", "--model", fake_model, "--input", str(tsv),
                     "--output", str(output), stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not (output.exists() and output.read_text().count("\n") >= 5):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        time.sleep(0.2)  # the second chunk hangs in the scorer: nothing more comes
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=TIMEOUT)
    assert output.read_text() == "".join(
        line + "\n" for line in ["id\tprobability\tlabel", *_expected_lines(tsv, 4)])


def test_a_bad_row_in_a_later_chunk_keeps_the_written_prefix(fake_model, tmp_path, monkeypatch,
                                                              capsys):
    monkeypatch.setattr(scoring, "CHUNK_SIZE", 2)
    monkeypatch.setattr(scoring, "load_scorer", fake_scorer())
    tsv = write_tsv(tmp_path / "in.tsv", [*_rows(4), "5\tonly two columns"],
                    header=UNLABELED_HEADER)
    output = tmp_path / "out.tsv"
    assert cli.main(["predict", "--model", fake_model, "--input", str(tsv),
                     "--output", str(output)]) == cli.EXIT_BAD_INPUT
    assert f"{tsv}: row 5 (line 6): expected 3 tab-separated columns" in capsys.readouterr().err
    assert output.read_text().splitlines() == ["id\tprobability\tlabel",
                                               *_expected_lines(tsv, 4)]


def test_predict_refuses_to_overwrite_its_input(fake_model, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(scoring, "load_scorer", fake_scorer())
    tsv = write_tsv(tmp_path / "in.tsv", _rows(3), header=UNLABELED_HEADER)
    text = tsv.read_text()
    assert cli.main(["predict", "--model", fake_model, "--input", str(tsv),
                     "--output", str(tmp_path / "." / "in.tsv")]) == cli.EXIT_BAD_INPUT
    assert "is the --input file" in capsys.readouterr().err and tsv.read_text() == text


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize("value, message", [("0", "0 is not allowed; give 1 or more"),
                                            ("-1", "-1 is not allowed; give 1 or more"),
                                            ("x", "'x' is not an integer; give 1 or more")])
def test_batch_size_must_be_at_least_one(command, value, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--model", "m", "--input", "in.tsv", "--batch-size", value])
    assert exit_info.value.code == cli.EXIT_BAD_INPUT
    assert f"argument --batch-size: {message}" in capsys.readouterr().err


def _strict_json(text: str) -> dict:
    """One JSON object; NaN and Infinity, which Python's json accepts by default, fail."""
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in {text}"))


@pytest.mark.parametrize("label, nulls", [(0, {"f1", "precision", "recall", "roc_auc"}),
                                          (1, {"precision", "roc_auc"})])
def test_evaluate_on_one_class_prints_null_for_undefined_metrics(
        label, nulls, fake_model, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(scoring, "CHUNK_SIZE", 2)
    monkeypatch.setattr(scoring, "load_scorer", fake_scorer())
    # The fake scorer calls every pair not a duplicate: their second question is longer.
    tsv = write_tsv(tmp_path / "dev.tsv", [f"{i}\t0\t0\tWhy?\tWhy not?\t{label}"
                                           for i in range(1, 6)])
    assert cli.main(["evaluate", "--model", fake_model, "--input", str(tsv)]) == 0
    metrics = _strict_json(capsys.readouterr().out)
    assert {name for name, value in metrics.items() if value is None} == nulls
    assert metrics["n"] == 5 and metrics["accuracy"] == 1.0 - label
    if label == 1:
        assert metrics["recall"] == 0.0 and metrics["f1"] == 0.0


def test_evaluate_a_real_saved_model_on_one_class(tiny_model, tmp_path, capsys):
    tsv = write_tsv(tmp_path / "dev.tsv", _rows(6, labels=[1] * 6))
    assert cli.main(["evaluate", "--model", tiny_model, "--input", str(tsv),
                     "--batch-size", "4"]) == 0
    metrics = _strict_json(capsys.readouterr().out)
    assert metrics["roc_auc"] is None and metrics["n"] == 6
    assert metrics["recall"] == pytest.approx(metrics["accuracy"])


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    """A SavedModel whose `predict_text` takes and gives what the exported models' does;
    P(duplicate) = sigmoid((len(question1) - len(question2)) / 4)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    class LengthModel(tf.Module):
        """Scores pairs by the difference of their questions' lengths."""

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="question1"),
                                      tf.TensorSpec([None], tf.string, name="question2")])
        def predict_text(self, question1: tf.Tensor, question2: tf.Tensor):
            difference = tf.strings.length(question1) - tf.strings.length(question2)
            probability = tf.sigmoid(tf.cast(difference, tf.float32) / 4)
            return {"probability": probability,
                    "label": tf.cast(probability >= 0.5, tf.int64)}

    directory = tmp_path_factory.mktemp("tiny-model") / "model"
    module = LengthModel()
    tf.saved_model.save(module, str(directory), signatures={"predict_text": module.predict_text})
    return str(directory)
