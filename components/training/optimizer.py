"""AdamW as Hugging Face's TF fine-tuning uses it, with fewer passes over the weights.

`transformers.create_optimizer` returns `AdamWeightDecay`: Adam plus decoupled
weight decay, with a linear warm-up and linear decay of the learning rate.
`FusedAdamWeightDecay` computes the same update with less memory traffic,
which dominates the update on a CPU:
- embedding matrices (gradients as IndexedSlices) are updated lazily: only
  the rows of the tokens in the batch, each exactly as AdamWeightDecay updates
  it (momentum, second moment, decay, step). Rows of tokens not in the batch
  keep their weights and moments, where AdamWeightDecay would still decay
  them and move them by their fading momentum (the `LazyAdam` variant of
  TensorFlow Addons). Keras' sparse path made several passes over the whole
  30,522 x 384 word-embedding matrix every step; a batch touches a few
  hundred of its rows.
- the weight decay `var -= lr * var * rate` multiplies the two scalars first,
  saving a temporary the size of each weight.
"""

from __future__ import annotations

import tensorflow as tf
from transformers import create_optimizer
from transformers.optimization_tf import AdamWeightDecay


class FusedAdamWeightDecay(AdamWeightDecay):
    """transformers' AdamWeightDecay with lazy embedding updates and a fused decay."""

    def _resource_apply_sparse(self, grad, var, indices, apply_state=None):
        """The update of the rows `indices` only (Keras has summed repeated indices)."""
        var_device, var_dtype = var.device, var.dtype.base_dtype
        coefficients = ((apply_state or {}).get((var_device, var_dtype))
                        or self._fallback_apply_state(var_device, var_dtype))
        m, v = self.get_slot(var, "m"), self.get_slot(var, "v")
        m_rows = (coefficients["beta_1_t"] * tf.gather(m, indices)
                  + coefficients["one_minus_beta_1_t"] * grad)
        v_rows = (coefficients["beta_2_t"] * tf.gather(v, indices)
                  + coefficients["one_minus_beta_2_t"] * tf.square(grad))
        rows = tf.gather(var, indices)
        if self._do_use_weight_decay(var.name):
            rows -= rows * (coefficients["lr_t"] * coefficients["weight_decay_rate"])
        rows -= coefficients["lr"] * m_rows / (tf.sqrt(v_rows) + coefficients["epsilon"])
        return tf.group(m.scatter_update(tf.IndexedSlices(m_rows, indices)),
                        v.scatter_update(tf.IndexedSlices(v_rows, indices)),
                        var.scatter_update(tf.IndexedSlices(rows, indices)))

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
