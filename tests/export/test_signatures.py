"""The serving signatures' length-sorted sub-batches give the plain batch's results, in order,
and in TF Serving's session a request reads (and under the bf16 rewrite casts) each weight once."""

from collections import Counter

import numpy as np
import tensorflow as tf
from transformers import BertConfig, TFBertModel

from components.export.signatures import logits_in_length_order
from components.kernels.serving_graph import serving_forward
from components.model.classifier import build_classifier
from components.precision.keras_policy import has_bf16_cpu
from components.serving.tf_serving_session import session_config


def _ragged_pairs(count: int, seed: int = 0) -> dict[str, tf.RaggedTensor]:
    rng = np.random.default_rng(seed)
    rows = [rng.integers(5, 200, size=int(length)).tolist()
            for length in rng.integers(3, 60, size=count)]
    input_ids = tf.ragged.constant(rows, dtype=tf.int64)
    return {"input_ids": input_ids, "attention_mask": tf.ones_like(input_ids),
            "token_type_ids": tf.zeros_like(input_ids)}


def test_sorted_sub_batches_equal_the_padded_batch_in_the_callers_order():
    tf.random.set_seed(0)
    model = build_classifier(TFBertModel(BertConfig(
        vocab_size=200, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64)))
    features = _ragged_pairs(37)
    padded = {name: tf.cast(value.to_tensor(), tf.int32) for name, value in features.items()}
    expected = model(padded, training=False).numpy()
    for sub_batch_size in (1, 8, 16, 64):
        logits = tf.function(logits_in_length_order)(model, features, sub_batch_size).numpy()
        np.testing.assert_allclose(logits, expected, atol=1e-5)
    # Distinct inputs give distinct logits, so equality above also proves the order.
    assert len(np.unique(expected.round(6))) == len(expected)
    empty = {name: value[:0] for name, value in features.items()}
    assert tf.function(logits_in_length_order)(model, empty, 16).shape == (0,)


def _saved_sub_batched_model(model, directory: str) -> None:
    """`model`'s serving forward pass run as the signatures run it: weights read once,
    then length-sorted sub-batches of 2 in a loop; a `logits` signature of padded ids."""
    forward = serving_forward(model, ["input_ids", "attention_mask", "token_type_ids"])

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int64, name="input_ids")])
    def logits(input_ids):
        ids = tf.RaggedTensor.from_tensor(input_ids, padding=0)
        features = {"input_ids": ids, "attention_mask": tf.ones_like(ids),
                    "token_type_ids": tf.zeros_like(ids)}
        run = forward.with_weights(forward.read_weights())
        return {"logits": logits_in_length_order(run, features, sub_batch_size=2)}

    module = tf.Module()
    module.forward = forward
    tf.saved_model.save(module, directory, signatures={"serving_default": logits})


def test_a_request_reads_and_casts_each_weight_once_in_tf_servings_session(tmp_path):
    tf.random.set_seed(0)
    model = build_classifier(TFBertModel(BertConfig(
        vocab_size=200, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64)))
    padded = _ragged_pairs(6)["input_ids"].to_tensor().numpy()
    directory = str(tmp_path / "model")
    _saved_sub_batched_model(model, directory)
    expected = model({"input_ids": tf.cast(padded, tf.int32),
                      "attention_mask": tf.cast(padded > 0, tf.int32),
                      "token_type_ids": tf.zeros_like(padded, tf.int32)}, training=False)
    for bf16 in (False, True):
        with tf.Graph().as_default(), tf.compat.v1.Session(config=session_config(bf16)) as session:
            signature = tf.compat.v1.saved_model.load(session, ["serve"], directory) \
                .signature_def["serving_default"]
            metadata = tf.compat.v1.RunMetadata()
            logits = session.run(
                signature.outputs["logits"].name, {signature.inputs["input_ids"].name: padded},
                options=tf.compat.v1.RunOptions(
                    trace_level=tf.compat.v1.RunOptions.FULL_TRACE), run_metadata=metadata)
        runs = Counter(node.timeline_label.split(" = ")[0] for device in metadata.step_stats
                       .dev_stats for node in device.node_stats
                       if " = ReadVariableOp(" in node.timeline_label
                       or ("CastToBf16" in node.node_name and "ReadVariableOp" in node.node_name))
        assert runs and set(runs.values()) == {1}  # once per request, not per sub-batch (3)
        if not bf16:
            np.testing.assert_allclose(logits, expected.numpy(), atol=1e-5)
        elif has_bf16_cpu():  # the rewrite casts the weights the products read, once each
            assert sum("CastToBf16" in name for name in runs) >= 4 * 2
