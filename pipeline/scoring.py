"""Scoring GLUE-format TSV files with a pushed (exported) model."""

from __future__ import annotations

import os
import sys
from typing import Sequence

import numpy as np

from components.features import DECISION_THRESHOLD
from components.qqp_records import QqpDataError, QqpPair, read_tsv_pairs

STDIN = "-"  # `--input -` reads standard input


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


def read_pairs(path: str, require_label: bool, allow_empty: bool = False) -> list[QqpPair]:
    """All pairs of a GLUE TSV file ("-": standard input).

    The label column is optional unless required; empty questions are errors
    unless allowed.
    """
    if path == STDIN:
        return list(read_tsv_pairs(sys.stdin.buffer, "<stdin>", require_label=require_label,
                                   allow_empty=allow_empty))
    if not os.path.isfile(path):
        raise QqpDataError(f"{path}: no such file")
    with open(path, "rb") as stream:
        return list(read_tsv_pairs(stream, path, require_label=require_label,
                                   allow_empty=allow_empty))


def predict_probabilities(model_dir: str, pairs: Sequence[QqpPair], batch_size: int = 64,
                          show_progress: bool = True) -> np.ndarray:
    """P(duplicate) for each pair, from the model's `predict_text` signature.

    Pairs are scored in batches of similar length (less padding), then put back
    in input order.
    """
    # pylint: disable=import-outside-toplevel
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops)
    from tqdm import tqdm

    predict_text = tf.saved_model.load(model_dir).signatures["predict_text"]
    order = sorted(range(len(pairs)),
                   key=lambda i: len(pairs[i].question1) + len(pairs[i].question2))
    probabilities = np.zeros(len(pairs), dtype=np.float32)
    with tqdm(total=len(pairs), unit="pair", disable=not show_progress) as progress:
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            outputs = predict_text(
                question1=tf.constant([pairs[i].question1 for i in batch]),
                question2=tf.constant([pairs[i].question2 for i in batch]))
            probabilities[batch] = outputs["probability"].numpy()
            progress.update(len(batch))
    return probabilities


def binary_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """accuracy, f1, precision, recall, roc_auc at the 0.5 threshold, and n."""
    from sklearn import metrics  # pylint: disable=import-outside-toplevel

    predicted = (probabilities >= DECISION_THRESHOLD).astype(int)
    return {
        "accuracy": float(metrics.accuracy_score(labels, predicted)),
        "f1": float(metrics.f1_score(labels, predicted, zero_division=0)),
        "precision": float(metrics.precision_score(labels, predicted, zero_division=0)),
        "recall": float(metrics.recall_score(labels, predicted, zero_division=0)),
        "roc_auc": float(metrics.roc_auc_score(labels, probabilities))
        if len(set(labels.tolist())) == 2 else float("nan"),
        "n": int(len(labels)),
    }
