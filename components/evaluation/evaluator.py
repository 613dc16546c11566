"""TFX's Evaluator, scoring in bf16 where the CPU computes it (components.precision.scoring).

TFMA loads the candidate and the baseline SavedModels and calls their
`serving_default` signature; under this executor those calls run with
grappler's oneDNN bf16 rewrite when the CPU has avx512_bf16 or AMX (the
precision comes from $QQP_TFX_SCORING_PRECISION, default `auto`). The rewrite
reaches the Beam workers of this process (the default in-process DirectRunner);
workers in other processes or machines score in float32.
"""

from __future__ import annotations

from typing import Any

from tfx import types
from tfx.components import Evaluator as TfxEvaluator
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import executor_spec

from components.precision.scoring import default_precision, scoring_precision


class Executor(evaluator_executor.Executor):
    """TFX's Evaluator executor under the scoring precision."""

    def Do(self, input_dict: dict[str, list[types.Artifact]],
           output_dict: dict[str, list[types.Artifact]],
           exec_properties: dict[str, Any]) -> None:
        with scoring_precision(default_precision()):
            super().Do(input_dict, output_dict, exec_properties)


class Evaluator(TfxEvaluator):
    """TFX's Evaluator component, with the executor above."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
