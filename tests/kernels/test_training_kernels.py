"""The training step's fused kernels compute what the layers they replace compute.

components.kernels.training swaps XLA-fused GELU and layer norm kernels and a
16-bit-draw dropout into the train step while Keras traces it. These tests check
each kernel and its gradient against the original, a whole classifier's
gradients for every family, and that the originals are back after tracing.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from components.families.encoder_blocks import RESIDUAL_NORM_BLOCKS, SELF_ATTENTION_BLOCKS
from components.kernels import fused_ops
from components.kernels import training as training_kernels
from components.model.classifier import build_classifier
from components.training.trainer import keras_policy
from fixtures.families import FAMILY_TYPES
from fixtures.families.weights import tiny_model

VOCAB_SIZE = 100


def _value_and_gradients(function, *inputs: tf.Tensor, upstream: tf.Tensor):
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = function(*inputs)
    return outputs, tape.gradient(outputs, inputs, output_gradients=upstream)


def test_bias_gelu_and_its_gradients_are_transformers_exact_gelu_of_the_sum():
    x = tf.random.stateless_normal([4, 7, 48], seed=[1, 2]) * 3
    bias = tf.random.stateless_normal([48], seed=[19, 20])
    upstream = tf.random.stateless_normal(x.shape, seed=[3, 4])
    expected, expected_gradients = _value_and_gradients(
        lambda x, bias: keras.activations.gelu(x + bias), x, bias, upstream=upstream)
    fused, fused_gradients = _value_and_gradients(fused_ops.bias_gelu, x, bias,
                                                  upstream=upstream)
    np.testing.assert_allclose(fused.numpy(), expected.numpy(), atol=1e-6)
    for fused_gradient, expected_gradient in zip(fused_gradients, expected_gradients):
        np.testing.assert_allclose(fused_gradient.numpy(), expected_gradient.numpy(),
                                   rtol=1e-5, atol=1e-5)


def test_bias_gelu_keeps_a_bf16_input_in_bf16_and_computes_in_float32():
    x = tf.cast(tf.random.stateless_normal([3, 5, 16], seed=[5, 6]) * 3, tf.bfloat16)
    bias = tf.cast(tf.random.stateless_normal([16], seed=[21, 22]), tf.bfloat16)
    fused = fused_ops.bias_gelu(x, bias)
    assert fused.dtype == tf.bfloat16
    exact = keras.activations.gelu(tf.cast(x, tf.float32) + tf.cast(bias, tf.float32))
    # One bf16 rounding of the float32 result: within half a bf16 step (2^-8 relative).
    np.testing.assert_allclose(tf.cast(fused, tf.float32).numpy(), exact.numpy(),
                               rtol=2 ** -8, atol=1e-6)


def test_layer_norm_and_its_gradients_are_keras_layer_normalization():
    layer = keras.layers.LayerNormalization(epsilon=1e-12)
    layer.build([None, None, 32])
    layer.gamma.assign(tf.random.stateless_normal([32], seed=[7, 8]))
    layer.beta.assign(tf.random.stateless_normal([32], seed=[9, 10]))
    x = tf.random.stateless_normal([4, 6, 32], seed=[11, 12]) * 5 + 2
    upstream = tf.random.stateless_normal(x.shape, seed=[13, 14])

    def with_layer(x, gamma, beta):  # the layer reads its own variables
        del gamma, beta
        return layer(x)

    inputs = (x, tf.convert_to_tensor(layer.gamma), tf.convert_to_tensor(layer.beta))
    fused, fused_gradients = _value_and_gradients(
        lambda x, gamma, beta: fused_ops.layer_norm(x, gamma, beta, 1e-12), *inputs,
        upstream=upstream)
    with tf.GradientTape() as tape:
        expected = with_layer(*inputs)
    expected_gradients = tape.gradient(expected, [layer.gamma, layer.beta],
                                       output_gradients=upstream)
    with tf.GradientTape() as tape:
        tape.watch(x)
        expected_x_gradient = tape.gradient(layer(x), x, output_gradients=upstream)
    np.testing.assert_allclose(fused.numpy(), expected.numpy(), atol=1e-5)
    np.testing.assert_allclose(fused_gradients[0].numpy(), expected_x_gradient.numpy(),
                               atol=1e-5)
    for fused_gradient, expected_gradient in zip(fused_gradients[1:], expected_gradients):
        np.testing.assert_allclose(fused_gradient.numpy(), expected_gradient.numpy(),
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rate", [0.1, 0.0])
def test_residual_layer_norm_is_layer_norm_of_the_dropped_out_sum(rate: float):
    x = tf.random.stateless_normal([60, 48], seed=[1, 2]) * 3
    bias = tf.random.stateless_normal([48], seed=[3, 4])
    residual = tf.random.stateless_normal([60, 48], seed=[5, 6])
    gamma = tf.random.stateless_normal([48], seed=[7, 8])
    beta = tf.random.stateless_normal([48], seed=[9, 10])
    upstream = tf.random.stateless_normal(x.shape, seed=[11, 12])
    threshold = round(rate * 65536)
    keep_bits = fused_ops.random_halves(tf.shape(x), seed=13)
    scale = tf.where(keep_bits >= threshold, 65536 / (65536 - threshold), 0.0)
    norm = keras.layers.LayerNormalization(epsilon=1e-12)
    norm.build(x.shape)
    norm.gamma.assign(gamma)
    norm.beta.assign(beta)
    inputs = (x, bias, residual, norm.gamma, norm.beta)
    expected, expected_gradients = _value_and_gradients(
        lambda x, bias, residual, _, __: norm((x + bias) * scale + residual), *inputs,
        upstream=upstream)
    fused, fused_gradients = _value_and_gradients(
        lambda *inputs: fused_ops.residual_layer_norm(
            *inputs[:3], keep_bits, *inputs[3:], threshold=threshold, epsilon=1e-12),
        *inputs, upstream=upstream)
    if rate:
        assert 0.05 < float(tf.reduce_mean(tf.cast(scale == 0, tf.float32))) < 0.15
    np.testing.assert_allclose(fused.numpy(), expected.numpy(), atol=2e-5)
    for name, got, want in zip(["x", "bias", "residual", "gamma", "beta"], fused_gradients,
                               expected_gradients):
        np.testing.assert_allclose(tf.convert_to_tensor(got).numpy(),
                                   tf.convert_to_tensor(want).numpy(), atol=2e-5,
                                   err_msg=name)


@pytest.mark.parametrize("rate", [0.1, 0.0])
def test_attention_dropout_is_dropout_of_the_softmax_of_the_scaled_masked_scores(rate: float):
    scores = tf.random.stateless_normal([3, 4, 9, 9], seed=[1, 2]) * 4
    mask = tf.constant([[[[0.0] * 7 + [-10000.0] * 2]], [[[0.0] * 9]], [[[0.0] * 5 + [-10000.0] * 4]]])
    upstream = tf.random.stateless_normal(scores.shape, seed=[3, 4])
    threshold = round(rate * 65536)
    keep_bits = fused_ops.random_halves(tf.shape(scores), seed=5)
    dropout_scale = tf.where(keep_bits >= threshold, 65536 / (65536 - threshold), 0.0)
    expected, (expected_gradient,) = _value_and_gradients(
        lambda scores: tf.nn.softmax(scores / 8 ** 0.5 + mask + 1e-9) * dropout_scale, scores,
        upstream=upstream)
    fused, (fused_gradient,) = _value_and_gradients(
        lambda scores: fused_ops.attention_dropout(scores, mask, keep_bits, 1 / 8 ** 0.5,
                                                          threshold), scores, upstream=upstream)
    np.testing.assert_allclose(fused.numpy(), expected.numpy(), atol=1e-6)
    np.testing.assert_allclose(fused_gradient.numpy(), expected_gradient.numpy(), atol=1e-6)
    assert float(tf.reduce_max(fused[..., 7:][0])) == 0.0  # masked keys get no attention


def test_the_fused_self_attention_blocks_compute_what_the_kernel_replaces():
    """SELF_ATTENTION_BLOCKS' calls are replaced by one function: each must run these lines."""
    # pylint: disable=import-outside-toplevel
    import inspect

    from transformers.models.bert import modeling_tf_bert
    from transformers.models.electra import modeling_tf_electra
    from transformers.models.roberta import modeling_tf_roberta

    statements = [
        "key_layer = self.transpose_for_scores(self.key(inputs=hidden_states), batch_size)",
        "value_layer = self.transpose_for_scores(self.value(inputs=hidden_states), batch_size)",
        "query_layer = self.transpose_for_scores(mixed_query_layer, batch_size)",
        "attention_scores = tf.matmul(query_layer, key_layer, transpose_b=True)",
        "dk = tf.cast(self.sqrt_att_head_size, dtype=attention_scores.dtype)",
        "attention_scores = tf.divide(attention_scores, dk)",
        "attention_scores = tf.add(attention_scores, attention_mask)",
        "attention_probs = stable_softmax(logits=attention_scores, axis=-1)",
        "attention_probs = self.dropout(inputs=attention_probs, training=training)",
        "attention_output = tf.matmul(attention_probs, value_layer)",
        "attention_output = tf.transpose(attention_output, perm=[0, 2, 1, 3])",
        "attention_output = tf.reshape(tensor=attention_output, shape=(batch_size, -1, "
        "self.all_head_size))"]
    modules = (modeling_tf_bert, modeling_tf_roberta, modeling_tf_electra)
    classes = [getattr(module, name) for name in SELF_ATTENTION_BLOCKS for module in modules
               if hasattr(module, name)]
    assert len(classes) == len(SELF_ATTENTION_BLOCKS)
    for cls in classes:
        lines = [" ".join(line.split()) for line in inspect.getsource(cls.call).splitlines()]
        positions = [lines.index(statement) for statement in statements]
        assert positions == sorted(positions), cls.__name__


def test_the_fused_output_blocks_all_run_the_same_call():
    """RESIDUAL_NORM_BLOCKS are replaced by one function: their sources must agree."""
    # pylint: disable=import-outside-toplevel
    import inspect

    from transformers.models.bert import modeling_tf_bert
    from transformers.models.electra import modeling_tf_electra
    from transformers.models.mpnet import modeling_tf_mpnet
    from transformers.models.roberta import modeling_tf_roberta

    modules = (modeling_tf_bert, modeling_tf_roberta, modeling_tf_electra, modeling_tf_mpnet)
    bodies = {name: inspect.getsource(getattr(module, name).call).split(":\n", 1)[1]
              for name in RESIDUAL_NORM_BLOCKS
              for module in modules if hasattr(module, name)}
    assert set(bodies) == set(RESIDUAL_NORM_BLOCKS)
    assert len(set(bodies.values())) == 1
    assert bodies["TFBertOutput"].split() == [
        "hidden_states", "=", "self.dense(inputs=hidden_states)",
        "hidden_states", "=", "self.dropout(inputs=hidden_states,", "training=training)",
        "hidden_states", "=", "self.LayerNorm(inputs=hidden_states", "+", "input_tensor)",
        "return", "hidden_states"]


def test_dropout_drops_at_the_rate_scales_exactly_and_masks_the_gradient_alike():
    x = tf.random.stateless_uniform([64, 100, 160], seed=[15, 16], minval=1.0, maxval=2.0)
    upstream = tf.random.stateless_uniform(x.shape, seed=[17, 18], minval=1.0, maxval=2.0)
    dropped, (gradient,) = _value_and_gradients(
        lambda x: fused_ops.dropout(x, 0.1, seed=3), x, upstream=upstream)
    kept = dropped.numpy() != 0
    threshold = round(0.1 * 65536)
    keep_probability = 1 - threshold / 65536
    # 1,024,000 draws: the kept fraction is within 5 standard deviations of P(keep).
    spread = 5 * np.sqrt(keep_probability * (1 - keep_probability) / kept.size)
    assert abs(kept.mean() - keep_probability) < spread
    np.testing.assert_allclose(dropped.numpy()[kept], x.numpy()[kept] / keep_probability,
                               rtol=1e-6)
    np.testing.assert_array_equal(gradient.numpy() != 0, kept)  # the forward pass's mask
    np.testing.assert_allclose(gradient.numpy()[kept],
                               upstream.numpy()[kept] / keep_probability, rtol=1e-6)
    again = fused_ops.dropout(x, 0.1, seed=3).numpy() != 0
    assert (again != kept).any()  # every call draws a new mask


def _classifier_gradients(model: keras.Model, features: dict[str, tf.Tensor],
                          labels: tf.Tensor) -> tuple[list[tf.Tensor], str]:
    loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)

    @tf.function
    def gradients(features, labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(features, training=True))
        return tape.gradient(loss, model.trainable_variables)

    concrete = gradients.get_concrete_function(features, labels)
    graph = concrete.graph.as_graph_def()
    names = " ".join([node.op for node in graph.node]
                     + [f.signature.name for f in graph.library.function])
    return gradients(features, labels), names


@pytest.mark.parametrize("model_type", FAMILY_TYPES)
def test_a_classifier_traced_with_the_kernels_has_the_same_gradients(model_type: str):
    model = build_classifier(tiny_model(model_type, VOCAB_SIZE, pad_token_id=0))
    for layer in model.submodules:  # dropout off: the two traces see the same function
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0
        if hasattr(layer, "drop_prob"):  # DeBERTa-v2's StableDropout
            layer.drop_prob = 0.0
    rng = np.random.default_rng(0)
    mask = (np.arange(10)[None, :] < rng.integers(3, 10, size=6)[:, None]).astype(np.int32)
    values = {"input_ids": rng.integers(5, VOCAB_SIZE, size=mask.shape) * mask,
              "attention_mask": mask, "token_type_ids": np.zeros_like(mask)}
    features = {name: tf.constant(values[name], tf.int32) for name in model.input_names}
    labels = tf.constant(rng.integers(0, 2, size=6), tf.float32)

    expected, plain_graph = _classifier_gradients(model, features, labels)
    with training_kernels.fused_training_kernels(model):
        fused, fused_graph = _classifier_gradients(model, features, labels)
    assert "layer_norm_forward" in fused_graph and "layer_norm_gradient" in fused_graph
    assert "layer_norm_forward" not in plain_graph
    if model_type != "albert":  # ALBERT's GELU is the tanh approximation: not replaced
        assert "bias_gelu_forward" in fused_graph and "bias_gelu_gradient" in fused_graph
    if model_type in ("bert", "roberta", "electra"):
        for kernel in ("residual_norm", "attention_dropout"):
            assert f"{kernel}_forward" in fused_graph and f"{kernel}_gradient" in fused_graph
    for variable, fused_gradient, expected_gradient in zip(model.trainable_variables, fused,
                                                           expected):
        if expected_gradient is None:
            assert fused_gradient is None, variable.name
            continue
        np.testing.assert_allclose(tf.convert_to_tensor(fused_gradient).numpy(),
                                   tf.convert_to_tensor(expected_gradient).numpy(),
                                   atol=2e-5, err_msg=variable.name)


def test_the_traced_train_step_draws_its_dropout_masks_in_16_bits():
    model = build_classifier(tiny_model("bert", VOCAB_SIZE, pad_token_id=0))
    features = {name: tf.ones([2, 6], tf.int32) for name in model.input_names}
    labels = tf.constant([0.0, 1.0])
    _, plain_graph = _classifier_gradients(model, features, labels)
    with training_kernels.fused_training_kernels(model):
        _, fused_graph = _classifier_gradients(model, features, labels)
    assert "RandomUniform " in plain_graph + " " and "RandomUniformInt" not in plain_graph
    assert "RandomUniformInt" in fused_graph and "RandomUniform " not in fused_graph + " "


def test_under_mixed_bfloat16_the_kernels_run_and_each_gradient_matches_its_weight():
    with keras_policy("mixed_bfloat16"):
        model = build_classifier(tiny_model("bert", VOCAB_SIZE, pad_token_id=0))
    features = {name: tf.ones([2, 6], tf.int32) for name in model.input_names}
    with training_kernels.fused_training_kernels(model):
        gradients, graph = _classifier_gradients(model, features, tf.constant([0.0, 1.0]))
    assert "bias_gelu_forward" in graph and "layer_norm_forward" in graph
    for variable, gradient in zip(model.trainable_variables, gradients):
        if gradient is not None:
            assert gradient.dtype == variable.dtype == tf.float32, variable.name
            assert np.isfinite(tf.convert_to_tensor(gradient).numpy()).all(), variable.name


def test_spatial_dropout_keeps_its_own_per_channel_masks():
    layer = keras.layers.SpatialDropout1D(0.5)
    with training_kernels.fused_training_kernels(keras.Sequential([layer])):
        dropped = tf.function(lambda x: layer(x, training=True))(tf.ones([4, 50, 8])).numpy()
    # Whole channels are dropped: each (example, channel) is one value along the time axis.
    assert (dropped == dropped[:, :1, :]).all() and (dropped == 0).any()


def _patched_state(model: keras.Model) -> tuple:
    blocks = [layer for layer in model.submodules if hasattr(layer, "intermediate_act_fn")]
    return (keras.layers.LayerNormalization.call, keras.layers.Dropout.call,
            [block.intermediate_act_fn for block in blocks],
            [vars(block.dense).get("call") for block in blocks])


def test_the_originals_are_back_after_the_context_and_after_an_error_in_it():
    model = build_classifier(tiny_model("bert", VOCAB_SIZE, pad_token_id=0))
    original = _patched_state(model)
    assert original[3] and not any(original[3])  # no instance `call` before
    with training_kernels.fused_training_kernels(model):
        patched = _patched_state(model)
        assert patched[0] is not original[0] and patched[1] is not original[1]
        assert all(activation is tf.identity for activation in patched[2])
        assert all(patched[3])
    assert _patched_state(model) == original
    with pytest.raises(RuntimeError, match="in the step"):
        with training_kernels.fused_training_kernels(model):
            raise RuntimeError("in the step")
    assert _patched_state(model) == original
