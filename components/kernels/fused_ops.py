"""XLA-fused training kernels: GELU, layer norm, output blocks, attention softmax, dropout.

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
  the bias gradient and applies the dropout mask too);
- `attention_dropout`: the self-attention's dropout(softmax(scores * scale + mask)).

`dropout` draws one 32-bit random word per two elements (16 bits each, `random_halves`)
and applies its mask as one product, in the forward pass and in the gradient; the fused
kernels take the same 16-bit draws. XLA compiles each kernel once per input shape
(0.1-0.3 s). `components.kernels.training` swaps them into the encoder's layers.
"""

from __future__ import annotations

import math

import tensorflow as tf

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
