"""The two models: the fine-tuned pair classifier and the not-fine-tuned cosine scorer.

Both map int token features to one logit, P(duplicate) = sigmoid(logit), so
they export, serve and evaluate alike.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from components.features import PAIR_FEATURES, QUESTIONS
from components.pair_order import RandomPairOrder

POOLINGS = ("mean", "cls", "pooler")
COSINE_TO_LOGIT = "cosine_to_logit"


class MaskedMeanPooling(keras.layers.Layer):
    """Mean of the token states, ignoring padding."""

    def call(self, hidden_states: tf.Tensor, attention_mask: tf.Tensor) -> tf.Tensor:
        mask = tf.cast(attention_mask, hidden_states.dtype)[:, :, tf.newaxis]
        total = tf.reduce_sum(hidden_states * mask, axis=1)
        return total / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)


class CosineSimilarity(keras.layers.Layer):
    """Cosine of two batches of vectors (each L2-normalised first)."""

    def call(self, first: tf.Tensor, second: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(tf.math.l2_normalize(first, axis=-1)
                             * tf.math.l2_normalize(second, axis=-1), axis=-1)


def _token_inputs(names: tuple[str, ...]) -> dict[str, keras.Input]:
    return {name: keras.Input(shape=(None,), dtype=tf.int32, name=name) for name in names}


def build_classifier(encoder: keras.layers.Layer, pooling: str = "mean",
                     dropout: float = 0.1, random_pair_order: bool = False) -> keras.Model:
    """Returns the fine-tuned model: pair token features -> duplicate logit.

    `pooling` picks the pair representation: the masked mean of the token states
    (default; all-MiniLM-L6-v2 was trained for mean pooling), the [CLS] state,
    or BERT's pooler output. With `random_pair_order`, training sees each pair in
    a random order (`components.pair_order`).
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    inputs = _token_inputs(PAIR_FEATURES)
    pair = RandomPairOrder(name="random_pair_order")(inputs) if random_pair_order else inputs
    encoded = encoder(input_ids=pair["input_ids"], attention_mask=pair["attention_mask"],
                      token_type_ids=pair["token_type_ids"])
    if pooling == "mean":
        pooled = MaskedMeanPooling(name="mean_pooling")(encoded.last_hidden_state,
                                                       pair["attention_mask"])
    elif pooling == "cls":
        pooled = encoded.last_hidden_state[:, 0]
    else:
        pooled = encoded.pooler_output
    hidden = keras.layers.Dropout(dropout, name="head_dropout")(pooled)
    logit = keras.layers.Dense(1, name="classifier", dtype="float32")(hidden)
    return keras.Model(inputs=inputs, outputs=tf.squeeze(logit, axis=-1), name="qqp_classifier")


def build_cosine_scorer(encoder: keras.layers.Layer) -> tuple[keras.Model, keras.Model]:
    """The pretrained encoder used as its authors intended, with no training on pairs.

    Each question is encoded alone; the score is the cosine of the two
    mask-aware mean-pooled, L2-normalised embeddings. Returns (scorer, cosine):
    `scorer` maps question features to a logit through the monotone map
    `COSINE_TO_LOGIT` (a 1x1 Dense layer, set by the caller); `cosine` is the
    same graph up to the cosine, for fitting that map.
    """
    encoder.trainable = False
    inputs = _token_inputs(tuple(f"{question}_{name}" for question in QUESTIONS
                                 for name in ("input_ids", "attention_mask")))
    embeddings = []
    for question in QUESTIONS:
        ids, mask = inputs[f"{question}_input_ids"], inputs[f"{question}_attention_mask"]
        states = encoder(input_ids=ids, attention_mask=mask, token_type_ids=tf.zeros_like(ids),
                         training=False).last_hidden_state
        embeddings.append(MaskedMeanPooling(name=f"{question}_mean_pooling")(states, mask))
    cosine = CosineSimilarity(name="cosine")(*embeddings)
    logit = keras.layers.Dense(1, name=COSINE_TO_LOGIT)(cosine[:, tf.newaxis])
    scorer = keras.Model(inputs=inputs, outputs=tf.squeeze(logit, axis=-1),
                         name="not_fine_tuned_cosine")
    return scorer, keras.Model(inputs=inputs, outputs=cosine, name="cosine")
