"""Exports the trained classifier as a SavedModel that serves raw text.

Signatures:
- `serving_default(examples)`: serialized raw tf.Examples -> probability, label
- `predict_text(question1, question2)`: raw strings -> probability, label
- `transform_features(examples)`: raw tf.Examples -> transformed features (for TFMA)
Loading it needs only `tensorflow` and `import tensorflow_text`.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from components.model import TOKEN_FEATURES
from components.transform import LABEL, QUESTIONS

DECISION_THRESHOLD = 0.5
_EXAMPLES_SPEC = tf.TensorSpec([None], tf.string, name="examples")


def _dense(value: tf.Tensor | tf.RaggedTensor) -> tf.Tensor:
    return value.to_tensor() if isinstance(value, tf.RaggedTensor) else value


def export_serving_model(model: keras.Model, tft_output: tft.TFTransformOutput,
                         export_dir: str) -> None:
    """Saves `model` with the transform graph attached and the three signatures."""
    model.tft_layer = tft_output.transform_features_layer()
    raw_spec = tft_output.raw_feature_spec()
    question_spec = {name: raw_spec[name] for name in QUESTIONS}

    def predict_raw(raw_features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        transformed = model.tft_layer(raw_features)
        inputs = {name: tf.cast(_dense(transformed[name]), tf.int32) for name in TOKEN_FEATURES}
        probability = tf.sigmoid(model(inputs, training=False))
        return {"probability": probability,
                "label": tf.cast(probability >= DECISION_THRESHOLD, tf.int64)}

    @tf.function(input_signature=[_EXAMPLES_SPEC])
    def serve_examples(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        return predict_raw(tf.io.parse_example(examples, question_spec))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=name)
                                  for name in QUESTIONS])
    def predict_text(question1: tf.Tensor, question2: tf.Tensor) -> dict[str, tf.Tensor]:
        return predict_raw({"question1": tf.reshape(question1, [-1, 1]),
                            "question2": tf.reshape(question2, [-1, 1])})

    @tf.function(input_signature=[_EXAMPLES_SPEC])
    def transform_features(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        raw_features = tf.io.parse_example(examples, {
            name: spec for name, spec in raw_spec.items() if name in QUESTIONS + (LABEL,)})
        return {name: _dense(value) for name, value in model.tft_layer(raw_features).items()}

    model.save(export_dir, save_format="tf", include_optimizer=False, signatures={
        "serving_default": serve_examples,
        "predict_text": predict_text,
        "transform_features": transform_features,
    })
