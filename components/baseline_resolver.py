"""Resolver strategy choosing the latest blessed model a candidate must not fall behind.

The latest model blessed by the BlessingGate, other than the candidate itself
(so re-running an unchanged pipeline compares the same pair and hits the
cache); nothing when no model was ever blessed.
"""

from __future__ import annotations

from typing import Optional

from tfx import types
from tfx import v1 as tfx
from tfx.components.evaluator import constants

from components.blessings import is_blessed


class LatestBlessedOtherThanCandidateStrategy(tfx.dsl.experimental.ResolverStrategy):
    """Inputs: `model`, `model_blessing` (all of each), `candidate`. Output: `model` (0 or 1)."""

    def resolve_artifacts(self, store, input_dict: dict[str, list[types.Artifact]]
                          ) -> Optional[dict[str, list[types.Artifact]]]:
        candidate_ids = {model.id for model in input_dict["candidate"]}
        blessed_ids = {
            blessing.get_int_custom_property(constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY)
            for blessing in input_dict["model_blessing"] if is_blessed(blessing)}
        blessed = sorted((model for model in input_dict["model"]
                          if model.id in blessed_ids and model.id not in candidate_ids),
                         key=lambda model: model.id)
        return {**input_dict, "model": blessed[-1:], "model_blessing": []}
