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


def _squeeze(feature: tf.Tensor) -> tf.Tensor:
    """[batch, 1] dense raw feature -> [batch]."""
    return tf.reshape(feature, [-1])


def preprocessing_fn(inputs: dict[str, tf.Tensor], custom_config: dict[str, Any]
                     ) -> dict[str, Any]:
    """Tokenizes (question1, question2) Hugging Face style and passes the label through.

    custom_config: `checkpoint` (hub id, local directory or the offline default)
    and `max_seq_length` (pairs are truncated `longest_first` to that length).
    """
    spec = load_tokenizer_spec(resolve_checkpoint(custom_config["checkpoint"]))
    question1, question2 = (_squeeze(inputs[name]) for name in QUESTIONS)
    outputs: dict[str, Any] = dict(tokenize_pairs(question1, question2, spec,
                                                  int(custom_config["max_seq_length"])))
    outputs[LABEL] = _squeeze(inputs[LABEL])
    return outputs
