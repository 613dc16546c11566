"""An exponential moving average of the weights over the last part of training.

The average of the weights a run passes through near its end usually
generalises a little better than the last weights alone; the model exported is
the average.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tf_keras as keras


class WeightAveraging(keras.callbacks.Callback):
    """Keeps an exponential moving average (EMA) of the trainable weights; swaps it in at the end.

    The average starts as a copy of the weights after `start_step` training steps
    and then follows `average = decay * average + (1 - decay) * weights` after
    every step. When training ends the model's weights become the average. A
    run resumed from a backup counts the steps of the epochs it skipped, but
    restarts the average from the resumed weights.
    """

    def __init__(self, decay: float, start_step: int) -> None:
        super().__init__()
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be between 0 and 1, got {decay}")
        self._decay = decay
        self._start_step = start_step
        self._steps: int | None = None
        self._average: list[tf.Variable] = []

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self._steps is None:  # the first epoch of this process (later than 0 if resumed)
            self._steps = epoch * (self.params.get("steps") or 0)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._steps += 1
        if self._steps < self._start_step:
            return
        if not self._average:
            self._average = [tf.Variable(tf.identity(weight), trainable=False)
                             for weight in self.model.trainable_weights]
            return
        self._update(tf.constant(self._decay, tf.float32))

    @tf.function
    def _update(self, decay: tf.Tensor) -> None:
        for average, weight in zip(self._average, self.model.trainable_weights):
            average.assign(decay * average + (1.0 - decay) * tf.cast(weight, tf.float32))

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        for weight, average in zip(self.model.trainable_weights, self._average):
            weight.assign(average)
