"""The duplicate-question classifier: a Hugging Face BERT encoder and a small head."""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

TOKEN_FEATURES = ("input_ids", "attention_mask", "token_type_ids")
POOLINGS = ("mean", "cls", "pooler")


class MaskedMeanPooling(keras.layers.Layer):
    """Mean of the token states, ignoring padding."""

    def call(self, hidden_states: tf.Tensor, attention_mask: tf.Tensor) -> tf.Tensor:
        mask = tf.cast(attention_mask, hidden_states.dtype)[:, :, tf.newaxis]
        total = tf.reduce_sum(hidden_states * mask, axis=1)
        return total / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)


def build_classifier(encoder: keras.layers.Layer, pooling: str = "mean",
                     dropout: float = 0.1, fine_tune_encoder: bool = True) -> keras.Model:
    """Returns a model from int token features to the duplicate logit.

    `pooling` picks the pair representation: the masked mean of the token states
    (default; all-MiniLM-L6-v2 was trained for mean pooling), the [CLS] state,
    or BERT's pooler output. With `fine_tune_encoder=False` only the head learns.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    inputs = {name: keras.Input(shape=(None,), dtype=tf.int32, name=name)
              for name in TOKEN_FEATURES}
    encoder.trainable = fine_tune_encoder
    # A frozen encoder also runs in inference mode (no dropout) while the head trains.
    encoder_mode = {} if fine_tune_encoder else {"training": False}
    encoded = encoder(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                      token_type_ids=inputs["token_type_ids"], **encoder_mode)
    if pooling == "mean":
        pooled = MaskedMeanPooling(name="mean_pooling")(encoded.last_hidden_state,
                                                       inputs["attention_mask"])
    elif pooling == "cls":
        pooled = encoded.last_hidden_state[:, 0]
    else:
        pooled = encoded.pooler_output
    hidden = keras.layers.Dropout(dropout, name="head_dropout")(pooled)
    logit = keras.layers.Dense(1, name="classifier")(hidden)
    return keras.Model(inputs=inputs, outputs=tf.squeeze(logit, axis=-1), name="qqp_classifier")
