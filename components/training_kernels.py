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
  gamma and beta.

`dropout` draws one 32-bit random word per two elements (16 bits each) and
applies its mask as one product, in the forward pass and in the gradient.

`fused_training_kernels(model)` swaps these in while Keras traces the train step
(around the first `fit`) and swaps the originals back after. Prediction, export
and serving never see them: the exported graph stays plain TensorFlow. XLA
compiles each kernel once per input shape (0.1-0.3 s), and length-bucketed
batches come in a few dozen shapes per run. Measured in docs/performance.md.
"""

from __future__ import annotations

import contextlib
import functools
import math
from typing import Iterator

import tensorflow as tf
import tf_keras as keras
from absl import logging
from transformers.activations_tf import gelu as exact_gelu

from components.serving_graph import FEED_FORWARD_ACTIVATIONS

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
    replaced = []
    try:
        for layer in model.submodules:
            for dense_name, activation_name in FEED_FORWARD_ACTIVATIONS:
                dense = getattr(layer, dense_name, None)
                if (getattr(layer, activation_name, None) is exact_gelu
                        and isinstance(dense, keras.layers.Dense) and dense.use_bias
                        and dense.activation is keras.activations.linear):
                    replaced.append((layer, dense, activation_name, vars(dense).get("call")))
                    setattr(layer, activation_name, tf.identity)
                    dense.call = tf.autograph.experimental.do_not_convert(
                        functools.partial(_dense_bias_gelu, dense))
        yield len(replaced)
    finally:
        for layer, dense, activation_name, instance_call in replaced:
            setattr(layer, activation_name, exact_gelu)
            if instance_call is None:
                del dense.call
            else:
                dense.call = instance_call


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

    def call(layer: keras.layers.Dropout, inputs, training=None) -> tf.Tensor:
        # Subclasses (SpatialDropout*) shape their masks, and the non-legacy random
        # generators draw their own way: those keep Keras' dropout.
        generator = layer._random_generator  # pylint: disable=protected-access
        legacy = generator._rng_type == generator.RNG_LEGACY_STATEFUL  # pylint: disable=W0212
        if (training is not True or type(layer) is not keras.layers.Dropout or not legacy
                or layer.noise_shape is not None or not isinstance(inputs, tf.Tensor)
                or not 0 < round(float(layer.rate) * 65536) < 65536):
            return original_call(layer, inputs, training=training)
        return dropout(inputs, float(layer.rate), generator.make_legacy_seed())

    keras.layers.Dropout.call = tf.autograph.experimental.do_not_convert(call)
    try:
        yield
    finally:
        keras.layers.Dropout.call = original_call


@contextlib.contextmanager
def fused_training_kernels(model: keras.Model) -> Iterator[None]:
    """While open, traces use `bias_gelu` in `model`'s feed-forward blocks, and `layer_norm`
    and `dropout` in every Keras LayerNormalization and Dropout layer traced (of any model).

    Wrap the first `model.fit` (which traces the train step) in it. A later
    `fit` that retraces (a new batch shape under Keras' relaxed shapes, say)
    outside it traces the plain layers.
    """
    with _fused_exact_gelus(model) as fused_blocks, _fused_layer_norms(), _fast_dropouts():
        logging.info("Training kernels: bias + GELU fused in %d feed-forward blocks; layer "
                     "norms and dropout fused throughout", fused_blocks)
        yield
