"""The fused kernels (`components.kernels.fused_ops`) swapped in while Keras traces the
train step.

`fused_training_kernels(model)` swaps them in while Keras traces the train step (around
the first `fit`) and swaps the originals back after: Keras LayerNormalization and
Dropout layers, the feed-forward blocks with transformers' exact GELU, and the output
and self-attention blocks of the encoder classes named in
`components.families.encoder_blocks`. Prediction, export and serving never see them:
the exported graph stays plain TensorFlow. Length-bucketed batches come in a few dozen
shapes per run. Measured in docs/performance.md.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import tensorflow as tf
import tf_keras as keras
from absl import logging
from transformers.activations_tf import gelu as exact_gelu

from components.families.encoder_blocks import (FEED_FORWARD_ACTIVATIONS, RESIDUAL_NORM_BLOCKS,
                                                SELF_ATTENTION_BLOCKS)
from components.kernels.fused_ops import (attention_dropout, bias_gelu, dropout, layer_norm,
                                          random_halves, residual_layer_norm)
from components.kernels.layer_calls import class_call_replaced, instance_calls_replaced


def _dropout_threshold(layer: keras.layers.Dropout) -> int | None:
    """`dropout`'s threshold for a plain Keras Dropout layer with the legacy random
    generator, or None for others (subclasses shape their masks, the other generators
    draw their own way) and for rates that round to 0 or 1 of 65,536 (0 for rate 0)."""
    generator = layer._random_generator  # pylint: disable=protected-access
    if (type(layer) is not keras.layers.Dropout or layer.noise_shape is not None
            or generator._rng_type != generator.RNG_LEGACY_STATEFUL):  # pylint: disable=W0212
        return None
    threshold = round(float(layer.rate) * 65536)
    return threshold if float(layer.rate) == 0 or 0 < threshold < 65536 else None


def _plain_layer_norm(layer, rank: int | None) -> bool:
    """Whether `layer` is a Keras LayerNormalization that `layer_norm` computes on inputs
    of `rank`: over the last axis, with gamma and beta, float32 weights."""
    return (isinstance(layer, keras.layers.LayerNormalization) and rank is not None
            and list(layer.axis) == [rank - 1] and layer.center and layer.scale
            and layer.dtype == "float32")


def _fused_layer_norms() -> contextlib.AbstractContextManager:
    """Keras LayerNormalization layers over the last axis call `layer_norm`."""

    def make_call(original_call):
        def call(layer: keras.layers.LayerNormalization, inputs):
            if (not isinstance(inputs, tf.Tensor)
                    or not _plain_layer_norm(layer, inputs.shape.rank)):
                return original_call(layer, inputs)
            outputs = layer_norm(tf.cast(inputs, layer.compute_dtype), layer.gamma, layer.beta,
                                 layer.epsilon)
            outputs.set_shape(inputs.shape)
            return outputs

        return call

    return class_call_replaced(keras.layers.LayerNormalization, make_call)


def _dense_bias_gelu(dense: keras.layers.Dense, inputs: tf.Tensor) -> tf.Tensor:
    """The Dense layer's product, then `bias_gelu` with its bias, on a 2-D view of inputs."""
    if (not isinstance(inputs, tf.Tensor) or inputs.shape.rank is None
            or inputs.shape[-1] is None):
        return exact_gelu(keras.layers.Dense.call(dense, inputs))
    outputs = bias_gelu(tf.matmul(tf.reshape(inputs, [-1, inputs.shape[-1]]), dense.kernel),
                        dense.bias)
    return tf.reshape(outputs, tf.concat([tf.shape(inputs)[:-1], [dense.units]], 0))


@contextlib.contextmanager
def _fused_exact_gelus(model: keras.Model) -> Iterator[int]:
    """The model's feed-forward blocks with transformers' exact GELU add their first Dense
    layer's bias and apply the GELU in `bias_gelu`; yields how many blocks do."""
    blocks = [(layer, getattr(layer, dense_name), activation_name)
              for layer in model.submodules
              for dense_name, activation_name in FEED_FORWARD_ACTIVATIONS
              if getattr(layer, activation_name, None) is exact_gelu
              and isinstance(getattr(layer, dense_name, None), keras.layers.Dense)
              and getattr(layer, dense_name).use_bias
              and getattr(layer, dense_name).activation is keras.activations.linear]
    try:
        for layer, _, activation_name in blocks:
            setattr(layer, activation_name, tf.identity)
        with instance_calls_replaced([dense for _, dense, _ in blocks], _dense_bias_gelu) as count:
            yield count
    finally:
        for layer, _, activation_name in blocks:
            setattr(layer, activation_name, exact_gelu)


def _fast_dropouts() -> contextlib.AbstractContextManager:
    """Keras Dropout layers call `dropout` in training."""

    def make_call(original_call):
        def call(layer: keras.layers.Dropout, inputs, training=None) -> tf.Tensor:
            if (training is not True or not isinstance(inputs, tf.Tensor)
                    or not _dropout_threshold(layer)):
                return original_call(layer, inputs, training=training)
            return dropout(inputs, float(layer.rate),
                           layer._random_generator.make_legacy_seed())  # pylint: disable=W0212

        return call

    return class_call_replaced(keras.layers.Dropout, make_call)


def _keep_bits(layer: keras.layers.Dropout, shape: tf.Tensor) -> tuple[tf.Tensor, int]:
    """The 16-bit draws of a fused kernel's dropout mask of `shape`, seeded as the Keras
    layer seeds its own, and `dropout`'s threshold for its rate (no draws for rate 0)."""
    threshold = _dropout_threshold(layer)
    if not threshold:
        return tf.zeros([], tf.uint16), 0
    return (random_halves(shape, layer._random_generator.make_legacy_seed()),  # pylint: disable=W0212
            threshold)


def _fusable_output_block(block) -> bool:
    """Whether `block` is a BERT, RoBERTa or ELECTRA (self-)output block, which computes
    LayerNorm(dropout(dense(hidden_states)) + input_tensor), with layers the kernel takes."""
    dense = getattr(block, "dense", None)
    dropout_layer = getattr(block, "dropout", None)
    return (type(block).__name__ in RESIDUAL_NORM_BLOCKS
            and isinstance(dense, keras.layers.Dense) and dense.use_bias
            and dense.activation is keras.activations.linear
            and isinstance(dropout_layer, keras.layers.Dropout)
            and _dropout_threshold(dropout_layer) is not None
            and isinstance(getattr(block, "LayerNorm", None), keras.layers.LayerNormalization))


def _output_block_call(block, hidden_states: tf.Tensor, input_tensor: tf.Tensor,
                       training=False) -> tf.Tensor:
    """An output block's call in training: the Dense layer's product, then
    `residual_layer_norm` with its bias, the block's dropout and layer norm."""
    dense, norm = block.dense, block.LayerNorm
    if (training is not True or not isinstance(hidden_states, tf.Tensor)
            or not isinstance(input_tensor, tf.Tensor) or hidden_states.shape.rank is None
            or hidden_states.shape[-1] is None
            or not _plain_layer_norm(norm, input_tensor.shape.rank)):
        return type(block).call(block, hidden_states, input_tensor, training=training)
    product = tf.matmul(tf.reshape(hidden_states, [-1, hidden_states.shape[-1]]), dense.kernel)
    keep_bits, threshold = _keep_bits(block.dropout, tf.shape(product))
    residual = tf.reshape(tf.cast(input_tensor, product.dtype), [-1, dense.units])
    outputs = residual_layer_norm(product, dense.bias, residual, keep_bits, norm.gamma,
                                  norm.beta, threshold, norm.epsilon)
    return tf.reshape(outputs, tf.shape(input_tensor))


def _fusable_self_attention(block) -> bool:
    """Whether `block` is a BERT, RoBERTa or ELECTRA self-attention block whose dropout
    the kernel takes."""
    dropout_layer = getattr(block, "dropout", None)
    return (type(block).__name__ in SELF_ATTENTION_BLOCKS
            and isinstance(dropout_layer, keras.layers.Dropout)
            and _dropout_threshold(dropout_layer) is not None)


def _self_attention_call(block, hidden_states: tf.Tensor, attention_mask, head_mask,
                         encoder_hidden_states, encoder_attention_mask, past_key_value,
                         output_attentions: bool, training=False) -> tuple[tf.Tensor]:
    """A self-attention block's call in training (an encoder's, without head masks or
    returned probabilities), its scale, mask, softmax and dropout in `attention_dropout`."""
    if (training is not True or attention_mask is None or head_mask is not None
            or encoder_hidden_states is not None or past_key_value is not None
            or output_attentions or block.is_decoder):
        return type(block).call(block, hidden_states, attention_mask, head_mask,
                                encoder_hidden_states, encoder_attention_mask, past_key_value,
                                output_attentions, training=training)
    batch_size = tf.shape(hidden_states)[0]
    query, key, value = (block.transpose_for_scores(layer(inputs=hidden_states), batch_size)
                         for layer in (block.query, block.key, block.value))
    scores = tf.matmul(query, key, transpose_b=True)
    keep_bits, threshold = _keep_bits(block.dropout, tf.shape(scores))
    probabilities = attention_dropout(scores, attention_mask, keep_bits,
                                      1 / block.sqrt_att_head_size, threshold)
    outputs = tf.transpose(tf.matmul(probabilities, value), perm=[0, 2, 1, 3])
    return (tf.reshape(outputs, (batch_size, -1, block.all_head_size)),)


def _fused_self_attentions(model: keras.Model) -> contextlib.AbstractContextManager:
    """The model's BERT-style self-attention blocks call `attention_dropout`; yields how
    many."""
    return instance_calls_replaced(filter(_fusable_self_attention, model.submodules),
                                   _self_attention_call)


def _fused_output_blocks(model: keras.Model) -> contextlib.AbstractContextManager:
    """The model's BERT-style output blocks call `residual_layer_norm`; yields how many."""
    return instance_calls_replaced(filter(_fusable_output_block, model.submodules),
                                   _output_block_call)


@contextlib.contextmanager
def fused_training_kernels(model: keras.Model) -> Iterator[None]:
    """While open, traces use `bias_gelu` in `model`'s feed-forward blocks,
    `residual_layer_norm` in its BERT-style output blocks and `attention_dropout` in its
    BERT-style self-attention blocks, and `layer_norm` and `dropout` in every other Keras
    LayerNormalization and Dropout layer traced (of any model).

    Wrap the first `model.fit` (which traces the train step) in it. A later
    `fit` that retraces (a new batch shape under Keras' relaxed shapes, say)
    outside it traces the plain layers.
    """
    with (_fused_exact_gelus(model) as gelu_blocks, _fused_output_blocks(model) as output_blocks,
          _fused_self_attentions(model) as attention_blocks, _fused_layer_norms(),
          _fast_dropouts()):
        logging.info("Training kernels: bias + GELU fused in %d feed-forward blocks, bias + "
                     "dropout + residual + layer norm in %d output blocks, scale + mask + "
                     "softmax + dropout in %d self-attention blocks; other layer norms and "
                     "dropouts fused throughout", gelu_blocks, output_blocks, attention_blocks)
        yield
