"""The serving signatures' length-sorted sub-batches give the plain batch's results, in order."""

import numpy as np
import tensorflow as tf
from transformers import BertConfig, TFBertModel

from components.export.signatures import logits_in_length_order
from components.model.classifier import build_classifier


def _ragged_pairs(count: int, seed: int = 0) -> dict[str, tf.RaggedTensor]:
    rng = np.random.default_rng(seed)
    rows = [rng.integers(5, 200, size=int(length)).tolist()
            for length in rng.integers(3, 60, size=count)]
    input_ids = tf.ragged.constant(rows, dtype=tf.int64)
    return {"input_ids": input_ids, "attention_mask": tf.ones_like(input_ids),
            "token_type_ids": tf.zeros_like(input_ids)}


def test_sorted_sub_batches_equal_the_padded_batch_in_the_callers_order():
    tf.random.set_seed(0)
    model = build_classifier(TFBertModel(BertConfig(
        vocab_size=200, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64)))
    features = _ragged_pairs(37)
    padded = {name: tf.cast(value.to_tensor(), tf.int32) for name, value in features.items()}
    expected = model(padded, training=False).numpy()
    for sub_batch_size in (1, 8, 16, 64):
        logits = tf.function(logits_in_length_order)(model, features, sub_batch_size).numpy()
        np.testing.assert_allclose(logits, expected, atol=1e-5)
    # Distinct inputs give distinct logits, so equality above also proves the order.
    assert len(np.unique(expected.round(6))) == len(expected)
    empty = {name: value[:0] for name, value in features.items()}
    assert tf.function(logits_in_length_order)(model, empty, 16).shape == (0,)
