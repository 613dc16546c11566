"""The DriftGate component: a new span that does not look like the previous one stops the run.

Before Transform, the pairs of the span ExampleGen just ingested are compared
with those of the previous span in the span registry (`components.data.window`),
feature by feature (`components.drift.metrics`). A feature whose divergence is
above its threshold stops the run (`DataDriftError`, exit code 2 from the CLI)
unless `accept_drift` is set; the verdict ("passed", "stopped" or "accepted"),
every feature's divergence and threshold are recorded on the output artifact
(custom property `drift`, JSON) for the summary and the report. A first span,
or data not laid out in spans, has nothing to compare with and passes.
"""


import json
import os

import tensorflow as tf
from tfx import v1 as tfx
from tfx.dsl.io import fileio

from components.data.window import SPLITS, previous_span, span_of
from components.drift.metrics import DEFAULT_THRESHOLDS, compare, pair_features
from components.families.checkpoint import resolve_checkpoint

DRIFT_KEY = "drift"  # custom property of the gate's artifact: the verdict, JSON
MAX_PAIRS = 20_000  # pairs read per span: enough for stable histograms, read in seconds


class DataDriftError(RuntimeError):
    """The new span's pairs differ from the previous span's beyond a threshold."""


def read_pairs(examples_uri: str, limit: int = MAX_PAIRS) -> list[tuple[str, str, int]]:
    """(question1, question2, is_duplicate) of an Examples artifact's splits, at most `limit`."""
    files = sorted(path for split in SPLITS
                   for path in fileio.glob(os.path.join(examples_uri, f"Split-{split}", "*")))
    pairs = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP").take(limit):
        feature = tf.train.Example.FromString(record.numpy()).features.feature
        pairs.append((feature["question1"].bytes_list.value[0].decode("utf-8"),
                      feature["question2"].bytes_list.value[0].decode("utf-8"),
                      int(feature["is_duplicate"].int64_list.value[0])))
    return pairs


def check_drift(span: int, examples_uri: str, registry_dir: str, checkpoint: str,
                max_seq_length: int, thresholds: dict[str, float], accept_drift: bool) -> dict:
    """The drift verdict of `span` against the previous registered span, as the report
    shows it; raises DataDriftError when it drifted and `accept_drift` is not set."""
    if not span:
        return {"verdict": "passed", "features": {}, "why": "the data are not laid out in spans"}
    previous = previous_span(registry_dir, span)
    if previous is None:
        return {"verdict": "passed", "features": {},
                "why": "no previous span to compare with"}
    checkpoint_dir = resolve_checkpoint(checkpoint)
    drifts = compare(pair_features(read_pairs(previous[1]), checkpoint_dir, max_seq_length),
                     pair_features(read_pairs(examples_uri), checkpoint_dir, max_seq_length),
                     {**DEFAULT_THRESHOLDS, **thresholds})
    drifted = [name for name, drift in drifts.items() if drift.drifted]
    result = {"verdict": ("accepted" if accept_drift else "stopped") if drifted else "passed",
              "previous_span": previous[0],
              "features": {name: {"divergence": round(drift.divergence, 6),
                                  "threshold": drift.threshold}
                           for name, drift in drifts.items()}}
    if drifted and not accept_drift:
        raise DataDriftError(
            f"span {span} drifted from span {previous[0]}: " + "; ".join(
                f"{name} diverges by {drifts[name].divergence:.4f} (Jensen-Shannon), above "
                f"the threshold {drifts[name].threshold:.4f}" for name in drifted)
            + ". Check the new data; if the change is real, run again with --accept-drift "
              "(or raise drift-thresholds in the config).")
    return result


@tfx.dsl.components.component
def DriftGate(
        examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
        registry_dir: tfx.dsl.components.Parameter[str],
        checkpoint: tfx.dsl.components.Parameter[str],
        max_seq_length: tfx.dsl.components.Parameter[int],
        thresholds: tfx.dsl.components.Parameter[str],
        accept_drift: tfx.dsl.components.Parameter[int],
        drift: tfx.dsl.components.OutputArtifact[
            tfx.types.standard_artifacts.ExampleAnomalies],
) -> None:
    """Compares the new span with the previous one; stops the run on drift."""
    result = check_drift(span_of(examples), examples.uri, registry_dir, checkpoint,
                         max_seq_length, json.loads(thresholds), bool(accept_drift))
    drift.set_string_custom_property(DRIFT_KEY, json.dumps(result))
