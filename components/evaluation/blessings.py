"""Writing and reading ModelBlessing artifacts the way TFX's Evaluator and Pusher do."""

from __future__ import annotations

import os

from tfx import types
from tfx.components.evaluator import constants
from tfx.utils import io_utils


def is_blessed(blessing: types.Artifact) -> bool:
    """Whether a ModelBlessing says "blessed"."""
    return (blessing.get_int_custom_property(constants.ARTIFACT_PROPERTY_BLESSED_KEY)
            == constants.BLESSED_VALUE)


def write_blessing(blessing: types.Artifact, model: types.Artifact, blessed: bool) -> None:
    """Writes the BLESSED / NOT_BLESSED file and the properties the Pusher and resolvers read."""
    name = constants.BLESSED_FILE_NAME if blessed else constants.NOT_BLESSED_FILE_NAME
    io_utils.write_string_file(os.path.join(blessing.uri, name), "")
    blessing.set_int_custom_property(
        constants.ARTIFACT_PROPERTY_BLESSED_KEY,
        constants.BLESSED_VALUE if blessed else constants.NOT_BLESSED_VALUE)
    blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY, model.id)
    blessing.set_string_custom_property(constants.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY,
                                        model.uri)
