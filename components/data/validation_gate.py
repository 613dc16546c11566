"""A component that stops the pipeline when ExampleValidator found anomalies.

ExampleValidator only records anomalies; this gate turns them into a failed
run, with a message that says which feature of which split is wrong and how.
"""

import os

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.dsl.io import fileio
from tfx.types import standard_artifact_utils

ANOMALIES_FILE = "SchemaDiff.pb"


class DataAnomaliesError(RuntimeError):
    """The data does not match the curated schema."""


def describe_anomalies(split: str, anomalies: anomalies_pb2.Anomalies) -> "list[str]":
    """Returns one plain-language line per anomaly of one split."""
    lines = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        reasons = "; ".join(f"{reason.short_description}: {reason.description}"
                            for reason in info.reason) or info.description
        lines.append(f"split '{split}', feature '{feature}': {reasons}")
    if anomalies.HasField("dataset_anomaly_info"):
        lines.append(f"split '{split}', whole dataset: "
                     f"{anomalies.dataset_anomaly_info.description}")
    return lines


def load_anomalies(uri: str) -> anomalies_pb2.Anomalies:
    """Reads the binary Anomalies proto of one split directory."""
    with fileio.open(os.path.join(uri, ANOMALIES_FILE), "rb") as stream:
        return anomalies_pb2.Anomalies.FromString(stream.read())


@tfx.dsl.components.component
def DataValidationGate(
        anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
) -> None:
    """Fails with a readable list of anomalies if any split has one."""
    problems = []
    for split in standard_artifact_utils.decode_split_names(anomalies.split_names):
        split_uri = standard_artifact_utils.get_split_uri([anomalies], split)
        problems += describe_anomalies(split, load_anomalies(split_uri))
    if problems:
        raise DataAnomaliesError(
            "The data does not match the schema (pipeline/schema/schema.pbtxt):\n  "
            + "\n  ".join(problems))
