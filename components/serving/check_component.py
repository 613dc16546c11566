"""The ServingCheck component: the serving check (`components.serving.check`) before a push.

It runs between the BlessingGate and the Pusher. A candidate the gate blessed is loaded
as TF Serving loads it and compared with the served version (the ServedModel snapshot);
the verdict is an InfraBlessing, marked as TFX's InfraValidator marks one (custom
property `blessed`, file `INFRA_BLESSED` or `INFRA_NOT_BLESSED`), so that the Pusher's
`CheckBlessing` pushes only a candidate that passed. The result document is written to
`<infra_blessing.uri>/serving_check.json` and kept as the custom property
`serving_check` (JSON). A failed check does not stop the run: nothing is pushed, and
the result says why, as for a candidate the gate rejects. A candidate the gate did not
bless is not checked.
"""


import json
import os

from absl import logging
from tfx import v1 as tfx
from tfx.components.infra_validator import executor as infra_validator_executor
from tfx.components.util import model_utils
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import path_utils

from components.precision.keras_policy import has_bf16_cpu
from components.serving.check import (MAX_LATENCY_RATIO, MAX_MEMORY_RATIO, check_serving,
                                      not_checked)
from components.serving.layout import SERVED_VERSION_KEY
from components.serving.warmup import EVAL_SPLIT

RESULT_KEY = "serving_check"  # custom property of the InfraBlessing: the result, JSON
RESULT_FILE = "serving_check.json"
# TFX's InfraValidator marks its InfraBlessing so, and the Pusher reads `blessed`.
# pylint: disable=protected-access
BLESSED_KEY = infra_validator_executor._BLESSED_KEY
BLESSED_FILE = infra_validator_executor._BLESSED_FILENAME
NOT_BLESSED_FILE = infra_validator_executor._NOT_BLESSED_FILENAME
# pylint: enable=protected-access


def serving_dir(model: tfx.types.standard_artifacts.Model) -> str:
    """The SavedModel directory of a Model artifact (`<uri>/Format-Serving`)."""
    return path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))


def mark_infra_blessing(infra_blessing: tfx.types.standard_artifacts.InfraBlessing,
                        result: dict) -> None:
    """Writes the result document and marks the blessing as TFX's InfraValidator does."""
    fileio.makedirs(infra_blessing.uri)
    with fileio.open(os.path.join(infra_blessing.uri, RESULT_FILE), "w") as stream:
        stream.write(json.dumps(result, indent=1))
    marker = BLESSED_FILE if result["passed"] else NOT_BLESSED_FILE
    with fileio.open(os.path.join(infra_blessing.uri, marker), "w") as stream:
        stream.write("")
    infra_blessing.set_string_custom_property(RESULT_KEY, json.dumps(result))
    infra_blessing.set_int_custom_property(BLESSED_KEY, int(result["passed"]))


@tfx.dsl.components.component
def ServingCheck(
        model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
        served_model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
        examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
        model_blessing: tfx.dsl.components.InputArtifact[
            tfx.types.standard_artifacts.ModelBlessing],
        infra_blessing: tfx.dsl.components.OutputArtifact[
            tfx.types.standard_artifacts.InfraBlessing],
        max_latency_ratio: tfx.dsl.components.Parameter[float] = MAX_LATENCY_RATIO,
        max_memory_ratio: tfx.dsl.components.Parameter[float] = MAX_MEMORY_RATIO,
) -> None:
    """Checks that the blessed candidate serves, no slower and no larger than the served
    version; marks `infra_blessing` blessed only if it does."""
    bf16 = has_bf16_cpu()
    if not model_utils.is_model_blessed(model_blessing):
        result = not_checked(bf16)
    else:
        served_version = served_model.get_int_custom_property(SERVED_VERSION_KEY)
        result = check_serving(
            serving_dir(model), artifact_utils.get_split_uri([examples], EVAL_SPLIT), bf16,
            serving_dir(served_model) if served_version else None, served_version or None,
            max_latency_ratio, max_memory_ratio)
    mark_infra_blessing(infra_blessing, result)
    if result["passed"]:
        logging.info("Serving check passed: %s", result["why"])
    else:
        logging.warning("Serving check failed, nothing will be pushed: %s", result["why"])
