"""The serving forward pass: the model's own outputs, weights as arguments, fusable products.

components.kernels.serving_graph traces every family's classifier with Dense products
flattened and the feed-forward activation inside them, then takes its weights
as arguments held in variables; these tests check that the result computes what
the Keras model computes, that its graph holds no weights and has the patterns
grappler fuses, that its variables hold the weights, and that the model is left
as it was.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from transformers.models.bert import modeling_tf_bert

from components.kernels import serving_graph
from components.model.classifier import build_classifier
from fixtures.families import FAMILY_TYPES
from fixtures.families.weights import tiny_model

VOCAB_SIZE = 100


def _classifier(model_type: str) -> keras.Model:
    return build_classifier(tiny_model(model_type, VOCAB_SIZE, pad_token_id=0))


def _features(model: keras.Model, seed: int = 0) -> dict[str, tf.Tensor]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 12, size=5)
    mask = (np.arange(12)[None, :] < lengths[:, None]).astype(np.int32)
    ids = rng.integers(5, VOCAB_SIZE, size=mask.shape).astype(np.int32) * mask
    values = {"input_ids": ids, "attention_mask": mask,
              "token_type_ids": (np.arange(12)[None, :] >= lengths[:, None] // 2) * mask}
    return {name: tf.constant(values[name], tf.int32) for name in model.input_names}


def _nodes(graph) -> list:
    return [*graph.node, *(node for f in graph.library.function for node in f.node_def)]


@pytest.mark.parametrize("model_type", FAMILY_TYPES)
def test_the_serving_forward_pass_computes_the_models_logits(model_type: str):
    model = _classifier(model_type)
    features = _features(model)
    forward = serving_graph.serving_forward(model, list(model.input_names))
    np.testing.assert_allclose(forward(features).numpy(),
                               model(features, training=False).numpy(), atol=1e-5)
    nodes = _nodes(forward.graph_def)
    assert not {node.op for node in nodes} & {"VarHandleOp", "ReadVariableOp"}
    constant_bytes = sum(node.attr["value"].tensor.ByteSize() for node in nodes
                         if node.op == "Const")
    assert constant_bytes < 0.05 * sum(weight.numpy().nbytes for weight in forward.weights)
    # Every product of a Dense layer feeds its BiasAdd directly (no Reshape between).
    consumers: dict[str, list[str]] = {}
    for node in nodes:
        for source in node.input:
            consumers.setdefault(source.split(":")[0].lstrip("^"), []).append(node.op)
    products = [node for node in nodes if node.op == "MatMul"]
    assert products and all(consumers[node.name] == ["BiasAdd"] for node in products)
    # The feed-forward activation (GELU) runs on a product's 2-D output, before the reshape.
    by_name = {node.name: node for node in nodes}

    def source(node, index: int = 0):
        return by_name[node.input[index].split(":")[0]]

    flattened = [node for node in nodes if node.op == "BiasAdd"
                 and source(source(node)).op == "Reshape"]  # Reshape -> MatMul -> BiasAdd
    assert any(set(consumers[node.name]) - {"Reshape"} for node in flattened)
    if model_type in ("bert", "roberta", "electra"):  # the residual added to the 2-D product
        assert sum(consumers[node.name] == ["AddV2"] for node in flattened) == 4
    # softmax(x), not transformers' stable_softmax(x) = softmax(x + 1e-9)
    shifts = [node for node in nodes if node.op == "Const" and node.attr["value"].tensor.dtype
              == tf.float32.as_datatype_enum and tf.make_ndarray(node.attr["value"].tensor).size == 1
              and float(tf.make_ndarray(node.attr["value"].tensor)) == np.float32(1e-9)]
    assert not shifts


def test_the_variables_hold_the_weights_with_the_attention_scale_in_the_queries():
    model = _classifier("bert")
    forward = serving_graph.serving_forward(model, list(model.input_names))
    held = [weight.numpy() for weight in forward.weights]
    (head_size_root,) = {layer.sqrt_att_head_size for layer in model.submodules
                         if hasattr(layer, "sqrt_att_head_size")}
    scale = np.float32(1 / head_size_root)
    queries = [weight for weight in model.weights if "/query/" in weight.name]
    expected = [weight.numpy() * (scale if "/query/" in weight.name else 1)
                for weight in model.weights if "pooler" not in weight.name]  # mean pooling
    assert len(held) == len(expected) and len(queries) == 4
    for value in expected:
        assert sum(array.shape == value.shape and np.array_equal(array, value)
                   for array in held) >= 1, value.shape


def test_the_weights_read_once_serve_every_sub_batch_of_a_loop():
    model = _classifier("bert")
    forward = serving_graph.serving_forward(model, list(model.input_names))
    batches = [_features(model, seed) for seed in range(3)]
    stacked = {name: tf.stack([batch[name] for batch in batches]) for name in batches[0]}

    @tf.function
    def logits_in_a_loop():
        run = forward.with_weights(forward.read_weights())
        return tf.map_fn(run, stacked, fn_output_signature=tf.float32)

    np.testing.assert_allclose(
        logits_in_a_loop().numpy(),
        [model(batch, training=False).numpy() for batch in batches], atol=1e-5)
    graph = logits_in_a_loop.get_concrete_function().graph.as_graph_def()
    loop_ops = {node.op for f in graph.library.function for node in f.node_def}
    assert "MatMul" in loop_ops and "ReadVariableOp" not in loop_ops  # read before the loop
    assert sum(node.op == "ReadVariableOp" for node in graph.node) == len(forward.weights)


def test_the_traced_model_is_left_as_it_was():
    model = _classifier("bert")
    features = _features(model)
    before = model(features, training=False).numpy()
    with serving_graph.activations_in_dense_layers(model) as moved:
        assert moved == 2  # one feed-forward block per layer
    blocks = [layer for layer in model.submodules if hasattr(layer, "intermediate_act_fn")]
    assert all(block.intermediate_act_fn is not tf.identity for block in blocks)
    assert all(block.dense.activation is keras.activations.linear for block in blocks)
    dense_call = keras.layers.Dense.call
    softmax = modeling_tf_bert.stable_softmax
    head_sizes = [layer.sqrt_att_head_size for layer in model.submodules
                  if hasattr(layer, "sqrt_att_head_size")]
    instance_calls = [vars(layer).get("call") for layer in model.submodules]
    serving_graph.serving_forward(model, list(model.input_names))
    assert keras.layers.Dense.call is dense_call  # the tracing patches are undone
    assert modeling_tf_bert.stable_softmax is softmax
    assert head_sizes == [layer.sqrt_att_head_size for layer in model.submodules
                          if hasattr(layer, "sqrt_att_head_size")] != [1.0, 1.0]
    assert instance_calls == [vars(layer).get("call") for layer in model.submodules]
    np.testing.assert_array_equal(model(features, training=False).numpy(), before)
