"""Exports a trained model as a SavedModel that serves raw text.

Signatures:
- `serving_default(examples)`: serialized raw tf.Examples -> probability, label
- `predict_text(question1, question2)`: raw strings -> probability, label
- `classification(inputs)`: serialized raw tf.Examples -> classes (b"0", b"1") and
  scores (1 - probability, probability), with TF Serving's classify method name,
  so that its Classify API (`:classify` over REST) serves it
- `transform_features(examples)`: raw tf.Examples -> transformed features (for TFMA)
Bad requests fail inside the graph with an InvalidArgument error in words (TF
Serving returns it; components.export.requests).
The model's own input names pick its features among Transform's outputs, so the
fine-tuned classifier and the not-fine-tuned cosine scorer export alike.
Inside the signatures, a batch is sorted by length and run in sub-batches, each
padded only to its own longest example; results come back in the caller's order.
The model runs as components.kernels.serving_graph traces it (dense products
flattened), its weights in variables (`variables/`) that each request reads
once, before its sub-batches: under the bf16 rewrite each weight is cast once
per request. Only the signatures and those variables are saved, in a plain
tf.Module (no Keras model). Loading the model needs only `tensorflow` and
`import tensorflow_text`.
"""

from __future__ import annotations

import os

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.saved_model import fingerprinting_utils

from components.export.requests import assert_as_many, parse_questions
from components.features import DECISION_THRESHOLD, LABEL, QUESTIONS
from components.kernels.serving_graph import Forward, serving_forward
from components.tensors import dense, ragged

# Pairs per length-sorted sub-batch inside the serving signatures.
SUB_BATCH_SIZE = 16
_EXAMPLES_SPEC = tf.TensorSpec([None], tf.string, name="examples")
CLASSIFY_SIGNATURE = "classification"
CLASSES = (b"0", b"1")  # the classify signature's class names: not duplicate, duplicate


def logits_in_length_order(model: Forward, features: dict[str, tf.RaggedTensor],
                           sub_batch_size: int = SUB_BATCH_SIZE) -> tf.Tensor:
    """model(features) for a ragged batch, computed in length-sorted, per-padded sub-batches.

    `model` maps int32 [batch, length] features to logits in inference mode: a
    Keras model or a serving forward pass on weights read before the loop
    (`ServingForward.with_weights`, components.kernels.serving_graph).

    Equals running the model on the whole batch padded to its longest example
    (padding is masked), in the caller's order, with far less padding.
    """
    lengths = tf.add_n([value.row_lengths() for name, value in features.items()
                        if name.endswith("input_ids")])
    order = tf.argsort(lengths, stable=True)
    sorted_features = {name: tf.gather(value, order) for name, value in features.items()}
    count = tf.shape(order)[0]
    chunks = (count + sub_batch_size - 1) // sub_batch_size

    def body(index: tf.Tensor, results: tf.TensorArray) -> tuple[tf.Tensor, tf.TensorArray]:
        start = index * sub_batch_size
        end = tf.minimum(start + sub_batch_size, count)
        batch = {name: tf.cast(value[start:end].to_tensor(), tf.int32)
                 for name, value in sorted_features.items()}
        logits = tf.cast(tf.reshape(model(batch), [-1]), tf.float32)
        return index + 1, results.write(index, logits)

    _, results = tf.while_loop(
        lambda index, _: index < chunks, body,
        (tf.constant(0), tf.TensorArray(tf.float32, size=chunks, infer_shape=False)))
    sorted_logits = tf.cond(count > 0, lambda: tf.reshape(results.concat(), [-1]),
                            lambda: tf.zeros([0], tf.float32))  # an empty batch has no chunks
    return tf.scatter_nd(order[:, tf.newaxis], sorted_logits, [count])


def _set_method_names(export_dir: str, method_names: dict[str, str]) -> None:
    """Rewrites the saved signatures' method names (TF2 saves every one as predict).

    TF Serving's Classify and Regress APIs accept only signatures with their method
    names. The fingerprint, a checksum of `saved_model.pb`, is written anew.
    """
    path = os.path.join(export_dir, "saved_model.pb")
    with tf.io.gfile.GFile(path, "rb") as stream:
        saved_model = saved_model_pb2.SavedModel.FromString(stream.read())
    for meta_graph in saved_model.meta_graphs:
        for key, method_name in method_names.items():
            meta_graph.signature_def[key].method_name = method_name
    with tf.io.gfile.GFile(path, "wb") as stream:
        stream.write(saved_model.SerializeToString(deterministic=True))
    fingerprinting_utils.write_fingerprint(export_dir)


def export_serving_model(model: keras.Model, tft_output: tft.TFTransformOutput,
                         export_dir: str, sub_batch_size: int = SUB_BATCH_SIZE) -> None:
    """Saves `model`'s serving forward pass with the transform graph and the four signatures."""
    module = tf.Module()
    module.tft_layer = tft_output.transform_features_layer()
    raw_spec = tft_output.raw_feature_spec()
    feature_names = list(model.input_names)
    module.forward = serving_forward(model, feature_names)  # its variables: the weights

    # One traced graph of tokenizer and model, which every scoring signature calls.
    @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.string)] * len(QUESTIONS))
    def predict_questions(question1: tf.Tensor, question2: tf.Tensor) -> dict[str, tf.Tensor]:
        transformed = module.tft_layer({"question1": question1, "question2": question2})
        features = {name: ragged(transformed[name]) for name in feature_names}
        # The weights are read once per request, outside the sub-batches' loop.
        forward = module.forward.with_weights(module.forward.read_weights())
        probability = tf.sigmoid(logits_in_length_order(forward, features, sub_batch_size))
        return {"probability": probability,
                "label": tf.cast(probability >= DECISION_THRESHOLD, tf.int64)}

    @tf.function(input_signature=[_EXAMPLES_SPEC])
    def serve_examples(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        return predict_questions(*parse_questions(examples))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=name)
                                  for name in QUESTIONS])
    def predict_text(question1: tf.Tensor, question2: tf.Tensor) -> dict[str, tf.Tensor]:
        # The check guards the inputs and the outputs, not the call, which grappler can
        # then inline. Grappler computes shapes past control dependencies, so the
        # tokenizer sees as many of each to keep its own shape check from failing first.
        check = assert_as_many(question1, question2)
        pairs = tf.minimum(tf.size(question1), tf.size(question2))
        with tf.control_dependencies([check]):
            question1, question2 = (tf.reshape(questions[:pairs], [-1, 1])
                                    for questions in (question1, question2))
        outputs = predict_questions(question1, question2)
        with tf.control_dependencies([check]):
            return {name: tf.identity(value) for name, value in outputs.items()}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string,
                                                name=tf.saved_model.CLASSIFY_INPUTS)])
    def classify(inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        probability = serve_examples(inputs)["probability"]
        return {tf.saved_model.CLASSIFY_OUTPUT_CLASSES:
                    tf.tile(tf.constant([CLASSES]), [tf.size(probability), 1]),
                tf.saved_model.CLASSIFY_OUTPUT_SCORES: tf.stack([1 - probability, probability], 1)}

    @tf.function(input_signature=[_EXAMPLES_SPEC])
    def transform_features(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        raw_features = tf.io.parse_example(examples, {
            name: spec for name, spec in raw_spec.items() if name in QUESTIONS + (LABEL,)})
        return {name: dense(value) for name, value in module.tft_layer(raw_features).items()}

    tf.saved_model.save(module, export_dir, signatures={
        "serving_default": serve_examples, "predict_text": predict_text,
        CLASSIFY_SIGNATURE: classify, "transform_features": transform_features})
    _set_method_names(export_dir, {CLASSIFY_SIGNATURE: tf.saved_model.CLASSIFY_METHOD_NAME})
