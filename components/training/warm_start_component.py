"""The WarmStart component: where the candidate starts (`components.training.warm_start`).

Its decision reads the serving directory; the Trainer reads only the decision.
"""


import json
import os

from tfx import v1 as tfx
from tfx.dsl.io import fileio

from components.data.window import train_spans
from components.serving.layout import newest_complete_version, version_number
from components.training.warm_start import (DECISION_FILE, IDENTITY_FILE, SERVING_SUBDIR,
                                            WARM_START_DIR, WEIGHTS_FILE, model_identity,
                                            read_json)

DECISION_KEY = "warm_start"  # custom property: the decision as the report shows it, JSON


def decide(serving_dir: str, mode: str, identity: dict, window_spans: list[int]
           ) -> tuple[dict, str | None]:
    """Where the candidate starts, as the JSON the report shows, and the served weights'
    path for a warm start (else None)."""
    def from_checkpoint(why: str) -> tuple[dict, None]:
        return {"from": "checkpoint", "why": why}, None

    if mode == "checkpoint":
        return from_checkpoint("--warm-start checkpoint")
    version_dir = newest_complete_version(serving_dir)
    if version_dir is None:
        return from_checkpoint("no model is served yet")
    version = version_number(version_dir)
    served = read_json(os.path.join(version_dir, WARM_START_DIR, IDENTITY_FILE))
    if served is None:
        return from_checkpoint(f"version {version} has no warm-start weights "
                               f"({WARM_START_DIR}/{IDENTITY_FILE})")
    different = sorted(key for key in identity if served.get(key) != identity[key])
    if different:
        return from_checkpoint(f"version {version} is not compatible (different "
                               f"{', '.join(different)})")
    served_spans = served.get("train_spans") or []
    newer = [span for span in window_spans if span and span > max(served_spans, default=0)]
    if not newer:
        return from_checkpoint(f"the window (spans {window_spans}) holds no span newer than "
                               f"those version {version} was trained on ({served_spans})")
    return ({"from": "served", "version": version, "served_spans": served_spans},
            os.path.join(version_dir, WARM_START_DIR, WEIGHTS_FILE))


@tfx.dsl.components.component
def WarmStart(
        examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
        serving_dir: tfx.dsl.components.Parameter[str],
        mode: tfx.dsl.components.Parameter[str],
        checkpoint: tfx.dsl.components.Parameter[str],
        max_seq_length: tfx.dsl.components.Parameter[int],
        pooling: tfx.dsl.components.Parameter[str],
        pair_order: tfx.dsl.components.Parameter[str],
        model: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Model],
) -> None:
    """Decides where the candidate starts and copies the served weights for a warm start."""
    window_spans = train_spans(examples)
    identity = model_identity(checkpoint, max_seq_length, pooling, pair_order)
    decision, weights = decide(serving_dir, mode, identity, window_spans)
    decision["train_spans"] = window_spans
    target = os.path.join(model.uri, SERVING_SUBDIR)
    fileio.makedirs(target)
    if weights:
        fileio.copy(weights, os.path.join(target, WEIGHTS_FILE), overwrite=True)
    with fileio.open(os.path.join(target, DECISION_FILE), "w") as stream:
        stream.write(json.dumps(decision))
    model.set_string_custom_property(DECISION_KEY, json.dumps(decision))
