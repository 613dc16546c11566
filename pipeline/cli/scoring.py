"""Scoring GLUE-format TSV files with a pushed (exported) model, chunk by chunk.

Pairs are read, scored and handed on in chunks of `CHUNK_SIZE`, so memory does
not grow with the input and standard input is scored as it arrives.
"""

from __future__ import annotations

import array
import itertools
import os
import sys
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence, TextIO

import numpy as np

from components.data.records import QqpDataError, QqpPair, read_tsv_pairs
from components.features import DECISION_THRESHOLD

if TYPE_CHECKING:
    from tqdm import tqdm

STDIN = "-"  # `--input -` reads standard input
CHUNK_SIZE = 2048  # pairs read, scored and written at a time

# Called with the number of pairs of each batch scored (a progress bar's update).
Progress = Callable[[int], object]
# Scores a list of pairs: P(duplicate) of each, in the list's order; reports progress.
Scorer = Callable[[Sequence[QqpPair], Progress | None], np.ndarray]


def resolve_model_dir(model: str) -> str:
    """A SavedModel directory: `model` itself, or its newest integer version subdirectory."""
    if os.path.exists(os.path.join(model, "saved_model.pb")):
        return model
    if not os.path.isdir(model):
        raise QqpDataError(f"{model}: no such model directory (the Pusher writes versions "
                           "under artifacts/serving/qqp; run `make run` first)")
    versions = [name for name in os.listdir(model)
                if name.isdigit() and os.path.exists(os.path.join(model, name, "saved_model.pb"))]
    if not versions:
        raise QqpDataError(f"{model}: neither a SavedModel nor a directory of numbered versions")
    return os.path.join(model, max(versions, key=int))


def open_pairs(path: str, require_label: bool, allow_empty: bool = False) -> Iterator[QqpPair]:
    """The pairs of a GLUE TSV file ("-": standard input), read as they are iterated.

    The header and the first row are read and checked at once, so a wrong file
    fails before a model is loaded. The label column is optional unless
    required; empty questions are errors unless allowed.
    """
    if path == STDIN:
        pairs = read_tsv_pairs(sys.stdin.buffer, "<stdin>", require_label=require_label,
                               allow_empty=allow_empty)
    elif os.path.isfile(path):
        pairs = _read_file_pairs(path, require_label, allow_empty)
    else:
        raise QqpDataError(f"{path}: no such file")
    first = next(pairs)  # read_tsv_pairs raises QqpDataError for a file without rows
    return itertools.chain([first], pairs)


def _read_file_pairs(path: str, require_label: bool, allow_empty: bool) -> Iterator[QqpPair]:
    with open(path, "rb") as stream:
        yield from read_tsv_pairs(stream, path, require_label=require_label,
                                  allow_empty=allow_empty)


def count_rows(path: str) -> int | None:
    """The data rows of a TSV file (lines after the header), or None for standard input."""
    if path == STDIN:
        return None
    lines, last = 0, b"\n"
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            lines, last = lines + block.count(b"\n"), block[-1:]
    return lines + (last != b"\n") - 1


def load_scorer(model_dir: str, batch_size: int, precision: str = "auto") -> Scorer:
    """Loads the model's `predict_text` signature once; returns a `Scorer` that uses it.

    The scorer sorts the pairs it is given by length and scores them in batches
    of `batch_size` (less padding), then puts the probabilities back in the
    pairs' order. `precision` (components.precision.scoring): `auto` scores in
    bf16 where the CPU computes it natively, `float32` or `bfloat16` force one.
    """
    # pylint: disable=import-outside-toplevel
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops)

    from components.precision.scoring import scoring_precision

    predict_text = tf.saved_model.load(model_dir).signatures["predict_text"]

    def score(pairs: Sequence[QqpPair], on_batch: Progress | None = None) -> np.ndarray:
        order = sorted(range(len(pairs)),
                       key=lambda i: len(pairs[i].question1) + len(pairs[i].question2))
        probabilities = np.zeros(len(pairs), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            with scoring_precision(precision):
                outputs = predict_text(
                    question1=tf.constant([pairs[i].question1 for i in batch]),
                    question2=tf.constant([pairs[i].question2 for i in batch]))
            probabilities[batch] = outputs["probability"].numpy()
            if on_batch is not None:
                on_batch(len(batch))
        return probabilities

    return score


def predict_probabilities(model_dir: str, pairs: Sequence[QqpPair], batch_size: int = 64,
                          show_progress: bool = True) -> np.ndarray:
    """P(duplicate) for each of a few pairs held in memory (e.g. the notebook's one pair)."""
    from tqdm import tqdm  # pylint: disable=import-outside-toplevel,redefined-outer-name

    scorer = load_scorer(model_dir, batch_size)
    with tqdm(total=len(pairs), unit="pair", disable=not show_progress) as progress:
        return scorer(pairs, progress.update)


def score_chunks(pairs: Iterable[QqpPair], scorer: Scorer, on_batch: Progress | None = None
                 ) -> Iterator[tuple[list[QqpPair], np.ndarray]]:
    """Each chunk of up to `CHUNK_SIZE` pairs, in input order, with its probabilities.

    A chunk is scored as soon as it is full or the input ends; `on_batch` goes
    to the scorer.
    """
    iterator = iter(pairs)
    while chunk := list(itertools.islice(iterator, CHUNK_SIZE)):
        yield chunk, scorer(chunk, on_batch)


def write_predictions(chunks: Iterable[tuple[list[QqpPair], np.ndarray]], stream: TextIO,
                      with_ids: bool = True) -> None:
    """Writes `predict`'s header, then each scored chunk's rows as soon as it is scored.

    Each chunk goes out as whole lines in one write and is flushed, so output
    cut short (a kill, an error in a later chunk) is the header and complete rows.
    """
    stream.write(("id\t" if with_ids else "") + "probability\tlabel\n")
    stream.flush()
    for pairs, probabilities in chunks:
        stream.write("".join(
            (f"{pair.id}\t" if with_ids else "")
            + f"{probability:.6f}\t{int(probability >= DECISION_THRESHOLD)}\n"
            for pair, probability in zip(pairs, probabilities)))
        stream.flush()


def progress_bar(path: str | None) -> tqdm:
    """A progress bar on standard error counting the pairs of `path` scored (None: no bar)."""
    from tqdm import tqdm  # pylint: disable=import-outside-toplevel

    return tqdm(total=None if path is None else count_rows(path), unit="pair",
                disable=path is None)


def describe_input(path: str) -> str:
    """`path` as messages name it."""
    return "standard input" if path == STDIN else path


def collect_scores(chunks: Iterable[tuple[list[QqpPair], np.ndarray]]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The labels (int8) and probabilities (float32) of labeled scored chunks; no pairs kept."""
    labels, probabilities = array.array("b"), array.array("f")
    for chunk, chunk_probabilities in chunks:
        labels.extend(pair.is_duplicate for pair in chunk)
        probabilities.frombytes(np.asarray(chunk_probabilities, dtype=np.float32).tobytes())
    return (np.frombuffer(labels, dtype=np.int8),
            np.frombuffer(probabilities, dtype=np.float32))


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def binary_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float | None]:
    """accuracy, f1, precision, recall, roc_auc at the 0.5 threshold, and n.

    A metric that is undefined on this input is None (JSON null), never NaN:
    precision when no pair is predicted a duplicate, recall when no pair is one,
    roc_auc when the labels are all 0 or all 1, and f1 = 2TP / (2TP + FP + FN)
    only when there are neither duplicates nor pairs predicted duplicate
    (otherwise, with no true positives, it is 0).
    """
    from sklearn import metrics  # pylint: disable=import-outside-toplevel

    actual = labels == 1
    predicted = probabilities >= DECISION_THRESHOLD
    true_positives = int(np.sum(actual & predicted))
    return {
        "accuracy": float(np.mean(actual == predicted)),
        "f1": _ratio(2 * true_positives, int(actual.sum() + predicted.sum())),
        "precision": _ratio(true_positives, int(predicted.sum())),
        "recall": _ratio(true_positives, int(actual.sum())),
        "roc_auc": float(metrics.roc_auc_score(actual, probabilities))
        if 0 < actual.sum() < len(actual) else None,
        "n": int(len(labels)),
    }
