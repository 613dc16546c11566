"""The classifier: tiny random BERT learns, pooling ignores padding, a frozen encoder stays put."""

import numpy as np
import pytest
import tensorflow as tf
from transformers import BertConfig, TFBertModel

from components.hyperparameters import Hyperparameters
from components.model import MaskedMeanPooling, build_classifier
from components.trainer import compile_classifier


def _tiny_encoder() -> TFBertModel:
    tf.random.set_seed(0)
    return TFBertModel(BertConfig(vocab_size=200, hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=2, intermediate_size=64))


def _batch(size: int = 32, length: int = 12):
    rng = np.random.default_rng(0)
    input_ids = rng.integers(5, 200, size=(size, length)).astype(np.int32)
    labels = (rng.random(size) < 0.5).astype(np.float32)
    input_ids[labels == 1, 1] = 3  # a learnable signal: token 3 at position 1
    features = {"input_ids": input_ids, "attention_mask": np.ones_like(input_ids),
                "token_type_ids": np.zeros_like(input_ids)}
    return features, labels


def test_tiny_bert_loss_falls_in_a_few_steps():
    model = build_classifier(_tiny_encoder())
    compile_classifier(model, Hyperparameters(learning_rate=1e-3, warmup_ratio=0.0), 30)
    features, labels = _batch()
    dataset = tf.data.Dataset.from_tensors((features, labels)).repeat()
    history = model.fit(dataset, epochs=1, steps_per_epoch=30, verbose=0)
    before = float(model.evaluate(features, labels, verbose=0)[0])
    assert history.history["loss"][0] > before, (history.history, before)
    assert before < 0.5


def test_mean_pooling_ignores_padding():
    hidden = tf.constant([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    pooled = MaskedMeanPooling()(hidden, tf.constant([[1, 1, 0]]))
    np.testing.assert_allclose(pooled.numpy(), [[2.0, 3.0]])


def test_frozen_encoder_only_fits_the_head():
    encoder = _tiny_encoder()
    model = build_classifier(encoder, fine_tune_encoder=False)
    compile_classifier(model, Hyperparameters(learning_rate=1e-2, warmup_ratio=0.0), 5)
    features, labels = _batch()
    model(features)
    encoder_before = [weight.numpy().copy() for weight in encoder.weights]
    head_before = model.get_layer("classifier").kernel.numpy().copy()
    model.fit(features, labels, epochs=5, verbose=0)
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(encoder_before, encoder.weights))
    assert not np.array_equal(head_before, model.get_layer("classifier").kernel.numpy())


def test_unknown_pooling_is_rejected():
    with pytest.raises(ValueError, match="pooling must be one of"):
        build_classifier(_tiny_encoder(), pooling="max")
