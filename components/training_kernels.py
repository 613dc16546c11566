"""XLA-fused GELU and layer norm for the training step, swapped in while Keras traces it.

A training step's matrix products run in oneDNN near the bf16 roofline; GELU
and the layer norms were next (a third of a step's op time on a 2-vCPU Xeon):
TensorFlow runs them op by op, a pass over memory each, in the forward pass
and again, with more ops, in the gradient. Here each is one XLA-compiled kernel
for the forward pass and one for the gradient (`tf.custom_gradient`), both
computing in float32 whatever the input's dtype:
- `gelu`: the exact (erf) GELU of BERT-family feed-forward blocks;
- `layer_norm`: Keras' `LayerNormalization` over the last axis, with its
  gamma and beta.

Dropout masks come from 16-bit random draws (`dropout`), half the random
words `tf.nn.dropout` draws, applied as one product.

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
from transformers.activations_tf import gelu as exact_gelu

from components.serving_graph import FEED_FORWARD_ACTIVATIONS

_SQRT_HALF = 1 / math.sqrt(2.0)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


@tf.function(jit_compile=True)
def _gelu_forward(x: tf.Tensor) -> tf.Tensor:
    x32 = tf.cast(x, tf.float32)
    return tf.cast(0.5 * x32 * (1.0 + tf.math.erf(x32 * _SQRT_HALF)), x.dtype)


@tf.function(jit_compile=True)
def _gelu_gradient(x: tf.Tensor, upstream: tf.Tensor) -> tf.Tensor:
    x32 = tf.cast(x, tf.float32)
    cdf = 0.5 * (1.0 + tf.math.erf(x32 * _SQRT_HALF))
    pdf = tf.exp(-0.5 * x32 * x32) * _INV_SQRT_2PI
    return tf.cast(tf.cast(upstream, tf.float32) * (cdf + x32 * pdf), x.dtype)


@tf.custom_gradient
def gelu(x: tf.Tensor):
    """Exact GELU, x * Phi(x), as transformers' `gelu`, in two fused kernels."""
    return _gelu_forward(x), lambda upstream: _gelu_gradient(x, upstream)


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


@contextlib.contextmanager
def _fused_layer_norms() -> Iterator[None]:
    """Keras LayerNormalization layers over the last axis call `layer_norm`."""
    original_call = keras.layers.LayerNormalization.call

    def call(layer: keras.layers.LayerNormalization, inputs):
        if (not isinstance(inputs, tf.Tensor) or inputs.shape.rank is None
                or list(layer.axis) != [inputs.shape.rank - 1]
                or not (layer.center and layer.scale) or layer.dtype != "float32"):
            return original_call(layer, inputs)
        outputs = layer_norm(tf.cast(inputs, layer.compute_dtype), layer.gamma, layer.beta,
                             layer.epsilon)
        outputs.set_shape(inputs.shape)
        return outputs

    keras.layers.LayerNormalization.call = tf.autograph.experimental.do_not_convert(call)
    try:
        yield
    finally:
        keras.layers.LayerNormalization.call = original_call


@contextlib.contextmanager
def _fused_exact_gelus(model: keras.Model) -> Iterator[None]:
    """The model's feed-forward blocks with transformers' exact GELU call `gelu`."""
    replaced = []
    for layer in model.submodules:
        for _, activation_name in FEED_FORWARD_ACTIVATIONS:
            if getattr(layer, activation_name, None) is exact_gelu:
                setattr(layer, activation_name, gelu)
                replaced.append((layer, activation_name))
    try:
        yield
    finally:
        for layer, activation_name in replaced:
            setattr(layer, activation_name, exact_gelu)


def dropout(x: tf.Tensor, rate: float, seed: int | None = None) -> tf.Tensor:
    """Inverted dropout from 16-bit random draws: half the random words of `tf.nn.dropout`.

    Each element is dropped when its 16 random bits fall below
    round(rate * 65536), and kept ones are scaled by 1 / P(keep), so that the
    expectation is exact (P(drop) = 0.100006 for rate 0.1). The mask is applied
    as one product with a {0, 1 / P(keep)} tensor, in the forward pass and in
    the gradient.
    """
    threshold = round(rate * 65536)
    shape = tf.shape(x)
    size = tf.reduce_prod(shape)
    words = tf.random.uniform([(size + 1) // 2], minval=tf.int32.min, maxval=tf.int32.max,
                              dtype=tf.int32, seed=seed)
    halves = tf.reshape(tf.bitcast(words, tf.uint16), [-1])[:size]
    keep = tf.reshape(halves >= tf.constant(threshold, tf.uint16), shape)
    scale = tf.where(keep, tf.constant(65536 / (65536 - threshold), x.dtype),
                     tf.zeros([], x.dtype))
    return x * tf.stop_gradient(scale)


@contextlib.contextmanager
def _fast_dropouts() -> Iterator[None]:
    """Keras Dropout layers call `dropout` in training."""
    original_call = keras.layers.Dropout.call

    def call(layer: keras.layers.Dropout, inputs, training=None):
        if (training is not True or layer.noise_shape is not None
                or not 0 < float(layer.rate) < 1 or not isinstance(inputs, tf.Tensor)):
            return original_call(layer, inputs, training=training)
        return dropout(inputs, float(layer.rate), layer.seed)

    keras.layers.Dropout.call = tf.autograph.experimental.do_not_convert(call)
    try:
        yield
    finally:
        keras.layers.Dropout.call = original_call


@contextlib.contextmanager
def fused_training_kernels(model: keras.Model) -> Iterator[None]:
    """Traces of `model` in this context use the fused GELU and layer norms and `dropout`.

    Wrap the first `model.fit` (which traces the train step) in it; the traced
    step keeps them, and everything traced after the context is plain again.
    """
    with _fused_exact_gelus(model), _fused_layer_norms(), _fast_dropouts():
        yield

