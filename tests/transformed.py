"""Transform run in-process on a few bundled pairs: the Trainers' inputs, without TFX."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tests.conftest import REPO_ROOT, sample_rows


@dataclasses.dataclass(frozen=True)
class Transformed:
    """A checkpoint, the transform graph made with it and the transformed training pairs."""

    checkpoint: Path
    transform_output: Path
    train_files: str
    rows: list[list[str]]  # the raw TSV rows, in file order


def transform_sample(root: Path, checkpoint: Path, pairs: int, max_seq_length: int
                     ) -> Transformed:
    """Runs tf.Transform (in-process Beam) with components.text.preprocessing on bundled
    train pairs."""
    # pylint: disable=import-outside-toplevel
    import apache_beam as beam
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io

    from components.text.preprocessing import preprocessing_fn

    raw_metadata = dataset_metadata.DatasetMetadata(text_format.Parse(
        (REPO_ROOT / "pipeline" / "schema" / "schema.pbtxt").read_text(), schema_pb2.Schema()))
    rows = [line.split("\t") for line in sample_rows("train.tsv", pairs)]
    config = {"checkpoint": str(checkpoint), "max_seq_length": max_seq_length}
    with beam.Pipeline() as pipeline, tft_beam.Context(temp_dir=str(root / "tft-tmp")):
        raw = pipeline | beam.Create([{"id": [int(row[0])], "question1": [row[3]],
                                       "question2": [row[4]], "is_duplicate": [int(row[5])],
                                       "span": [0]}
                                      for row in rows])
        (transformed, metadata), transform_fn = (raw, raw_metadata) | (
            tft_beam.AnalyzeAndTransformDataset(lambda inputs: preprocessing_fn(inputs, config)))
        _ = transform_fn | tft_beam.WriteTransformFn(str(root / "transform_graph"))
        _ = (transformed | beam.Map(tft.coders.ExampleProtoCoder(metadata.schema).encode)
             | beam.io.WriteToTFRecord(str(root / "train" / "part"), file_name_suffix=".gz"))
    # Transform writes the raw schema too: the exported signatures parse raw examples with it.
    metadata_io.write_metadata(raw_metadata, str(root / "transform_graph" / "metadata"))
    return Transformed(checkpoint, root / "transform_graph", str(root / "train" / "*.gz"), rows)
