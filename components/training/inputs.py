"""The Trainers' input functions: tf.data pipelines over Transform's output.

Batches are padded to their own longest example, never to max_seq_length.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf
import tensorflow_transform as tft

from components.features import LABEL, PAIR_FEATURES
from components.tensors import dense

# Training batches group pairs of similar length; each batch is padded only to
# its own longest pair (QQP pairs average 30-40 word pieces).
LENGTH_BUCKET_BOUNDARIES = [16, 24, 32, 40, 48, 64, 96]


def _files(file_patterns: list[str]) -> list[str]:
    files = sorted(path for pattern in file_patterns for path in tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no transformed examples match {file_patterns}")
    return files


def count_examples(file_patterns: list[str]) -> int:
    """Number of records in the GZIP TFRecord files."""
    dataset = tf.data.TFRecordDataset(_files(file_patterns), compression_type="GZIP")
    return int(dataset.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1))


def labeled_examples(file_patterns: list[str], tft_output: tft.TFTransformOutput,
                     feature_names: Sequence[str] = PAIR_FEATURES) -> tf.data.Dataset:
    """Unbatched (features, label) pairs, in file order, with 1-D int32 token features."""
    feature_spec = {name: spec for name, spec in tft_output.transformed_feature_spec().items()
                    if name in (*feature_names, LABEL)}

    def parse(serialized: tf.Tensor):
        parsed = {name: dense(value) for name, value in
                  tf.io.parse_single_example(serialized, feature_spec).items()}
        features = {name: tf.cast(parsed[name], tf.int32) for name in feature_names}
        return features, tf.cast(tf.reshape(parsed[LABEL], []), tf.float32)

    return tf.data.TFRecordDataset(_files(file_patterns), compression_type="GZIP").map(
        parse, num_parallel_calls=tf.data.AUTOTUNE)


def training_batches(file_patterns: list[str], tft_output: tft.TFTransformOutput,
                     batch_size: int, seed: int, max_examples: int | None = None,
                     shuffle_buffer: int | None = None) -> tf.data.Dataset:
    """Endless shuffled pair batches, bucketed by length and padded per batch."""
    dataset = labeled_examples(file_patterns, tft_output)
    if max_examples:
        dataset = dataset.take(max_examples)
    return bucketed_batches(dataset, batch_size, seed, shuffle_buffer)


SHUFFLE_BUFFER = 10_000


def bucketed_batches(dataset: tf.data.Dataset, batch_size: int, seed: int,
                     shuffle_buffer: int | None = None) -> tf.data.Dataset:
    """Endless shuffled batches of (pair features, label), bucketed by length, padded per batch.

    The shuffle buffer holds `shuffle_buffer` examples, at least SHUFFLE_BUFFER.
    """
    return (dataset.cache()
            .shuffle(max(SHUFFLE_BUFFER, shuffle_buffer or 0), seed=seed,
                     reshuffle_each_iteration=True)
            .repeat()
            .bucket_by_sequence_length(
                lambda features, _: tf.shape(features["input_ids"])[0],
                bucket_boundaries=LENGTH_BUCKET_BOUNDARIES,
                bucket_batch_sizes=[batch_size] * (len(LENGTH_BUCKET_BOUNDARIES) + 1))
            .prefetch(tf.data.AUTOTUNE))


def length_bucketed(dataset: tf.data.Dataset, batch_size: int) -> tf.data.Dataset:
    """Every example once, in batches of similar length, each padded to its own longest.

    The length of an example is that of its longest token feature.
    """
    def length(features: dict[str, tf.Tensor], _) -> tf.Tensor:
        return tf.reduce_max(tf.stack([tf.shape(value)[0] for value in features.values()]))

    return dataset.bucket_by_sequence_length(
        length, bucket_boundaries=LENGTH_BUCKET_BOUNDARIES,
        bucket_batch_sizes=[batch_size] * (len(LENGTH_BUCKET_BOUNDARIES) + 1)
    ).prefetch(tf.data.AUTOTUNE)
