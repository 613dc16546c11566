"""QQP is symmetric: (q1, q2) and (q2, q1) are the same question pair.

The fine-tuned model reads one order, [CLS] q1 [SEP] q2 [SEP] (RoBERTa:
<s> q1 </s></s> q2 </s>). With
`pair_order: both` it trains on each pair in a random order (a fresh coin per
pair and step, like a random flip of an image: no extra compute) and the
exported model scores the mean logit of both orders, so the score does not
depend on which question comes first. The swap rearranges the tokens Transform
already produced ([CLS] q2 [SEP] q1 [SEP], segment ids to match); no second
tokenization is needed in training or serving.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from components.features import PAIR_FEATURES


def swap_pair_order(features: dict[str, tf.Tensor], separators: int = 1
                    ) -> dict[str, tf.Tensor]:
    """start a sep.. b end -> start b sep.. a end, row by row of a padded batch.

    BERT: [CLS] a [SEP] b [SEP] -> [CLS] b [SEP] a [SEP]; RoBERTa (separators=2):
    <s> a </s></s> b </s> -> <s> b </s></s> a </s>. `features` holds the padded
    `input_ids`, `attention_mask` and `token_type_ids` ([batch, length]); the token
    types are the segment index (0 up to the separators, then 1), which locates a and b.
    Padding stays where it is and the mask is unchanged.
    """
    input_ids, mask, segments = (features[name] for name in PAIR_FEATURES)
    real = tf.cast(mask > 0, tf.int32)
    # One start token ([CLS], <s>) and one end token ([SEP], </s>) in every family.
    first = tf.reduce_sum(real * tf.cast(tf.equal(segments, 0), tf.int32), axis=1,
                          keepdims=True) - 1 - separators  # tokens of a
    total = tf.reduce_sum(real, axis=1, keepdims=True)  # 2 + separators + len(a) + len(b)
    second = total - first - 2 - separators  # tokens of b
    position = tf.range(tf.shape(input_ids)[1])[tf.newaxis, :]
    source = tf.where(position == 0, 0,  # the start token
             tf.where(position <= second, position + first + separators,  # b
             tf.where(position <= second + separators, position + first - second,  # separators
             tf.where(position < total - 1, position - second - separators,  # a
                      position))))  # the end token and the padding stay in place
    swapped_segments = tf.where((position > second + separators) & (position < total), 1, 0)
    return {"input_ids": tf.gather(input_ids, source, batch_dims=1),
            "attention_mask": tf.identity(mask),
            "token_type_ids": tf.cast(swapped_segments, segments.dtype)}


class RandomPairOrder(keras.layers.Layer):
    """In training, swaps the two questions of each pair with probability 1/2; else identity."""

    def __init__(self, separators: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.separators = separators

    def get_config(self) -> dict:
        return {**super().get_config(), "separators": self.separators}

    def call(self, features: dict[str, tf.Tensor], training: bool | None = None
             ) -> dict[str, tf.Tensor]:
        if not training:
            return features
        swapped = swap_pair_order(features, self.separators)
        coin = tf.random.uniform([tf.shape(features["input_ids"])[0], 1]) < 0.5
        return {name: tf.where(coin, swapped[name], features[name]) for name in PAIR_FEATURES}


def order_averaged(classifier: keras.Model, separators: int = 1) -> keras.Model:
    """The classifier scoring the mean logit of (q1, q2) and (q2, q1), in one batch."""
    inputs = {name: keras.Input(shape=(None,), dtype=tf.int32, name=name)
              for name in PAIR_FEATURES}
    swapped = swap_pair_order(inputs, separators)
    both = {name: tf.concat([inputs[name], swapped[name]], axis=0) for name in PAIR_FEATURES}
    given, other = tf.split(classifier(both, training=False), 2, axis=0)
    return keras.Model(inputs=inputs, outputs=(given + other) / 2.0, name="qqp_both_orders")
