"""The training window: the newest K spans of data, as one Examples artifact.

ExampleGen ingests one span per run (the newest, or the one asked for) and TFX's
cache keeps every span it has ingested. This component records each new span in
a span registry (`<pipeline root>/spans/span-N.json`, naming that span's
Examples artifact), and writes the window (spans N-K+1 .. N that were ingested)
as one Examples artifact: each span's train and eval files copied byte for byte,
so Transform, the Trainers and the Evaluators read one artifact as today, and
every example keeps its `span` feature for the evaluation span by span.

The registry is a directory of small JSON files, not ML Metadata, so the window
is resolved alike on every runner (LocalDagRunner, Vertex AI's KFP v2 runner,
which has no resolver for span ranges) and on any filesystem TensorFlow knows.
The component is cached like any other: the window of a span is resolved once,
when that span first goes through it (a span ingested again with other files is
a new artifact, so a new window). Data not laid out in spans (span 0) is a
window of one, and is not registered.
"""


import json
import os

from absl import logging
from tfx import v1 as tfx
from tfx.dsl.io import fileio
from tfx.types import standard_artifact_utils

SPLITS = ("train", "eval")
SPAN_KEY = "span"
TRAIN_SPANS_KEY = "train_spans"  # custom property of the window: its span numbers, JSON
REGISTRY_SUFFIX = ".json"


def registry_entry(registry_dir: str, span: int) -> str:
    """The registry file of one span."""
    return os.path.join(registry_dir, f"span-{span}{REGISTRY_SUFFIX}")


def register(registry_dir: str, span: int, examples_uri: str) -> None:
    """Records where the Examples of `span` are (written whole, then renamed)."""
    fileio.makedirs(registry_dir)
    target = registry_entry(registry_dir, span)
    with fileio.open(target + ".partial", "w") as stream:
        stream.write(json.dumps({"span": span, "uri": examples_uri}))
    fileio.rename(target + ".partial", target, overwrite=True)


def registered_spans(registry_dir: str) -> dict[int, str]:
    """Every registered span number -> the URI of its Examples artifact."""
    if not fileio.isdir(registry_dir):
        return {}
    spans = {}
    for name in fileio.listdir(registry_dir):
        if name.startswith("span-") and name.endswith(REGISTRY_SUFFIX):
            with fileio.open(os.path.join(registry_dir, name)) as stream:
                entry = json.loads(stream.read())
            spans[int(entry["span"])] = entry["uri"]
    return spans


def previous_span(registry_dir: str, span: int) -> tuple[int, str] | None:
    """The newest registered span before `span` and its Examples URI, if there is one."""
    older = {number: uri for number, uri in registered_spans(registry_dir).items()
             if number < span}
    return (max(older), older[max(older)]) if older else None


def span_of(examples: tfx.types.standard_artifacts.Examples) -> int:
    """The span of an Examples artifact: ExampleGen's driver records it as a custom
    property; 0 for data not laid out in spans."""
    if examples.has_custom_property(SPAN_KEY):
        return examples.get_int_custom_property(SPAN_KEY)
    return examples.span or 0


def _copy_splits(source_uri: str, target_uri: str, prefix: str) -> None:
    for split in SPLITS:
        source = os.path.join(source_uri, f"Split-{split}")
        target = os.path.join(target_uri, f"Split-{split}")
        fileio.makedirs(target)
        for name in fileio.listdir(source):
            fileio.copy(os.path.join(source, name), os.path.join(target, prefix + name),
                        overwrite=True)


@tfx.dsl.components.component
def TrainingWindow(
        span_examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
        train_window: tfx.dsl.components.Parameter[int],
        registry_dir: tfx.dsl.components.Parameter[str],
        examples: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Examples],
) -> None:
    """Registers the new span and writes the newest `train_window` spans as `examples`."""
    span = span_of(span_examples)
    window = {span: span_examples.uri}
    if span:
        register(registry_dir, span, span_examples.uri)
        window = {number: uri for number, uri in registered_spans(registry_dir).items()
                  if span - train_window < number <= span}
        missing = sorted(set(range(max(1, span - train_window + 1), span + 1)) - set(window))
        if missing:
            logging.warning("Training window of span %d: span(s) %s were never ingested "
                            "(run with --span N to add them); training on %s", span, missing,
                            sorted(window))
    for number, uri in sorted(window.items()):
        _copy_splits(uri, examples.uri, f"span-{number}-")
    examples.split_names = standard_artifact_utils.encode_split_names(list(SPLITS))
    examples.span = span
    examples.set_int_custom_property(SPAN_KEY, span)
    examples.set_string_custom_property(TRAIN_SPANS_KEY, json.dumps(sorted(window)))


def train_spans(examples: tfx.types.standard_artifacts.Examples) -> list[int]:
    """The span numbers of a TrainingWindow's examples."""
    return json.loads(examples.get_string_custom_property(TRAIN_SPANS_KEY) or "[]")
