"""Resolver strategy choosing the model a candidate must beat.

The baseline is the latest blessed model other than the candidate itself
(so re-running an unchanged pipeline compares the same pair and hits the
cache), or, when no model was ever blessed, the not-fine-tuned model.
"""

from __future__ import annotations

from typing import Optional

from tfx import types
from tfx import v1 as tfx

BLESSED_KEY = "blessed"
MODEL_ID_KEY = "current_model_id"


class LatestBlessedOrFallbackStrategy(tfx.dsl.experimental.ResolverStrategy):
    """Inputs: `model`, `model_blessing` (all of each), `candidate`, `fallback`."""

    def resolve_artifacts(self, store, input_dict: dict[str, list[types.Artifact]]
                          ) -> Optional[dict[str, list[types.Artifact]]]:
        candidate_ids = {model.id for model in input_dict["candidate"]}
        blessed_ids = {blessing.get_int_custom_property(MODEL_ID_KEY)
                       for blessing in input_dict["model_blessing"]
                       if blessing.get_int_custom_property(BLESSED_KEY) == 1}
        blessed = sorted((model for model in input_dict["model"]
                          if model.id in blessed_ids and model.id not in candidate_ids),
                         key=lambda model: model.id)
        chosen = blessed[-1:] or input_dict["fallback"][-1:]
        return {**input_dict, "model": chosen, "model_blessing": []}
