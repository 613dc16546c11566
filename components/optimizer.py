"""AdamW as Hugging Face's TF fine-tuning uses it, with fewer passes over the weights.

`transformers.create_optimizer` returns `AdamWeightDecay`: Adam plus decoupled
weight decay, with a linear warm-up and linear decay of the learning rate.
`FusedAdamWeightDecay` computes the same update (the same formulas, rounding
aside) with less memory traffic, which dominates the update on a CPU:
- the word-embedding gradient arrives as IndexedSlices; Keras' sparse Adam
  path then makes several passes over the whole embedding matrix (scale m,
  scatter, scale v, scatter, update). Densified, it takes TensorFlow's fused
  `ResourceApplyAdam` kernel: one pass. The update is identical (rows without
  a gradient see a zero gradient in both).
- the weight decay `var -= lr * var * rate` multiplies the two scalars first,
  saving a temporary the size of each weight.
"""

from __future__ import annotations

import tensorflow as tf
from transformers import create_optimizer
from transformers.optimization_tf import AdamWeightDecay


class FusedAdamWeightDecay(AdamWeightDecay):
    """transformers' AdamWeightDecay with dense embedding updates and a fused decay."""

    def apply_gradients(self, grads_and_vars, name=None, **kwargs):
        dense = [(tf.convert_to_tensor(grad) if isinstance(grad, tf.IndexedSlices) else grad,
                  var) for grad, var in grads_and_vars]
        return super().apply_gradients(dense, name=name, **kwargs)

    def _decay_weights_op(self, var, learning_rate, apply_state):
        if not self._do_use_weight_decay(var.name):
            return tf.no_op()
        rate = apply_state[(var.device, var.dtype.base_dtype)]["weight_decay_rate"]
        return var.assign_sub(var * (learning_rate * rate), use_locking=self._use_locking)


def create_adamw(learning_rate: float, total_steps: int, warmup_steps: int,
                 weight_decay: float) -> tf.keras.optimizers.Optimizer:
    """`transformers.create_optimizer`'s AdamW and schedule, as FusedAdamWeightDecay."""
    reference, _ = create_optimizer(init_lr=learning_rate, num_train_steps=total_steps,
                                    num_warmup_steps=warmup_steps,
                                    weight_decay_rate=weight_decay)
    if not isinstance(reference, AdamWeightDecay):  # no weight decay: plain Adam
        return reference
    # get_config() serializes the schedule and leaves out which weights decay: the
    # reference's own objects are carried over instead.
    # pylint: disable=protected-access
    return FusedAdamWeightDecay(**{
        **reference.get_config(), "learning_rate": reference._get_hyper("learning_rate"),
        "include_in_weight_decay": reference._include_in_weight_decay,
        "exclude_from_weight_decay": reference._exclude_from_weight_decay})
