"""Faster GELU, layer norm and dropout for the training step, swapped in while Keras traces it.

A training step's matrix products run in oneDNN near the bf16 roofline; GELU
and the layer norms were next (a third of a step's op time on a 2-vCPU Xeon):
TensorFlow runs them op by op, a pass over memory each, in the forward pass
and again, with more ops, in the gradient. Here each is one XLA-compiled kernel
for the forward pass and one for the gradient (`tf.custom_gradient`), both
computing in float32 whatever the input's dtype:
- `bias_gelu`: the bias add and exact (erf) GELU of BERT-family feed-forward
  blocks (the gradient kernel sums the bias gradient too);
- `layer_norm`: Keras' `LayerNormalization` over the last axis, with its
  gamma and beta;
- `residual_layer_norm`: a BERT-style output block after its product:
  bias add, dropout, residual add and layer norm (the gradient kernel sums
  the bias gradient and applies the dropout mask too).

`dropout` draws one 32-bit random word per two elements (16 bits each) and
applies its mask as one product, in the forward pass and in the gradient;
`residual_layer_norm` takes the same 16-bit draws and applies them in its kernels.

`fused_training_kernels(model)` swaps these in while Keras traces the train step
(around the first `fit`) and swaps the originals back after. Prediction, export
and serving never see them: the exported graph stays plain TensorFlow. XLA
compiles each kernel once per input shape (0.1-0.3 s), and length-bucketed
batches come in a few dozen shapes per run. Measured in docs/performance.md.
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator

import tensorflow as tf
import tf_keras as keras
from absl import logging
from transformers.activations_tf import gelu as exact_gelu

from components.encoder_blocks import (FEED_FORWARD_ACTIVATIONS, RESIDUAL_NORM_BLOCKS,
                                       SELF_ATTENTION_BLOCKS)
from components.layer_calls import class_call_replaced, instance_calls_replaced

_SQRT_HALF = 1 / math.sqrt(2.0)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


@tf.function(jit_compile=True)
def _bias_gelu_forward(x: tf.Tensor, bias: tf.Tensor) -> tf.Tensor:
    x32 = tf.cast(x, tf.float32) + tf.cast(bias, tf.float32)
    return tf.cast(0.5 * x32 * (1.0 + tf.math.erf(x32 * _SQRT_HALF)), x.dtype)


@tf.function(jit_compile=True)
def _bias_gelu_gradient(x: tf.Tensor, bias: tf.Tensor,
                        upstream: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    x32 = tf.cast(x, tf.float32) + tf.cast(bias, tf.float32)
    cdf = 0.5 * (1.0 + tf.math.erf(x32 * _SQRT_HALF))
    pdf = tf.exp(-0.5 * x32 * x32) * _INV_SQRT_2PI
    gradient = tf.cast(upstream, tf.float32) * (cdf + x32 * pdf)
    return (tf.cast(gradient, x.dtype),
            tf.cast(tf.reduce_sum(gradient, list(range(len(x.shape) - 1))), bias.dtype))


@tf.custom_gradient
def bias_gelu(x: tf.Tensor, bias: tf.Tensor):
    """Exact GELU of x + bias, (x + bias) * Phi(x + bias), in two fused kernels."""
    return (_bias_gelu_forward(x, bias),
            lambda upstream: _bias_gelu_gradient(x, bias, upstream))


def _normalized(x32: tf.Tensor, epsilon: float) -> tuple[tf.Tensor, tf.Tensor]:
    mean, variance = tf.nn.moments(x32, axes=[-1], keepdims=True)
    inverse_std = tf.math.rsqrt(variance + epsilon)
    return (x32 - mean) * inverse_std, inverse_std


@tf.function(jit_compile=True)
def _layer_norm_forward(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor,
                        epsilon: float) -> tf.Tensor:
    normalized, _ = _normalized(tf.cast(x, tf.float32), epsilon)
    return tf.cast(normalized * gamma + beta, x.dtype)


@tf.function(jit_compile=True)
def _layer_norm_gradient(x: tf.Tensor, gamma: tf.Tensor, upstream: tf.Tensor,
                         epsilon: float) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    normalized, inverse_std = _normalized(tf.cast(x, tf.float32), epsilon)
    upstream32 = tf.cast(upstream, tf.float32)
    outer_axes = list(range(len(x.shape) - 1))
    gamma_gradient = tf.reduce_sum(upstream32 * normalized, outer_axes)
    beta_gradient = tf.reduce_sum(upstream32, outer_axes)
    scaled = upstream32 * gamma
    x_gradient = inverse_std * (
        scaled - tf.reduce_mean(scaled, -1, keepdims=True)
        - normalized * tf.reduce_mean(scaled * normalized, -1, keepdims=True))
    return tf.cast(x_gradient, x.dtype), gamma_gradient, beta_gradient


def layer_norm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: float) -> tf.Tensor:
    """(x - mean) / sqrt(variance + epsilon) * gamma + beta over the last axis, in float32."""

    @tf.custom_gradient
    def fused(x, gamma, beta):
        return (_layer_norm_forward(x, gamma, beta, epsilon),
                lambda upstream: _layer_norm_gradient(x, gamma, upstream, epsilon))

    return fused(x, gamma, beta)


def _kept_scale(keep_bits: tf.Tensor, threshold: int) -> tf.Tensor | float:
    """Inverted dropout's float32 factor for 16-bit draws: 0 below `threshold`, else
    1 / P(keep); 1 when nothing is dropped."""
    if threshold == 0:
        return 1.0
    return tf.where(keep_bits >= tf.constant(threshold, tf.uint16),
                    65536 / (65536 - threshold), 0.0)


def _residual_sum(x, bias, residual, keep_bits, threshold: int) -> tf.Tensor:
    return ((tf.cast(x, tf.float32) + tf.cast(bias, tf.float32)) * _kept_scale(keep_bits, threshold)
            + tf.cast(residual, tf.float32))


@tf.function(jit_compile=True)
def _residual_norm_forward(x, bias, residual, keep_bits, gamma, beta, threshold: int,
                           epsilon: float) -> tf.Tensor:
    normalized, _ = _normalized(_residual_sum(x, bias, residual, keep_bits, threshold), epsilon)
    return tf.cast(normalized * gamma + beta, x.dtype)


@tf.function(jit_compile=True)
def _residual_norm_gradient(x, bias, residual, keep_bits, gamma, upstream, threshold: int,
                            epsilon: float):
    normalized, inverse_std = _normalized(
        _residual_sum(x, bias, residual, keep_bits, threshold), epsilon)
    upstream32 = tf.cast(upstream, tf.float32)
    gamma_gradient = tf.reduce_sum(upstream32 * normalized, 0)
    beta_gradient = tf.reduce_sum(upstream32, 0)
    scaled = upstream32 * gamma
    sum_gradient = inverse_std * (
        scaled - tf.reduce_mean(scaled, -1, keepdims=True)
        - normalized * tf.reduce_mean(scaled * normalized, -1, keepdims=True))
    x_gradient = sum_gradient * _kept_scale(keep_bits, threshold)
    return (tf.cast(x_gradient, x.dtype), tf.cast(tf.reduce_sum(x_gradient, 0), bias.dtype),
            tf.cast(sum_gradient, residual.dtype), gamma_gradient, beta_gradient)


def residual_layer_norm(x: tf.Tensor, bias: tf.Tensor, residual: tf.Tensor, keep_bits: tf.Tensor,
                        gamma: tf.Tensor, beta: tf.Tensor, threshold: int,
                        epsilon: float) -> tf.Tensor:
    """layer_norm(dropout(x + bias) + residual) over the last axis of [tokens, width] inputs,
    in float32, with dropout's mask from 16-bit draws `keep_bits` (`dropout`'s rule:
    dropped below `threshold`, of 65,536; 0 drops nothing). One kernel forward, one
    for the gradient.
    """

    @tf.custom_gradient
    def fused(x, bias, residual, gamma, beta):
        def gradient(upstream):
            return _residual_norm_gradient(x, bias, residual, keep_bits, gamma, upstream,
                                           threshold, epsilon)

        return (_residual_norm_forward(x, bias, residual, keep_bits, gamma, beta, threshold,
                                       epsilon), gradient)

    return fused(x, bias, residual, gamma, beta)


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


def _attention_probabilities(scores, mask, scale: float) -> tf.Tensor:
    return tf.nn.softmax(tf.cast(scores, tf.float32) * scale + tf.cast(mask, tf.float32))


@tf.function(jit_compile=True)
def _attention_dropout_forward(scores, mask, keep_bits, scale: float, threshold: int):
    return tf.cast(_attention_probabilities(scores, mask, scale)
                   * _kept_scale(keep_bits, threshold), scores.dtype)


@tf.function(jit_compile=True)
def _attention_dropout_gradient(scores, mask, keep_bits, upstream, scale: float,
                                threshold: int):
    probabilities = _attention_probabilities(scores, mask, scale)
    kept = tf.cast(upstream, tf.float32) * _kept_scale(keep_bits, threshold)
    gradient = probabilities * (kept - tf.reduce_sum(kept * probabilities, -1, keepdims=True))
    return tf.cast(gradient * scale, scores.dtype)


def attention_dropout(scores: tf.Tensor, mask: tf.Tensor, keep_bits: tf.Tensor, scale: float,
                      threshold: int) -> tf.Tensor:
    """dropout(softmax(scores * scale + mask)) over the last axis, in float32, with
    `dropout`'s 16-bit rule for `keep_bits` and `threshold` (0 drops nothing); the
    gradient flows to `scores` only. One kernel forward, one for the gradient."""

    @tf.custom_gradient
    def fused(scores):
        def gradient(upstream):
            return _attention_dropout_gradient(scores, mask, keep_bits, upstream, scale,
                                               threshold)

        return _attention_dropout_forward(scores, mask, keep_bits, scale, threshold), gradient

    return fused(scores)


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


def random_halves(shape: tf.Tensor, seed: int | None = None) -> tf.Tensor:
    """Uniform random uint16 values of `shape`, two from each 32-bit random word."""
    size = tf.reduce_prod(shape)
    words = tf.random.uniform([(size + 1) // 2], minval=tf.int32.min, maxval=tf.int32.max,
                              dtype=tf.int32, seed=seed)
    return tf.reshape(tf.reshape(tf.bitcast(words, tf.uint16), [-1])[:size], shape)


def dropout(x: tf.Tensor, rate: float, seed: int | None = None) -> tf.Tensor:
    """Inverted dropout from 16-bit random draws, one 32-bit word per two elements.

    Each element is dropped when its 16 random bits fall below
    round(rate * 65536) (P(drop) = 0.100006 for rate 0.1; 0 < rate * 65536 <
    65535.5), and kept ones are scaled by 1 / P(keep), exactly in float32 and
    rounded to bf16 in bf16 as `tf.nn.dropout` rounds its scale. The mask is
    applied as one product with a {0, 1 / P(keep)} tensor, in the forward pass
    and in the gradient.
    """
    threshold = round(rate * 65536)
    if not 0 < threshold < 65536:
        raise ValueError(f"dropout rate {rate} rounds to {threshold}/65536")
    keep = random_halves(tf.shape(x), seed) >= tf.constant(threshold, tf.uint16)
    scale = tf.where(keep, tf.constant(65536 / (65536 - threshold), x.dtype),
                     tf.zeros([], x.dtype))
    return x * tf.stop_gradient(scale)


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
