"""Transform's `preprocessing_fn`: question pairs to the encoder's inputs, in-graph.

Each pair becomes the fine-tuned model's input (BERT: [CLS] q1 [SEP] q2 [SEP]) and
each question alone the not-fine-tuned model's ([CLS] q [SEP]), with the
checkpoint's own tokenizer family (components.text.tokenization). Its vocabulary
becomes part of the transform graph, so an exported model tokenizes raw text by
itself.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from components.families.checkpoint import resolve_checkpoint
from components.features import LABEL, OVERLAP_BUCKETS, QUESTIONS, SLICE_FEATURE
from components.text.tokenization import load_tokenizer
from components.text.tokenization.base import assemble_pair, assemble_single


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
    """Tokenizes pairs and questions with the checkpoint's own tokenizer; adds label and slice.

    custom_config: `checkpoint` (hub id, local directory or the offline default)
    and `max_seq_length` (pairs are truncated `longest_first` to that length,
    single questions to their first tokens).
    """
    tokenizer = load_tokenizer(resolve_checkpoint(custom_config["checkpoint"]))
    max_length = int(custom_config["max_seq_length"])
    question1, question2 = (_squeeze(inputs[name]) for name in QUESTIONS)
    ids1, ids2 = tokenizer.tokenize_questions(question1, question2)
    outputs: dict[str, Any] = dict(assemble_pair(ids1, ids2, tokenizer.template, max_length))
    for question, ids in zip(QUESTIONS, (ids1, ids2)):
        for name, value in assemble_single(ids, tokenizer.template, max_length).items():
            outputs[f"{question}_{name}"] = value
    outputs[LABEL] = _squeeze(inputs[LABEL])
    outputs[SLICE_FEATURE] = word_overlap_bucket(question1, question2)
    return outputs
