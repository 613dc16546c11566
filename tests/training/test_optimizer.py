"""FusedAdamWeightDecay updates weights as transformers' AdamWeightDecay does, embeddings lazily.

Dense weights get exactly AdamWeightDecay's update. An embedding gets it on the
rows of the batch's tokens only (LazyAdam): checked against AdamWeightDecay on
a first step and against the row rule written out in NumPy over several steps.
"""

import numpy as np
import tensorflow as tf
import tf_keras as keras
from transformers import create_optimizer

from components.training.optimizer import FusedAdamWeightDecay, create_adamw


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


ARGUMENTS = {"learning_rate": 1e-2, "total_steps": 10, "warmup_steps": 2, "weight_decay": 0.1}
NO_WARMUP = {**ARGUMENTS, "warmup_steps": 0}  # a first step with a learning rate above 0


def test_the_fused_update_equals_transformers_adamw_on_the_rows_of_the_batch():
    fused = create_adamw(**NO_WARMUP)
    assert isinstance(fused, FusedAdamWeightDecay)
    reference, _ = create_optimizer(init_lr=1e-2, num_train_steps=10, num_warmup_steps=0,
                                    weight_decay_rate=0.1)
    (expected_rows, *expected), (rows, *actual) = _train(reference, 1), _train(fused, 1)
    (untrained_rows, *untrained) = _train(create_adamw(**NO_WARMUP), steps=0)
    for want, got, before in zip(expected, actual, untrained):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
        assert not np.allclose(got, before)  # every weight moved
    touched = np.unique(np.random.default_rng(0).integers(0, 50, size=(4, 6)))  # _train's batch
    np.testing.assert_allclose(rows[touched], expected_rows[touched], rtol=1e-6, atol=1e-7)
    assert not np.allclose(rows[touched], untrained_rows[touched])
    others = np.setdiff1d(np.arange(50), touched)
    np.testing.assert_array_equal(rows[others], untrained_rows[others])  # lazy: left alone
    assert not np.allclose(expected_rows[others], untrained_rows[others])  # AdamW decays them
    # LayerNorm and biases are excluded from the decay, as in transformers.
    assert not fused._do_use_weight_decay("LayerNorm/gamma:0")  # pylint: disable=protected-access
    assert fused._do_use_weight_decay("word_embeddings/embeddings:0")  # pylint: disable=protected-access


def test_embedding_rows_follow_the_lazy_adamw_rule_over_steps():
    optimizer = create_adamw(**ARGUMENTS)
    rng = np.random.default_rng(1)
    weights = rng.normal(size=(6, 3)).astype(np.float32)
    variable = tf.Variable(weights, name="word_embeddings/embeddings")
    expected, m, v = weights.astype(np.float64), np.zeros((6, 3)), np.zeros((6, 3))
    for step in range(1, 5):
        indices = rng.integers(0, 6, size=4)  # repeated indices are summed
        values = rng.normal(size=(4, 3)).astype(np.float32)
        lr_t = float(optimizer._decayed_lr(tf.float32))  # pylint: disable=protected-access
        optimizer.apply_gradients([(tf.IndexedSlices(tf.constant(values), tf.constant(indices),
                                                     tf.constant([6, 3])), variable)])
        grad = np.zeros((6, 3))
        np.add.at(grad, indices, values)
        rows = np.unique(indices)
        beta_1, beta_2 = optimizer._get_hyper("beta_1"), optimizer._get_hyper("beta_2")  # pylint: disable=protected-access
        beta_1, beta_2 = float(beta_1), float(beta_2)
        m[rows] = beta_1 * m[rows] + (1 - beta_1) * grad[rows]
        v[rows] = beta_2 * v[rows] + (1 - beta_2) * grad[rows] ** 2
        lr = lr_t * np.sqrt(1 - beta_2 ** step) / (1 - beta_1 ** step)
        expected[rows] -= expected[rows] * lr_t * 0.1
        expected[rows] -= lr * m[rows] / (np.sqrt(v[rows]) + optimizer.epsilon)
        np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-5, atol=1e-6)
