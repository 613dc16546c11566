"""Small tensor helpers shared by the input functions and the exported signatures."""

from __future__ import annotations

import tensorflow as tf


def dense(value: tf.Tensor | tf.RaggedTensor | tf.SparseTensor) -> tf.Tensor:
    """A dense tensor; ragged and sparse values are padded with zeros."""
    if isinstance(value, tf.SparseTensor):
        return tf.sparse.to_dense(value)
    if isinstance(value, tf.RaggedTensor):
        return value.to_tensor()
    return value


def ragged(value: tf.Tensor | tf.RaggedTensor | tf.SparseTensor) -> tf.RaggedTensor:
    """A ragged tensor; dense values become rows of their full length."""
    if isinstance(value, tf.RaggedTensor):
        return value
    if isinstance(value, tf.SparseTensor):
        return tf.RaggedTensor.from_sparse(value)
    return tf.RaggedTensor.from_tensor(value)
