"""Each model's decision on every eval pair, in the same order: the data of the paired gate.

TFMA reports each model's metrics, not its decision pair by pair, so the gate scores
the eval split once more: every raw tf.Example of the split (in file order) goes
through each model's `serving_default` signature, at the pipeline's scoring
precision (components.precision.scoring), exactly as the Evaluators call it. Pair i
of every model is the same eval pair, which is what a paired interval
(components.evaluation.intervals) needs.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow as tf

from components.features import LABEL, SPAN_FEATURE

BATCH_SIZE = 64
EVAL_SPLIT = "eval"


@dataclasses.dataclass(frozen=True)
class EvalPairs:
    """The eval split as raw serialized tf.Examples, with each pair's label and span."""

    examples: list[bytes]
    labels: np.ndarray  # 0/1
    spans: np.ndarray  # the span each pair came from (0: data not in spans)


def read_eval_pairs(examples_uri: str, split: str = EVAL_SPLIT) -> EvalPairs:
    """Every tf.Example of an Examples artifact's split (gzipped TFRecords, in name order)."""
    split_dir = os.path.join(examples_uri, f"Split-{split}")
    files = sorted(tf.io.gfile.glob(os.path.join(split_dir, "*")))
    if not files:
        raise FileNotFoundError(f"{split_dir}: no eval examples to compare the models on")
    examples, labels, spans = [], [], []
    for record in tf.data.TFRecordDataset(files, "GZIP").as_numpy_iterator():
        feature = tf.train.Example.FromString(record).features.feature
        if not feature[LABEL].int64_list.value:
            raise ValueError(f"{split_dir}: eval pair {len(examples)} has no {LABEL}")
        examples.append(record)
        labels.append(feature[LABEL].int64_list.value[0])
        span = feature[SPAN_FEATURE].int64_list.value if SPAN_FEATURE in feature else []
        spans.append(span[0] if span else 0)
    return EvalPairs(examples, np.asarray(labels, np.int64), np.asarray(spans, np.int64))


def predicted_labels(saved_model_dir: str, examples: list[bytes],
                     batch_size: int = BATCH_SIZE) -> np.ndarray:
    """The model's 0/1 decision on each serialized tf.Example, in order (its `serving_default`)."""
    signature = tf.saved_model.load(saved_model_dir).signatures["serving_default"]
    labels = [signature(examples=tf.constant(examples[start:start + batch_size]))["label"]
              .numpy().reshape(-1) for start in range(0, len(examples), batch_size)]
    predicted = np.concatenate(labels) if labels else np.zeros([0], np.int64)
    if predicted.shape != (len(examples),):
        raise ValueError(f"{saved_model_dir}: {predicted.size} decisions for "
                         f"{len(examples)} eval pairs")
    return predicted.astype(np.int64)
