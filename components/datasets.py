"""tf.data input pipelines over Transform's output, padded per batch, not to max length."""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from components.model import TOKEN_FEATURES
from components.transform import LABEL

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


def _densify(value):
    if isinstance(value, tf.SparseTensor):
        return tf.sparse.to_dense(value)
    if isinstance(value, tf.RaggedTensor):
        return value.to_tensor()
    return value


def _examples(file_patterns: list[str], tft_output: tft.TFTransformOutput) -> tf.data.Dataset:
    """Unbatched (features, label) pairs with 1-D int32 token features."""
    feature_spec = {name: spec for name, spec in tft_output.transformed_feature_spec().items()
                    if name in TOKEN_FEATURES + (LABEL,)}

    def parse(serialized: tf.Tensor):
        parsed = {name: _densify(value) for name, value in
                  tf.io.parse_single_example(serialized, feature_spec).items()}
        features = {name: tf.cast(parsed[name], tf.int32) for name in TOKEN_FEATURES}
        return features, tf.cast(tf.reshape(parsed[LABEL], []), tf.float32)

    return tf.data.TFRecordDataset(_files(file_patterns), compression_type="GZIP").map(
        parse, num_parallel_calls=tf.data.AUTOTUNE)


def training_batches(file_patterns: list[str], tft_output: tft.TFTransformOutput,
                     batch_size: int, seed: int, max_examples: int | None = None
                     ) -> tf.data.Dataset:
    """Endless shuffled batches, bucketed by length and padded per batch."""
    dataset = _examples(file_patterns, tft_output)
    if max_examples:
        dataset = dataset.take(max_examples)
    return (dataset.cache()
            .shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
            .repeat()
            .bucket_by_sequence_length(
                lambda features, _: tf.shape(features["input_ids"])[0],
                bucket_boundaries=LENGTH_BUCKET_BOUNDARIES,
                bucket_batch_sizes=[batch_size] * (len(LENGTH_BUCKET_BOUNDARIES) + 1))
            .prefetch(tf.data.AUTOTUNE))


def evaluation_batches(file_patterns: list[str], tft_output: tft.TFTransformOutput,
                       batch_size: int) -> tf.data.Dataset:
    """All examples once, in order, each batch padded to its own longest pair."""
    return _examples(file_patterns, tft_output).padded_batch(batch_size).prefetch(
        tf.data.AUTOTUNE)
