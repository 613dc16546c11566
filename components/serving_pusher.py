"""A Pusher executor writing TF Serving's `<base>/<version>/` layout atomically.

Versions are increasing integers (1, 2, ...). The model is copied into a hidden
temporary directory next to the versions and renamed into place only when the
copy is complete, so a failed push leaves no half-written version, and an
existing version is never overwritten.
"""

from __future__ import annotations

import os
import shutil
import uuid
from typing import Any

from absl import logging
from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils


def next_version(base_directory: str) -> int:
    """One more than the largest integer version directory (1 when there is none)."""
    if not os.path.isdir(base_directory):
        return 1
    versions = [int(name) for name in os.listdir(base_directory) if name.isdigit()]
    return max(versions, default=0) + 1


def push_model(model_path: str, base_directory: str) -> str:
    """Copies a SavedModel to the next version directory; returns that directory."""
    os.makedirs(base_directory, exist_ok=True)
    version = next_version(base_directory)
    target = os.path.join(base_directory, str(version))
    staging = os.path.join(base_directory, f".partial-{version}-{uuid.uuid4().hex}")
    try:
        shutil.copytree(model_path, staging)
        if os.path.exists(target):
            raise FileExistsError(f"{target} appeared while pushing; not overwriting it")
        os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


class Executor(pusher_executor.Executor):
    """Pushes a blessed model to `<push_destination.filesystem.base_directory>/<n>/`."""

    def Do(self, input_dict: dict[str, list[types.Artifact]],
           output_dict: dict[str, list[types.Artifact]],
           exec_properties: dict[str, Any]) -> None:
        model_push = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        serving_path = push_model(self.GetModelPath(input_dict),
                                  destination.filesystem.base_directory)
        logging.info("Model pushed to %s", serving_path)
        self._MarkPushed(model_push, pushed_destination=serving_path,
                         pushed_version=os.path.basename(serving_path))
