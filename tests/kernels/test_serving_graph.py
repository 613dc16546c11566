"""The serving forward pass: the model's own outputs, weights as constants, fusable products.

components.kernels.serving_graph traces every family's classifier with Dense products
flattened and the feed-forward activation inside them, then freezes it; these
tests check that the result computes what the Keras model computes, that its
graph has the patterns grappler fuses, and that the model is left as it was.
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


def _nodes(function) -> list:
    graph = function.graph.as_graph_def()
    return [*graph.node, *(node for f in graph.library.function for node in f.node_def)]


@pytest.mark.parametrize("model_type", FAMILY_TYPES)
def test_the_frozen_forward_pass_computes_the_models_logits(model_type: str):
    model = _classifier(model_type)
    features = _features(model)
    frozen = serving_graph.frozen_forward(model, list(model.input_names))
    np.testing.assert_allclose(frozen(**features)[0].numpy(),
                               model(features, training=False).numpy(), atol=1e-5)
    nodes = _nodes(frozen)
    assert not {node.op for node in nodes} & {"VarHandleOp", "ReadVariableOp"}
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
    serving_graph.frozen_forward(model, list(model.input_names))
    assert keras.layers.Dense.call is dense_call  # the tracing patches are undone
    assert modeling_tf_bert.stable_softmax is softmax
    assert head_sizes == [layer.sqrt_att_head_size for layer in model.submodules
                          if hasattr(layer, "sqrt_att_head_size")] != [1.0, 1.0]
    assert instance_calls == [vars(layer).get("call") for layer in model.submodules]
    np.testing.assert_array_equal(model(features, training=False).numpy(), before)


def test_a_model_too_big_to_freeze_is_served_from_its_variables(monkeypatch):
    model = _classifier("bert")
    features = _features(model)
    forward, frozen = serving_graph.serving_forward(model, list(model.input_names))
    assert frozen
    monkeypatch.setattr(serving_graph, "MAX_FROZEN_WEIGHT_BYTES", 1000)
    from_variables, frozen = serving_graph.serving_forward(model, list(model.input_names))
    assert not frozen
    np.testing.assert_allclose(forward(features).numpy(), from_variables(features).numpy(),
                               atol=1e-5)
