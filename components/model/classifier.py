"""The two models: the fine-tuned pair classifier and the not-fine-tuned cosine scorer.

Both map int token features to one logit, P(duplicate) = sigmoid(logit), so
they export, serve and evaluate alike.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from components.families.table import FAMILIES, Family, with_pooler
from components.features import PAIR_FEATURES, QUESTIONS
from components.model.pair_order import RandomPairOrder

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


def encoder_family(encoder: keras.layers.Layer) -> Family:
    """The `components.families.table.Family` of a transformers TF encoder (from its config)."""
    model_type = encoder.config.model_type
    if model_type not in FAMILIES:
        raise ValueError(f"encoder model_type {model_type!r} is not supported; supported: "
                         f"{', '.join(FAMILIES)}")
    return FAMILIES[model_type]


def takes_token_types(encoder: keras.layers.Layer) -> bool:
    """Whether the encoder is given token_type_ids.

    Only families whose encoder has token type embeddings, and only with more than
    one type (DeBERTa-v3 has `type_vocab_size` 0; with one type every id is 0 anyway,
    and a pair's second-segment 1 would be out of range).
    """
    return (encoder_family(encoder).uses_token_types
            and getattr(encoder.config, "type_vocab_size", 0) > 1)


def encode(encoder: keras.layers.Layer, input_ids: tf.Tensor, attention_mask: tf.Tensor,
           token_type_ids: tf.Tensor | None = None, **kwargs):
    """Calls a transformers TF encoder of any family with the features it takes.

    `token_type_ids` are passed only where `takes_token_types`; they are dropped
    otherwise (DistilBERT's call does not accept them).
    """
    features = {"input_ids": input_ids, "attention_mask": attention_mask}
    if token_type_ids is not None and takes_token_types(encoder):
        features["token_type_ids"] = token_type_ids
    return encoder(**features, **kwargs)


def _token_inputs(names: tuple[str, ...]) -> dict[str, keras.Input]:
    return {name: keras.Input(shape=(None,), dtype=tf.int32, name=name) for name in names}


def build_classifier(encoder: keras.layers.Layer, pooling: str = "mean",
                     dropout: float = 0.1, random_pair_order: bool = False) -> keras.Model:
    """Returns the fine-tuned model: pair token features -> duplicate logit.

    `pooling` picks the pair representation: the masked mean of the token states
    (default; all-MiniLM-L6-v2 was trained for mean pooling), the first token's
    state ([CLS], <s>), or the encoder's pooler output (only families with a
    pooler: bert, albert, roberta). The encoder is any family's transformers TF
    model (`components.families.table`); the inputs are the same for all of them, and
    token_type_ids reach only encoders that take them (`takes_token_types`). With
    `random_pair_order`, training sees each pair in a random order
    (`components.model.pair_order`).
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    family = encoder_family(encoder)
    if pooling == "pooler" and not family.has_pooler:
        raise ValueError(f"pooling 'pooler' needs an encoder with a pooler "
                         f"({', '.join(with_pooler())}); {family.model_type} has none")
    inputs = _token_inputs(PAIR_FEATURES)
    pair = (RandomPairOrder(family.pair_separators, name="random_pair_order")(inputs)
            if random_pair_order else inputs)
    encoded = encode(encoder, pair["input_ids"], pair["attention_mask"], pair["token_type_ids"])
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
        states = encode(encoder, ids, mask, tf.zeros_like(ids), training=False).last_hidden_state
        embeddings.append(MaskedMeanPooling(name=f"{question}_mean_pooling")(states, mask))
    cosine = CosineSimilarity(name="cosine")(*embeddings)
    logit = keras.layers.Dense(1, name=COSINE_TO_LOGIT)(cosine[:, tf.newaxis])
    scorer = keras.Model(inputs=inputs, outputs=tf.squeeze(logit, axis=-1),
                         name="not_fine_tuned_cosine")
    return scorer, keras.Model(inputs=inputs, outputs=cosine, name="cosine")
