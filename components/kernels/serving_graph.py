"""The classifier's forward pass as the serving signatures run it.

Changes to how the Keras model is traced, exact in float32 or within its rounding, for
speed where grappler's oneDNN bf16 rewrite runs (components.precision.scoring):
- **Weights as constants.** The forward pass is frozen (variables -> constants),
  so the rewrite's float32 -> bf16 casts of the weights fold into bf16 constants
  once, when TensorFlow first optimizes the graph, instead of running at every
  length-sorted sub-batch of every request (they were a quarter of a request's
  time). The SavedModel stays one float32 artifact for any CPU.
- **Flat dense products.** Keras' Dense computes a [batch, length, width] input
  as Reshape -> MatMul -> Reshape -> BiasAdd (`tf.tensordot`); here it is
  Reshape -> MatMul -> BiasAdd [-> activation] -> Reshape, each feed-forward
  block's activation (GELU) moves into its first Dense layer, and BERT-style
  output blocks add their residual to the 2-D product: the patterns grappler's
  remapper fuses into one oneDNN MatMul with its bias and GELU or residual add.
- **Fewer passes over the attention scores** (within float32 rounding): the
  1 / sqrt(head size) scale is folded into the query weights, and transformers'
  `stable_softmax` (softmax(x + 1e-9)) is plain softmax.
On a 2-vCPU Xeon with AMX (all-MiniLM-L6-v2, bf16 rewrite) `predict_text` runs
1.6x as fast as from variables at batch 64 and 1.9x at batch 1; each step is
measured in docs/performance.md. The price: TensorFlow's first optimization of
the larger graph (first call 1.3 -> 4.2 s), paid once per process.
A model whose weights would not fit in `saved_model.pb` (protobuf's 2 GiB
limit, `MAX_FROZEN_WEIGHT_BYTES` with room to spare) keeps its variables.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Callable, Iterator

import tensorflow as tf
import tf_keras as keras
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from components.families.encoder_blocks import (FAMILY_MODULES, FEED_FORWARD_ACTIVATIONS,
                                                RESIDUAL_NORM_BLOCKS)
from components.kernels.layer_calls import class_call_replaced, instance_calls_replaced

Forward = Callable[[dict[str, tf.Tensor]], tf.Tensor]

# Frozen weights live in saved_model.pb, which protobuf caps at 2 GiB.
MAX_FROZEN_WEIGHT_BYTES = 1 << 30


def flat_dense_products() -> contextlib.AbstractContextManager:
    """While tracing, Keras Dense layers multiply rank-3+ inputs as one 2-D MatMul + BiasAdd.

    The same arithmetic as `tf.tensordot`, with the bias added before the
    reshape back, so that grappler's remapper can fuse MatMul and BiasAdd.
    """

    def make_call(original_call):
        def call(layer: keras.layers.Dense, inputs):
            if (not isinstance(inputs, tf.Tensor) or inputs.shape.rank is None
                    or inputs.shape.rank <= 2 or inputs.shape[-1] is None):
                return original_call(layer, inputs)
            return _restore_leading_axes(_flat_product(layer, inputs), inputs, layer.units)

        return call

    return class_call_replaced(keras.layers.Dense, make_call)


def _flat_product(layer: keras.layers.Dense, inputs: tf.Tensor, scale: float = 1.0) -> tf.Tensor:
    """The Dense layer on a 2-D view of `inputs` ([-1, units] out), its weights times
    `scale` (constants in a frozen graph: the product folds once)."""
    kernel = layer.kernel if scale == 1.0 else layer.kernel * scale
    outputs = tf.matmul(tf.reshape(inputs, [-1, inputs.shape[-1]]), kernel)
    if layer.use_bias:
        outputs = tf.nn.bias_add(outputs, layer.bias if scale == 1.0 else layer.bias * scale)
    if layer.activation is not None:
        outputs = layer.activation(outputs)
    return outputs


def _restore_leading_axes(outputs: tf.Tensor, inputs: tf.Tensor, units: int) -> tf.Tensor:
    """A 2-D [-1, units] product reshaped to the inputs' leading axes."""
    return tf.reshape(outputs, tf.concat([tf.shape(inputs)[:-1], [units]], 0))


@contextlib.contextmanager
def attention_scales_in_queries(model: keras.Model) -> Iterator[int]:
    """While tracing, self-attention blocks that divide their scores by sqrt(head size)
    (BERT, RoBERTa, ELECTRA, ALBERT) divide their query weights instead, saving a pass
    over every [heads, length, length] score tensor. Within float32 rounding of the
    original; yields how many blocks do."""
    blocks = [block for block in model.submodules
              if isinstance(getattr(block, "sqrt_att_head_size", None), float)
              and isinstance(getattr(block, "query", None), keras.layers.Dense)]
    scales = {id(block.query): 1 / block.sqrt_att_head_size for block in blocks}
    sizes = [block.sqrt_att_head_size for block in blocks]

    def scaled_query(layer: keras.layers.Dense, inputs):
        if (not isinstance(inputs, tf.Tensor) or inputs.shape.rank is None
                or inputs.shape[-1] is None):
            raise ValueError(f"{layer.name}: a query input of unknown width cannot be scaled")
        return _restore_leading_axes(_flat_product(layer, inputs, scales[id(layer)]), inputs,
                                     layer.units)

    try:
        for block in blocks:
            block.sqrt_att_head_size = 1.0
        with instance_calls_replaced([block.query for block in blocks], scaled_query) as count:
            yield count
    finally:
        for block, size in zip(blocks, sizes):
            block.sqrt_att_head_size = size


@contextlib.contextmanager
def unshifted_softmaxes() -> Iterator[None]:
    """While tracing, transformers' `stable_softmax` (softmax(x + 1e-9), a work-around for
    an XLA bug on some GPUs) is softmax(x): the same probabilities without a pass over
    the scores. Patched in the families' modules that are imported."""
    modules = [sys.modules[name] for name in FAMILY_MODULES if name in sys.modules]
    originals = [module.stable_softmax for module in modules]
    try:
        for module in modules:
            module.stable_softmax = _softmax
        yield
    finally:
        for module, original in zip(modules, originals):
            module.stable_softmax = original


def _softmax(logits: tf.Tensor, axis: int = -1, name: str | None = None) -> tf.Tensor:
    return tf.nn.softmax(logits, axis=axis, name=name)


def _output_block_inference(block, hidden_states: tf.Tensor, input_tensor: tf.Tensor,
                            training=False) -> tf.Tensor:
    """An output block's call in inference (dropout off): LayerNorm(dense(hidden_states)
    + input_tensor), the product, bias and residual on 2-D views."""
    dense = block.dense
    if (training or not isinstance(hidden_states, tf.Tensor)
            or not isinstance(input_tensor, tf.Tensor) or hidden_states.shape.rank is None
            or hidden_states.shape[-1] is None or not isinstance(dense, keras.layers.Dense)
            or dense.activation is not keras.activations.linear or not dense.use_bias):
        return type(block).call(block, hidden_states, input_tensor, training=training)
    summed = (_flat_product(dense, hidden_states)
              + tf.reshape(tf.cast(input_tensor, dense.compute_dtype), [-1, dense.units]))
    return block.LayerNorm(tf.reshape(summed, tf.shape(input_tensor)))


def residual_adds_in_products(model: keras.Model) -> contextlib.AbstractContextManager:
    """While tracing, BERT-style output blocks add the residual to their Dense layer's
    2-D product: MatMul -> BiasAdd -> Add, which grappler's remapper fuses into one
    oneDNN MatMul. The same arithmetic in inference; yields how many blocks do."""
    return instance_calls_replaced(
        [block for block in model.submodules if type(block).__name__ in RESIDUAL_NORM_BLOCKS],
        _output_block_inference)


@contextlib.contextmanager
def activations_in_dense_layers(model: keras.Model) -> Iterator[int]:
    """While tracing, each feed-forward block applies its activation inside its Dense layer.

    The same arithmetic; with `flat_dense_products` the activation then runs on
    the 2-D product, before the reshape. Yields how many blocks were changed.
    """
    moved = []
    for block in model.submodules:
        for dense_name, activation_name in FEED_FORWARD_ACTIVATIONS:
            dense_layer = getattr(block, dense_name, None)
            activation = getattr(block, activation_name, None)
            if (isinstance(dense_layer, keras.layers.Dense) and callable(activation)
                    and dense_layer.activation is keras.activations.linear):
                moved.append((block, dense_layer, activation_name, activation))
                dense_layer.activation = activation
                setattr(block, activation_name, tf.identity)
    try:
        yield len(moved)
    finally:
        for block, dense_layer, activation_name, activation in moved:
            setattr(block, activation_name, activation)
            dense_layer.activation = keras.activations.linear


def _inference(model: keras.Model) -> Forward:
    """features -> model(features) in inference mode."""
    def infer(features: dict[str, tf.Tensor]) -> tf.Tensor:
        return model(features, training=False)

    return infer


def weight_bytes(model: keras.Model) -> int:
    """Bytes of the model's weights."""
    return sum(weight.shape.num_elements() * weight.dtype.size for weight in model.weights)


def serving_forward(model: keras.Model, feature_names: list[str]) -> tuple[Forward, bool]:
    """The model's inference pass over int32 [batch, length] features, and whether it is frozen.

    Frozen (weights as constants, dense products flattened) unless the weights
    exceed MAX_FROZEN_WEIGHT_BYTES; then the model itself, whose variables the
    SavedModel must keep.
    """
    size = weight_bytes(model)
    if size > MAX_FROZEN_WEIGHT_BYTES:
        logging.warning("The model's weights take %.1f GiB, more than saved_model.pb can hold "
                        "as constants: serving reads them from variables (slower in bf16)",
                        size / (1 << 30))
        return _inference(model), False
    frozen = frozen_forward(model, feature_names)
    return (lambda features: frozen(**features)[0]), True


def frozen_forward(model: keras.Model, feature_names: list[str]):
    """The model's inference pass traced with fusable products, its weights as constants.

    A ConcreteFunction of int32 [batch, length] features (keyword arguments)
    returning a list holding the logits.
    """
    spec = {name: tf.TensorSpec([None, None], tf.int32, name=name) for name in feature_names}
    with (flat_dense_products(), activations_in_dense_layers(model),
          residual_adds_in_products(model), attention_scales_in_queries(model),
          unshifted_softmaxes()):
        traced = tf.function(_inference(model)).get_concrete_function(spec)
    return convert_variables_to_constants_v2(traced)
