"""Exports a trained model as a SavedModel that serves raw text.

Signatures:
- `serving_default(examples)`: serialized raw tf.Examples -> probability, label
- `predict_text(question1, question2)`: raw strings -> probability, label
- `transform_features(examples)`: raw tf.Examples -> transformed features (for TFMA)
The model's own input names pick its features among Transform's outputs, so the
fine-tuned classifier and the not-fine-tuned cosine scorer export alike.
Inside the signatures, a batch is sorted by length and run in sub-batches, each
padded only to its own longest example; results come back in the caller's order.
Only the signatures are saved (no Keras layer traces). Loading the model needs
only `tensorflow` and `import tensorflow_text`.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from components.features import DECISION_THRESHOLD, LABEL, QUESTIONS
from components.tensors import dense, ragged

# Pairs per length-sorted sub-batch inside the serving signatures.
SUB_BATCH_SIZE = 16
_EXAMPLES_SPEC = tf.TensorSpec([None], tf.string, name="examples")


def logits_in_length_order(model: keras.Model, features: dict[str, tf.RaggedTensor],
                           sub_batch_size: int = SUB_BATCH_SIZE) -> tf.Tensor:
    """model(features) for a ragged batch, computed in length-sorted, per-padded sub-batches.

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
        logits = tf.cast(tf.reshape(model(batch, training=False), [-1]), tf.float32)
        return index + 1, results.write(index, logits)

    _, results = tf.while_loop(
        lambda index, _: index < chunks, body,
        (tf.constant(0), tf.TensorArray(tf.float32, size=chunks, infer_shape=False)))
    sorted_logits = tf.cond(count > 0, lambda: tf.reshape(results.concat(), [-1]),
                            lambda: tf.zeros([0], tf.float32))  # an empty batch has no chunks
    return tf.scatter_nd(order[:, tf.newaxis], sorted_logits, [count])


def export_serving_model(model: keras.Model, tft_output: tft.TFTransformOutput,
                         export_dir: str) -> None:
    """Saves `model` with the transform graph attached and the three signatures."""
    model.tft_layer = tft_output.transform_features_layer()
    raw_spec = tft_output.raw_feature_spec()
    question_spec = {name: raw_spec[name] for name in QUESTIONS}
    feature_names = list(model.input_names)

    # One traced graph of tokenizer and model, which both scoring signatures call.
    @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.string)] * len(QUESTIONS))
    def predict_questions(question1: tf.Tensor, question2: tf.Tensor) -> dict[str, tf.Tensor]:
        transformed = model.tft_layer({"question1": question1, "question2": question2})
        features = {name: ragged(transformed[name]) for name in feature_names}
        probability = tf.sigmoid(logits_in_length_order(model, features))
        return {"probability": probability,
                "label": tf.cast(probability >= DECISION_THRESHOLD, tf.int64)}

    @tf.function(input_signature=[_EXAMPLES_SPEC])
    def serve_examples(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        raw_features = tf.io.parse_example(examples, question_spec)
        return predict_questions(*(tf.reshape(raw_features[name], [-1, 1])
                                   for name in QUESTIONS))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=name)
                                  for name in QUESTIONS])
    def predict_text(question1: tf.Tensor, question2: tf.Tensor) -> dict[str, tf.Tensor]:
        return predict_questions(tf.reshape(question1, [-1, 1]), tf.reshape(question2, [-1, 1]))

    @tf.function(input_signature=[_EXAMPLES_SPEC])
    def transform_features(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        raw_features = tf.io.parse_example(examples, {
            name: spec for name, spec in raw_spec.items() if name in QUESTIONS + (LABEL,)})
        return {name: dense(value) for name, value in model.tft_layer(raw_features).items()}

    model.save(export_dir, save_format="tf", include_optimizer=False, save_traces=False,
               signatures={"serving_default": serve_examples,
                           "predict_text": predict_text,
                           "transform_features": transform_features})
