"""TFX's Evaluator for the candidate vs the served model, which may not exist yet.

The baseline comes from the ServedModel component. When nothing was served,
there is nothing to fall behind: instead of running TFMA on the candidate alone
(the other Evaluator already measured it), the executor records a blessing that
says so (`no_baseline` = 1) and an empty evaluation. Either way the blessing
carries the served version number (`served_version`) for the verdict.
"""

from __future__ import annotations

from typing import Any

from absl import logging
from tfx import types
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact_utils, standard_component_specs

from components.evaluation import evaluator
from components.evaluation.blessing_keys import NO_BASELINE_KEY
from components.evaluation.blessings import write_blessing
from components.evaluation.served_model import served_version
from components.serving.layout import SERVED_VERSION_KEY


class Executor(evaluator.Executor):
    """Runs TFMA (in bf16 where the CPU has it) when a model is served; otherwise
    blesses with `no_baseline`."""

    def Do(self, input_dict: dict[str, list[types.Artifact]],
           output_dict: dict[str, list[types.Artifact]],
           exec_properties: dict[str, Any]) -> None:
        baseline = artifact_utils.get_single_instance(
            input_dict[standard_component_specs.BASELINE_MODEL_KEY])
        version = served_version(baseline)
        blessing = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.BLESSING_KEY])
        if version:
            super().Do(input_dict, output_dict, exec_properties)
        else:
            logging.info("No model is served yet: nothing to compare the candidate with.")
            write_blessing(blessing, input_dict[standard_component_specs.MODEL_KEY][0],
                           blessed=True)
            blessing.set_int_custom_property(NO_BASELINE_KEY, 1)
        blessing.set_int_custom_property(SERVED_VERSION_KEY, version)


class ServedModelEvaluator(evaluator.Evaluator):
    """An Evaluator whose baseline is a ServedModel snapshot, possibly empty."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
