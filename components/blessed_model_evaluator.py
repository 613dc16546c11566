"""TFX's Evaluator for the candidate vs the latest blessed model, which may not exist yet.

With no blessed model there is nothing to fall behind: instead of running TFMA
on the candidate alone (the other Evaluator already measured it), the executor
records a blessing that says so (`no_baseline` = 1) and an empty evaluation.
"""

from __future__ import annotations

from typing import Any

from absl import logging
from tfx import types
from tfx.components import Evaluator
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact_utils, standard_component_specs

from components.blessings import NO_BASELINE_KEY, write_blessing


class Executor(evaluator_executor.Executor):
    """Runs TFMA when a baseline model is given; otherwise blesses with `no_baseline`."""

    def Do(self, input_dict: dict[str, list[types.Artifact]],
           output_dict: dict[str, list[types.Artifact]],
           exec_properties: dict[str, Any]) -> None:
        if input_dict.get(standard_component_specs.BASELINE_MODEL_KEY):
            super().Do(input_dict, output_dict, exec_properties)
            return
        logging.info("No blessed model yet: nothing to compare the candidate with.")
        model = input_dict[standard_component_specs.MODEL_KEY][0]
        blessing = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.BLESSING_KEY])
        write_blessing(blessing, model, blessed=True)
        blessing.set_int_custom_property(NO_BASELINE_KEY, 1)


class BlessedModelEvaluator(Evaluator):
    """An Evaluator whose executor tolerates a missing baseline (see module docstring)."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
