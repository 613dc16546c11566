"""bf16 mixed precision and MirroredStrategy really train (on CPU), and export runs in float32."""

import numpy as np
import tensorflow as tf
import tf_keras as keras
from transformers import BertConfig, TFBertModel

from components.hyperparameters import Hyperparameters
from components.model import build_classifier
from components.trainer import compile_classifier, float32_copy, keras_policy, make_strategy

CONFIG = BertConfig(vocab_size=200, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=64)


def _batches():
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 200, size=(32, 10)).astype(np.int32)
    labels = (rng.random(32) < 0.5).astype(np.float32)
    ids[labels == 1, 1] = 3
    features = {"input_ids": ids, "attention_mask": np.ones_like(ids),
                "token_type_ids": np.zeros_like(ids)}
    return features, labels


def _encoder(model: keras.Model) -> TFBertModel:
    return next(layer for layer in model.layers if isinstance(layer, TFBertModel))


def _build() -> keras.Model:
    tf.random.set_seed(0)
    return build_classifier(TFBertModel(CONFIG))


def test_bf16_trains_with_a_float32_logit_and_exports_a_float32_copy():
    features, labels = _batches()
    with keras_policy("mixed_bfloat16"):
        model = _build()
        compile_classifier(model, Hyperparameters(learning_rate=1e-3, warmup_ratio=0.0), 20)
    assert _encoder(model).compute_dtype == "bfloat16"
    assert model.get_layer("classifier").compute_dtype == "float32"
    initial_loss = model.evaluate(features, labels, verbose=0)[0]
    model.fit(tf.data.Dataset.from_tensors((features, labels)).repeat(), steps_per_epoch=20,
              epochs=1, verbose=0)
    assert model.evaluate(features, labels, verbose=0)[0] < initial_loss
    assert model.output.dtype == tf.float32
    copy = float32_copy(model, _build)
    assert keras.mixed_precision.global_policy().name == "float32"
    assert _encoder(copy).compute_dtype == "float32"
    np.testing.assert_allclose(copy(features).numpy(), model(features).numpy(), atol=0.1)


def test_mirrored_strategy_trains_on_cpu():
    features, labels = _batches()
    strategy = make_strategy("mirrored")
    with strategy.scope():
        model = _build()
        compile_classifier(model, Hyperparameters(learning_rate=1e-3, warmup_ratio=0.0), 10)
    before = [weight.numpy().copy() for weight in model.trainable_weights]
    dataset = tf.data.Dataset.from_tensors((features, labels)).repeat()
    history = model.fit(dataset, steps_per_epoch=10, epochs=1, verbose=0)
    assert isinstance(strategy, tf.distribute.MirroredStrategy)
    assert strategy.num_replicas_in_sync >= 1 and np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(old, new.numpy())
               for old, new in zip(before, model.trainable_weights))
