"""FusedAdamWeightDecay updates weights exactly as transformers' AdamWeightDecay does."""

import numpy as np
import tensorflow as tf
import tf_keras as keras
from transformers import create_optimizer

from components.optimizer import FusedAdamWeightDecay, create_adamw


def _train(optimizer, steps: int = 4) -> list[np.ndarray]:
    """Weights of a small embedding + LayerNorm + Dense model after `steps` updates."""
    keras.utils.set_random_seed(0)
    ids = keras.Input((None,), dtype=tf.int32)
    states = keras.layers.Embedding(50, 8, name="word_embeddings")(ids)
    states = keras.layers.LayerNormalization(name="LayerNorm")(states)
    model = keras.Model(ids, keras.layers.Dense(1, name="dense")(
        tf.reduce_mean(states, axis=1)))
    rng = np.random.default_rng(0)
    for _ in range(steps):
        batch = tf.constant(rng.integers(0, 50, size=(4, 6)), tf.int32)  # few rows touched
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(batch) - 1.0))
        grads = tape.gradient(loss, model.trainable_variables)
        assert isinstance(grads[0], tf.IndexedSlices)  # the embedding's sparse gradient
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return [weight.numpy() for weight in model.trainable_variables]


def test_the_fused_update_equals_transformers_adamw():
    arguments = {"learning_rate": 1e-2, "total_steps": 10, "warmup_steps": 2,
                 "weight_decay": 0.1}
    fused = create_adamw(**arguments)
    assert isinstance(fused, FusedAdamWeightDecay)
    reference, _ = create_optimizer(init_lr=1e-2, num_train_steps=10, num_warmup_steps=2,
                                    weight_decay_rate=0.1)
    expected, actual = _train(reference), _train(fused)
    untrained = _train(create_adamw(**arguments), steps=0)
    for want, got, before in zip(expected, actual, untrained):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
        assert not np.allclose(got, before)  # every weight moved
    # LayerNorm and biases are excluded from the decay, as in transformers.
    assert not fused._do_use_weight_decay("LayerNorm/gamma:0")  # pylint: disable=protected-access
    assert fused._do_use_weight_decay("word_embeddings/embeddings:0")  # pylint: disable=protected-access
