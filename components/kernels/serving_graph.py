"""The classifier's forward pass as the serving signatures run it.

Changes to how the Keras model is traced, exact in float32 or within its rounding, for
speed where grappler's oneDNN bf16 rewrite runs (components.precision.scoring):
- **Weights read once per request.** The traced pass takes its weights as
  arguments (`ServingForward`); the SavedModel keeps them as variables, which
  the signatures read once per request, outside their loop over length-sorted
  sub-batches, and the pass's operations are imported into that loop's body (not
  called as a function), so the rewrite's float32 -> bf16 cast of each weight
  runs once per request, not at every sub-batch. Values computed from the
  weights alone (the query kernels times the attention scale) are computed at
  export: the variables hold them. The SavedModel stays one float32 artifact
  for any CPU, its weights in `variables/` (not in `saved_model.pb`: a loaded
  version holds them about once, where graph constants were copied many times).
- **Flat dense products.** Keras' Dense computes a [batch, length, width] input
  as Reshape -> MatMul -> Reshape -> BiasAdd (`tf.tensordot`); here it is
  Reshape -> MatMul -> BiasAdd [-> activation] -> Reshape, each feed-forward
  block's activation (GELU) moves into its first Dense layer, and BERT-style
  output blocks add their residual to the 2-D product: the patterns grappler's
  remapper fuses into one oneDNN MatMul with its bias and residual add (and
  GELU, outside control flow: not inside the sub-batches' loop).
- **Fewer passes over the attention scores** (within float32 rounding): the
  1 / sqrt(head size) scale is folded into the query weights, and transformers'
  `stable_softmax` (softmax(x + 1e-9)) is plain softmax.
Speed and memory of a loaded version, against weights frozen as constants, are
measured in docs/performance.md (benchmarks/serving_memory.py).
"""

from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator

import numpy as np
import tensorflow as tf
import tf_keras as keras
from tensorflow.core.framework import graph_pb2
from tensorflow.python.eager import wrap_function
from tensorflow.python.framework import op_def_registry
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from components.families.encoder_blocks import (FAMILY_MODULES, FEED_FORWARD_ACTIVATIONS,
                                                RESIDUAL_NORM_BLOCKS)
from components.kernels.layer_calls import class_call_replaced, instance_calls_replaced

Forward = Callable[[dict[str, tf.Tensor]], tf.Tensor]


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


def _traced_forward(model: keras.Model, feature_names: list[str]):
    """The model's inference pass traced with fusable products (reading its variables)."""
    spec = {name: tf.TensorSpec([None, None], tf.int32, name=name) for name in feature_names}
    with (flat_dense_products(), activations_in_dense_layers(model),
          residual_adds_in_products(model), attention_scales_in_queries(model),
          unshifted_softmaxes()):
        return tf.function(_inference(model)).get_concrete_function(spec)


class ServingForward(tf.Module):
    """The serving forward pass with its weights as arguments, and those weights as variables.

    The caller reads the weights once (`read_weights`) and runs the pass on any
    number of sub-batches with them (`with_weights`). The pass's operations are
    imported into the caller's graph, not called as a function, so that grappler
    sees each weight read and its uses together: the bf16 rewrite then casts a
    weight where it is read, once per request, not at every sub-batch.
    """

    def __init__(self, graph_def, feature_names: list[str], output: str,
                 weights: list[np.ndarray], arguments: list[int]):
        super().__init__(name="serving_forward")
        self.weights = [tf.Variable(value, trainable=False, name=f"weight_{index}")
                        for index, value in enumerate(weights)]
        self.feature_names = tuple(feature_names)
        self._graph_def = self._no_dependency(graph_def)
        self._output = output
        self._arguments = tuple(arguments)  # which weight each weight argument takes
        self._with_own_weights = self._no_dependency(tf.function(
            lambda features: self.with_weights(self.read_weights())(features),
            reduce_retracing=True))

    @property
    def graph_def(self):
        """The pass's operations: features and weights in (placeholders), logits out."""
        return self._graph_def

    def read_weights(self) -> list[tf.Tensor]:
        """The weights' values, to read once and pass to `with_weights`."""
        return [weight.read_value() for weight in self.weights]

    def with_weights(self, values: list[tf.Tensor]) -> Forward:
        """The forward pass (int32 [batch, length] features -> logits) on weights `values`."""
        weights = {f"{_argument_name(position)}:0": values[index]
                   for position, index in enumerate(self._arguments)}

        def forward(features: dict[str, tf.Tensor]) -> tf.Tensor:
            inputs = {f"{name}:0": features[name] for name in self.feature_names}
            # tf.identity captures a weight read in an enclosing graph (the loop's body
            # reads the request's weights); import_graph_def alone would not.
            inputs.update((name, tf.identity(value)) for name, value in weights.items())
            return tf.graph_util.import_graph_def(
                self._graph_def, input_map=inputs,
                return_elements=[self._output], name="forward")[0]

        return forward

    def __call__(self, features: dict[str, tf.Tensor]) -> tf.Tensor:
        """The logits of `features`, the weights read for this call alone (eagerly too)."""
        return self._with_own_weights(features)


def serving_forward(model: keras.Model, feature_names: list[str]) -> ServingForward:
    """The model's inference pass over int32 [batch, length] features, as the signatures run it.

    Traced with fusable products and frozen (weights as constants); the weights
    then become arguments. Values computed from the weights alone (the query
    kernels times the attention scale) are computed here, once: the variables
    hold them (for DeBERTa also its relative positions' projections).
    """
    traced = _traced_forward(model, feature_names)
    weight_names = {tensor.op.name for tensor in traced.graph.internal_captures
                    if tensor.dtype == tf.resource}
    frozen = convert_variables_to_constants_v2(traced)
    graph_def = frozen.graph.as_graph_def()
    cuts = _weight_frontier(graph_def, weight_names)
    sources = sorted({_identity_source(graph_def, cut) for cut in cuts})
    arguments = [sources.index(_identity_source(graph_def, cut)) for cut in cuts]
    weights = wrap_function.function_from_graph_def(graph_def, [], sources)()
    for position, cut in enumerate(cuts):
        tensor = frozen.graph.get_tensor_by_name(cut)
        placeholder = graph_def.node.add(name=_argument_name(position), op="Placeholder")
        placeholder.attr["dtype"].type = tensor.dtype.as_datatype_enum
        placeholder.attr["shape"].shape.CopyFrom(tensor.shape.as_proto())
    _read_from(graph_def, {cut: _argument_name(position) for position, cut in enumerate(cuts)})
    (output,) = frozen.outputs
    used = _ancestors(graph_def, output.op.name)
    pruned = graph_pb2.GraphDef(versions=graph_def.versions, library=graph_def.library)
    pruned.node.extend(node for node in graph_def.node if node.name in used)
    if weight_names & used:
        raise ValueError(f"the serving forward pass still holds weights "
                         f"{sorted(weight_names & used)[:3]} as constants")
    return ServingForward(pruned, [name for name in feature_names if name in used],
                          output.name, [value.numpy() for value in weights], arguments)


def _weight_frontier(graph_def, weight_names: set[str]) -> list[str]:
    """The tensors computed from weights (and constants) alone that the rest of the pass reads.

    Control inputs from such nodes (tf.function's ordering of the variable reads)
    are removed from `graph_def`: constants need no order.
    """
    nodes = {node.name: node for node in graph_def.node}
    kinds: dict[str, str] = {}  # node -> "weight" (from weights), "constant", or "live"
    for name in _topological_order(nodes):
        node = nodes[name]
        op_def = op_def_registry.get(node.op)
        inputs = {kinds[_node_name(source)] for source in node.input}
        if name in weight_names:
            kinds[name] = "weight"
        elif "live" in inputs:  # a constant in a branch of a cond too (its control input)
            kinds[name] = "live"
        elif node.op == "Const":
            kinds[name] = "constant"
        elif op_def is None or op_def.is_stateful or not node.input:
            kinds[name] = "live"
        else:
            kinds[name] = "weight" if "weight" in inputs else "constant"
    cuts: dict[str, None] = {}  # an ordered set
    for node in graph_def.node:
        ordering = [source for source in node.input
                    if source.startswith("^") and kinds[_node_name(source)] != "live"]
        for source in ordering:
            node.input.remove(source)
        if kinds[node.name] == "live":
            cuts.update((_tensor_name(source), None) for source in node.input
                        if kinds[_node_name(source)] == "weight")
    return list(cuts)


def _ancestors(graph_def, name: str) -> set[str]:
    """The node `name` and every node it reads or waits for, transitively."""
    inputs = {node.name: [_node_name(source) for source in node.input] for node in graph_def.node}
    found, waiting = set(), [name]
    while waiting:
        node = waiting.pop()
        if node not in found:
            found.add(node)
            waiting.extend(inputs[node])
    return found


def _argument_name(position: int) -> str:
    return f"weight_argument_{position}"


def _read_from(graph_def, replacements: dict[str, str]) -> None:
    """Nodes reading a tensor of `replacements` read its new node's output instead."""
    for node in graph_def.node:
        for index, source in enumerate(node.input):
            if not source.startswith("^") and _tensor_name(source) in replacements:
                node.input[index] = replacements[_tensor_name(source)]


def _tensor_name(source: str) -> str:
    return source if ":" in source else f"{source}:0"


def _identity_source(graph_def, tensor: str) -> str:
    """The tensor that `tensor` is an Identity (chain) of, or itself."""
    nodes = {node.name: node for node in graph_def.node}
    node = nodes[_node_name(tensor)]
    while node.op == "Identity":
        tensor = _tensor_name(node.input[0])
        node = nodes[_node_name(tensor)]
    return tensor


def _node_name(source: str) -> str:
    return source.lstrip("^").split(":")[0]


def _topological_order(nodes: dict) -> list[str]:
    """Node names, each after its inputs."""
    waiting = {name: {_node_name(source) for source in node.input}
               for name, node in nodes.items()}
    users: dict[str, list[str]] = {}
    for name, sources in waiting.items():
        for source in sources:
            users.setdefault(source, []).append(name)
    ready = [name for name, sources in waiting.items() if not sources]
    order = []
    while ready:
        name = ready.pop()
        order.append(name)
        for user in users.get(name, []):
            waiting[user].discard(name)
            if not waiting[user]:
                ready.append(user)
    if len(order) != len(nodes):
        raise ValueError("the forward pass's graph has a cycle")
    return order
