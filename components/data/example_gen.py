"""A FileBasedExampleGen executor for QQP: GLUE TSV files and HF parquet/arrow files.

The stock FileBasedExampleGen driver fingerprints the matched files, so any
change of the input data invalidates TFX's cache. Each file is read whole by
one worker so that errors can name the exact row.

Every example carries the number of the span it came from (`span`; 0 for data
not laid out in spans), so that a training window's evaluation can be sliced
span by span.
"""

from __future__ import annotations

import os
from typing import Any, Dict

import apache_beam as beam
import tensorflow as tf
from absl import logging
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.dsl.io import fileio
from tfx.types import standard_component_specs

from components.features import SPAN_FEATURE
from components.data.records import QqpDataError, QqpPair, read_pairs


def to_tf_example(pair: QqpPair, span: int = 0) -> tf.train.Example:
    """Encodes a pair as a tf.Example with id, question1, question2, is_duplicate, span."""
    feature = {
        "id": tf.train.Feature(int64_list=tf.train.Int64List(value=[pair.id])),
        "question1": tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[pair.question1.encode("utf-8")])),
        "question2": tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[pair.question2.encode("utf-8")])),
        "is_duplicate": tf.train.Feature(
            int64_list=tf.train.Int64List(value=[pair.is_duplicate])),
        SPAN_FEATURE: tf.train.Feature(int64_list=tf.train.Int64List(value=[span])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature))


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(tf.train.Example)
def _QqpToExample(pipeline: beam.Pipeline, exec_properties: Dict[str, Any],
                  split_pattern: str) -> beam.pvalue.PCollection:
    """Reads every file matching `split_pattern` under the input base."""
    pattern = os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY],
                           split_pattern)
    files = sorted(fileio.glob(pattern))
    if not files:
        raise QqpDataError(f"{pattern}: no input file matches")
    logging.info("Reading QQP pairs from %s", files)
    return (pipeline
            | "ListFiles" >> beam.Create(files)
            | "ReadPairs" >> beam.FlatMap(read_pairs)
            | "ToTFExample" >> beam.Map(to_tf_example,
                                        span=int(exec_properties.get(SPAN_FEATURE) or 0)))


class Executor(BaseExampleGenExecutor):
    """ExampleGen executor for QQP files (GLUE TSV, HF parquet or arrow)."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _QqpToExample
