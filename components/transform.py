"""Transform's `preprocessing_fn`: question pairs to BERT inputs, in-graph.

The checkpoint's WordPiece vocabulary becomes an asset of the transform graph,
so the exported model tokenizes raw text by itself.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from components.checkpoint import resolve_checkpoint
from components.tokenization import load_tokenizer_spec, tokenize_pairs

LABEL = "is_duplicate"
QUESTIONS = ("question1", "question2")
# Evaluation slice: how many words the two questions share (Jaccard of word sets).
SLICE_FEATURE = "word_overlap"
OVERLAP_BUCKETS = ("0.00-0.25", "0.25-0.50", "0.50-0.75", "0.75-1.00")


def _squeeze(feature: tf.Tensor) -> tf.Tensor:
    """[batch, 1] dense raw feature -> [batch]."""
    return tf.reshape(feature, [-1])


def word_overlap_bucket(question1: tf.Tensor, question2: tf.Tensor) -> tf.Tensor:
    """Buckets the Jaccard similarity of the lower-cased word sets, as strings."""
    def words(text: tf.Tensor) -> tf.SparseTensor:
        text = tf.strings.regex_replace(tf.strings.lower(text, encoding="utf-8"), r"[^\w]+", " ")
        return tf.strings.split(text).to_sparse()

    words1, words2 = words(question1), words(question2)
    shared = tf.cast(tf.sets.size(tf.sets.intersection(words1, words2)), tf.float32)
    total = tf.cast(tf.sets.size(tf.sets.union(words1, words2)), tf.float32)
    jaccard = shared / tf.maximum(total, 1.0)
    index = tf.minimum(tf.cast(jaccard * len(OVERLAP_BUCKETS), tf.int32),
                       len(OVERLAP_BUCKETS) - 1)
    # tf.sets ops lose the static shape; Transform's schema inference needs rank 1.
    return tf.reshape(tf.gather(tf.constant(OVERLAP_BUCKETS), index), [-1])


def preprocessing_fn(inputs: dict[str, tf.Tensor], custom_config: dict[str, Any]
                     ) -> dict[str, Any]:
    """Tokenizes (question1, question2) Hugging Face style; adds the label and overlap slice.

    custom_config: `checkpoint` (hub id, local directory or the offline default)
    and `max_seq_length` (pairs are truncated `longest_first` to that length).
    """
    spec = load_tokenizer_spec(resolve_checkpoint(custom_config["checkpoint"]))
    question1, question2 = (_squeeze(inputs[name]) for name in QUESTIONS)
    outputs: dict[str, Any] = dict(tokenize_pairs(question1, question2, spec,
                                                  int(custom_config["max_seq_length"])))
    outputs[LABEL] = _squeeze(inputs[LABEL])
    outputs[SLICE_FEATURE] = word_overlap_bucket(question1, question2)
    return outputs
