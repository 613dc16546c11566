"""TF Serving warm-up requests made of real eval pairs.

TF Serving replays `<version>/assets.extra/tf_serving_warmup_requests`, a TFRecord
file of `PredictionLog`s, when it loads a version and before it serves it, so
the first users do not pay for the lazy initialisation of the graph and its
tokenizer. The Pusher writes one into every version it pushes, built here from
the eval split: for each batch size, the shortest, middle and longest pairs and
pairs spread over all lengths, sent to `serving_default`, `predict_text` and
`classification`. The same eval data always gives the same bytes, so a model
pushed again with the same data is still recognised as already served.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable

import tensorflow as tf
from tensorflow_serving.apis import (classification_pb2, input_pb2, model_pb2, predict_pb2,
                                     prediction_log_pb2)

from components.export.signatures import CLASSIFY_SIGNATURE

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_RECORDS = 1000  # TF Serving refuses a warm-up file with more records
BATCH_SIZES = (1, 2, 8, 16, 64)
MAX_PAIRS_READ = 10_000  # the first pairs of the eval split, in file order
EVAL_SPLIT = "eval"

Pair = tuple[bytes, bytes]


def read_split_pairs(split_uri: str, limit: int = MAX_PAIRS_READ) -> list[Pair]:
    """The (question1, question2) of the first `limit` raw tf.Examples of an ExampleGen
    split directory (gzipped TFRecord files, read in name order)."""
    files = sorted(tf.io.gfile.glob(os.path.join(split_uri, "*")))
    pairs = []
    for record in tf.data.TFRecordDataset(files, "GZIP").take(limit).as_numpy_iterator():
        feature = tf.train.Example.FromString(record).features.feature
        pairs.append((feature["question1"].bytes_list.value[0],
                      feature["question2"].bytes_list.value[0]))
    return pairs


def pick_batches(pairs: Iterable[Pair], batch_sizes: Iterable[int] = BATCH_SIZES
                 ) -> list[list[Pair]]:
    """Batches over a spread of lengths, for each batch size (at most as many as pairs).

    For each size: the shortest pairs, the middle ones, the longest ones and pairs
    spread evenly from shortest to longest; a batch equal to an earlier one is left out.
    """
    ranked = sorted(set(pairs), key=lambda pair: (len(pair[0]) + len(pair[1]), pair))
    batches: dict[tuple[Pair, ...], None] = {}  # ordered, without repeats
    for size in sorted({min(size, len(ranked)) for size in batch_sizes} - {0}):
        middle = (len(ranked) - size) // 2
        spread = [ranked[index * (len(ranked) - 1) // max(size - 1, 1)] for index in range(size)]
        for batch in (ranked[:size], ranked[middle:middle + size], ranked[-size:], spread):
            batches[tuple(batch)] = None
    return [list(batch) for batch in batches]


def question_example(question1: bytes, question2: bytes) -> tf.train.Example:
    """The raw tf.Example the serving signatures read: both questions as bytes."""
    return tf.train.Example(features=tf.train.Features(feature={
        name: tf.train.Feature(bytes_list=tf.train.BytesList(value=[text]))
        for name, text in (("question1", question1), ("question2", question2))}))


def _predict_log(signature: str, inputs: dict[str, list[bytes]]
                 ) -> prediction_log_pb2.PredictionLog:
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(signature_name=signature))
    for name, values in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(values, tf.string, [len(values)]))
    return prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request))


def _classify_log(examples: list[tf.train.Example]) -> prediction_log_pb2.PredictionLog:
    request = classification_pb2.ClassificationRequest(
        model_spec=model_pb2.ModelSpec(signature_name=CLASSIFY_SIGNATURE),
        input=input_pb2.Input(example_list=input_pb2.ExampleList(examples=examples)))
    return prediction_log_pb2.PredictionLog(
        classify_log=prediction_log_pb2.ClassifyLog(request=request))


def warmup_records(batches: list[list[Pair]]) -> list[prediction_log_pb2.PredictionLog]:
    """Each batch as a `serving_default`, a `predict_text` and a `classification` request
    (at most `MAX_RECORDS` in all)."""
    records = []
    for batch in batches:
        examples = [question_example(*pair) for pair in batch]
        records += [
            _predict_log("serving_default",
                         {"examples": [example.SerializeToString(deterministic=True)
                                       for example in examples]}),
            _predict_log("predict_text", {"question1": [pair[0] for pair in batch],
                                          "question2": [pair[1] for pair in batch]}),
            _classify_log(examples)]
    return records[:MAX_RECORDS]


def warmup_file(pairs: Iterable[Pair]) -> bytes:
    """The TFRecord file of warm-up requests for these pairs (same pairs, same bytes)."""
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "warmup")
        with tf.io.TFRecordWriter(path) as writer:
            for record in warmup_records(pick_batches(pairs)):
                writer.write(record.SerializeToString(deterministic=True))
        with open(path, "rb") as stream:
            return stream.read()
