"""The training window: the span registry and which spans a window holds."""

import json
from pathlib import Path

import tensorflow as tf
from tfx.types import standard_artifacts

from components.data import window


def _examples(uri: Path, span: int | None, pairs: dict[str, int]) -> standard_artifacts.Examples:
    """An Examples artifact of `span` whose splits hold `pairs[split]` records."""
    artifact = standard_artifacts.Examples()
    artifact.uri = str(uri)
    if span is not None:
        artifact.set_int_custom_property("span", span)
    for split, count in pairs.items():
        (uri / f"Split-{split}").mkdir(parents=True)
        with tf.io.TFRecordWriter(str(uri / f"Split-{split}" / "data.gz"), "GZIP") as writer:
            for index in range(count):
                writer.write(f"{span}-{split}-{index}".encode())
    return artifact


def _run_window(tmp_path: Path, span_examples, train_window: int):
    output = standard_artifacts.Examples()
    output.uri = str(tmp_path / f"window-{span_examples.uri.split('/')[-1]}")
    window.TrainingWindow.EXECUTOR_SPEC.executor_class().Do(
        {"span_examples": [span_examples]}, {"examples": [output]},
        {"train_window": train_window, "registry_dir": str(tmp_path / "spans")})
    return output


def _records(uri: str, split: str) -> list[bytes]:
    files = sorted(tf.io.gfile.glob(f"{uri}/Split-{split}/*"))
    return [record.numpy() for record in tf.data.TFRecordDataset(files, "GZIP")]


def test_the_window_holds_the_newest_registered_spans(tmp_path: Path):
    for span in (1, 2, 3):
        output = _run_window(tmp_path, _examples(tmp_path / f"span{span}", span,
                                                 {"train": 3, "eval": 1}), train_window=2)
    assert window.train_spans(output) == [2, 3]
    assert window.span_of(output) == 3
    assert sorted(_records(output.uri, "train")) == sorted(
        f"{span}-train-{index}".encode() for span in (2, 3) for index in range(3))
    assert sorted(_records(output.uri, "eval")) == [b"2-eval-0", b"3-eval-0"]
    assert window.registered_spans(str(tmp_path / "spans")) == {
        span: str(tmp_path / f"span{span}") for span in (1, 2, 3)}
    assert window.previous_span(str(tmp_path / "spans"), 3) == (2, str(tmp_path / "span2"))
    assert window.previous_span(str(tmp_path / "spans"), 1) is None


def test_a_span_never_ingested_is_left_out_of_the_window(tmp_path: Path):
    _run_window(tmp_path, _examples(tmp_path / "span1", 1, {"train": 1, "eval": 1}), 3)
    output = _run_window(tmp_path, _examples(tmp_path / "span3", 3, {"train": 1, "eval": 1}), 3)
    assert window.train_spans(output) == [1, 3]


def test_data_without_spans_is_a_window_of_one_and_is_not_registered(tmp_path: Path):
    output = _run_window(tmp_path, _examples(tmp_path / "plain", None, {"train": 2, "eval": 1}), 2)
    assert window.train_spans(output) == [0] and window.span_of(output) == 0
    assert len(_records(output.uri, "train")) == 2
    assert not (tmp_path / "spans").exists()
    assert json.loads(output.split_names) == ["train", "eval"]
