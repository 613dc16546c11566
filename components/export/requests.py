"""Reading the serving signatures' requests, with errors in words for bad ones.

Every check runs inside the graph and fails with InvalidArgument, which TF
Serving returns to the client as is:
- `predict_text` with lists of different lengths names both lengths;
- a tf.Example whose question holds no string (missing or empty) or more than
  one names the tf.Example and the feature; one whose question is not a
  bytes_list fails in TensorFlow's parser, whose message names the feature
  ("Key: question1, Index: 0. Data types don't match ...").
Only core TensorFlow ops are used, so every TF Serving build runs them.
"""

from __future__ import annotations

import tensorflow as tf

from components.features import QUESTIONS

EXAMPLE_RULE = ("every tf.Example needs question1 and question2, each a bytes_list holding "
                "one UTF-8 string")


def _format(template: str, *values: tf.Tensor) -> tf.Tensor:
    """`template` with each `{}` replaced by a scalar tensor, in decimal."""
    pieces = template.split("{}")
    texts = [tf.strings.as_string(value) for value in values]
    return tf.strings.join([piece for pair in zip(pieces, [*texts, ""]) for piece in pair])


def _assert_each(ok: tf.Tensor, template: str, values: tf.Tensor) -> tf.Operation:
    """An op raising InvalidArgument unless every `ok` holds; the message is `template`
    with its `{}` replaced by the first failing row's index, then its value."""
    index = tf.argmax(tf.concat([tf.logical_not(ok), [True]], 0), output_type=tf.int32)
    value = tf.gather(tf.concat([values, tf.zeros([1], values.dtype)], 0), index)
    return tf.debugging.Assert(tf.reduce_all(ok), [_format(template, index, value)])


def parse_questions(examples: tf.Tensor) -> list[tf.Tensor]:
    """Each question of serialized raw tf.Examples, [batch, 1] strings, in `QUESTIONS` order."""
    parsed = tf.io.parse_example(examples, {name: tf.io.RaggedFeature(tf.string)
                                            for name in QUESTIONS})
    checks = [_assert_each(parsed[name].row_lengths() == 1,
                           f"tf.Example {{}}: {name} holds {{}} strings; {EXAMPLE_RULE}",
                           parsed[name].row_lengths()) for name in QUESTIONS]
    with tf.control_dependencies(checks):
        # Always [batch, 1], so nothing after fails on a bad example before the check does.
        return [parsed[name].to_tensor(default_value="", shape=[None, 1]) for name in QUESTIONS]


def assert_as_many(question1: tf.Tensor, question2: tf.Tensor) -> tf.Operation:
    """An op raising InvalidArgument, in words, unless both lists hold as many strings."""
    sizes = [tf.size(question1), tf.size(question2)]
    return tf.debugging.Assert(tf.equal(*sizes), [_format(
        "question1 has {} strings and question2 has {}; give one question2 per question1",
        *sizes)])
