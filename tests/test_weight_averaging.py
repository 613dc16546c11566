"""The exported weights are the moving average of the weights over the second half of training."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from components.weight_averaging import WeightAveraging


class _WeightRecorder(keras.callbacks.Callback):
    """The model's weights after every training step."""

    def __init__(self) -> None:
        super().__init__()
        self.weights: list[list[np.ndarray]] = []

    def on_train_batch_end(self, batch, logs=None) -> None:
        self.weights.append([weight.numpy() for weight in self.model.trainable_weights])


def _fit(callbacks: list[keras.callbacks.Callback], epochs: int = 2) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(3), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    rng = np.random.default_rng(0)
    features, targets = rng.normal(size=(40, 4)), rng.normal(size=(40, 1))
    model.fit(features, targets, batch_size=8, epochs=epochs, shuffle=False, verbose=0,
              callbacks=callbacks)
    return model


def test_the_model_ends_with_the_moving_average_from_the_start_step():
    recorder = _WeightRecorder()
    model = _fit([recorder, WeightAveraging(decay=0.8, start_step=4)])  # 2 epochs of 5 steps
    expected = recorder.weights[3]  # the weights after step 4 start the average
    for step_weights in recorder.weights[4:]:
        expected = [0.8 * average + 0.2 * weight for average, weight in zip(expected, step_weights)]
    for weight, average in zip(model.trainable_weights, expected):
        np.testing.assert_allclose(weight.numpy(), average, rtol=1e-5, atol=1e-6)
    assert not np.allclose(model.trainable_weights[0].numpy(), recorder.weights[-1][0])


def test_a_start_after_the_last_step_keeps_the_last_weights():
    recorder = _WeightRecorder()
    model = _fit([recorder, WeightAveraging(decay=0.8, start_step=100)])
    for weight, last in zip(model.trainable_weights, recorder.weights[-1]):
        np.testing.assert_array_equal(weight.numpy(), last)


@pytest.mark.parametrize("decay", [0.0, 1.0])
def test_decay_must_be_strictly_between_0_and_1(decay):
    with pytest.raises(ValueError, match="decay must be between 0 and 1"):
        WeightAveraging(decay=decay, start_step=0)
