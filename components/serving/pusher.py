"""The Pusher: publishes a blessed model as the next version of TF Serving's directory.

The layout is `components.serving.layout`; the version number is reserved by a claim
that is a lease while the push copies (`components.serving.claims`).

- On a local disk the model is copied to a hidden staging directory
  `.staging-<N>-<id>` and renamed to `<N>` only when complete (atomic). On an object
  store the files of `<N>/` are copied in place with `saved_model.pb` last (TF Serving
  may log failed loads of `<N>` until it is complete), and never over an existing
  file: a file already there means that another writer is using `<N>`, and the push
  fails (`components.serving.files`).
- A failed push removes only what it wrote itself: its private staging directory on a
  local disk, exactly the files it copied on an object store (never a whole directory
  there), and its claim if that still holds its nonce.
- Remaining race on object stores: checking that a file or `<N>/` is absent and then
  writing it is not atomic, so two writers can still interleave and the later one
  overwrite the other's files; likewise a renewal can replace a claim that another
  push wrote over this one's an instant before.
- A model whose files are identical to the newest complete version is not pushed
  again. A model identical to an older version only (a rollback) is pushed as a new
  version, so that TF Serving, which serves the highest version, serves it. The claim
  files record each push's content digest, but the comparison reads the newest
  version itself, which other tools may have written.
- `ServingPusher` is TFX's Pusher with an optional `examples` input (ExampleGen's
  output): given it, every pushed version also holds TF Serving's warm-up requests
  (`components.serving.warmup`), made of eval pairs and written with the model's files
  (into the staging directory, so part of the atomic push). They count in the
  comparison with the newest version, and the same eval data gives the same file, so
  an identical model is still not pushed again.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
import uuid
from typing import Any

from absl import logging
from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, channel, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.utils import proto_utils

from components.file_trees import relative_files
from components.serving import leases, warmup
from components.serving.claims import (claim_next_version, claim_path, release_claim,
                                       remove_stale_entries, renew_claim)
from components.serving.files import copy_in_place, copy_then_rename, model_digest, push_order
from components.serving.layout import (SERVED_VERSION_KEY, is_object_store, newest_complete_version,
                                       version_number)

EXAMPLES_KEY = standard_component_specs.EXAMPLES_KEY  # the input of the warm-up requests' pairs


@dataclasses.dataclass(frozen=True)
class PushResult:
    """Where the model is served, and whether this push wrote it."""

    version_dir: str
    new: bool


class ServedModelChangedError(RuntimeError):
    """The newest served version is not the one the gate compared the candidate with."""


def push_model(model_path: str, base_directory: str, gated_against: int | None = None,
               extra_files: dict[str, bytes] | None = None) -> PushResult:
    """Copies a SavedModel to the next version directory, unless it is the newest one.

    `extra_files` (relative path: content) are written into the version with the
    model's files, and count in the comparison with the newest version.

    `gated_against` is the version the gate compared the model with (0: nothing was
    served). Nothing is pushed, and ServedModelChangedError says why, if the newest
    version is another one now, or if another push holds a number between that
    version and ours (it is still copying, and would be served before ours had
    been compared with it). Two pushes that claim their numbers at the same moment
    on an object store can still both pass: the window is short, not closed.
    """
    fileio.makedirs(base_directory)
    for name in remove_stale_entries(base_directory):
        logging.warning("Removed %s, left behind by a push that did not finish", name)
    newest = newest_complete_version(base_directory)
    if gated_against is not None and version_number(newest) != gated_against:
        raise ServedModelChangedError(
            f"{base_directory}: the newest version is now {version_number(newest) or 'none'}, "
            f"but the gate compared the candidate with version {gated_against or 'none'}; "
            "nothing pushed: run the pipeline again to gate against what is served now")
    extra_files = extra_files or {}
    digest = model_digest(model_path, extra_files)
    if newest is not None and model_digest(newest) == digest:
        return PushResult(newest, new=False)
    files = push_order({*relative_files(model_path), *extra_files})
    record = {"owner": f"{socket.gethostname()}-{os.getpid()}", "time": time.time(),
              "source": model_path, "digest": digest, "files": files, "nonce": uuid.uuid4().hex}
    version = claim_next_version(base_directory, record)
    target = os.path.join(base_directory, str(version))
    claim_file = claim_path(base_directory, version)
    try:
        with leases.Heartbeat(lambda: renew_claim(claim_file, {**record, "version": version}),
                              claim_file) as lease:
            if gated_against is not None and version != gated_against + 1:
                raise ServedModelChangedError(
                    f"{base_directory}: version {gated_against + 1} is being pushed by another "
                    f"run (it would be served before this model, which was compared with "
                    f"version {gated_against or 'none'}); nothing pushed: run the pipeline again "
                    "once it is done")
            if fileio.exists(target):
                raise FileExistsError(f"{target} appeared while pushing; not overwriting it")
            if is_object_store(base_directory):
                copy_in_place(model_path, target, files, extra_files, lease.check)
            else:
                copy_then_rename(model_path, base_directory, target, files, extra_files,
                                  lease.check)
    except BaseException:
        release_claim(base_directory, version, record["nonce"])
        raise
    return PushResult(target, new=True)


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
        blessing = artifact_utils.get_single_instance(
            input_dict[standard_component_specs.MODEL_BLESSING_KEY])
        result = push_model(self.GetModelPath(input_dict), destination.filesystem.base_directory,
                            gated_against=blessing.get_int_custom_property(SERVED_VERSION_KEY),
                            extra_files=_warmup_files(input_dict.get(EXAMPLES_KEY, [])))
        if result.new:
            logging.info("Model pushed to %s", result.version_dir)
        else:
            logging.warning("This model is already served as %s; not pushed again",
                            result.version_dir)
        model_push.set_int_custom_property("already_served", int(not result.new))
        self._MarkPushed(model_push, pushed_destination=result.version_dir,
                         pushed_version=os.path.basename(result.version_dir))


def _warmup_files(examples: list[types.Artifact]) -> dict[str, bytes]:
    """TF Serving's warm-up file made of the eval split's pairs (none without examples)."""
    if not examples:
        return {}
    pairs = warmup.read_split_pairs(artifact_utils.get_split_uri(examples, warmup.EVAL_SPLIT))
    return {warmup.WARMUP_FILE: warmup.warmup_file(pairs)} if pairs else {}


class ServingPusherSpec(standard_component_specs.PusherSpec):
    """TFX's PusherSpec with an optional `examples` input (the warm-up requests' pairs)."""

    INPUTS = {**standard_component_specs.PusherSpec.INPUTS,
              EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples, optional=True)}


class ServingPusher(base_component.BaseComponent):
    """TFX's Pusher with this module's executor and, given `examples`, warm-up requests."""

    SPEC_CLASS = ServingPusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, model: channel.BaseChannel, model_blessing: channel.BaseChannel,
                 push_destination: pusher_pb2.PushDestination,
                 examples: channel.BaseChannel | None = None):
        super().__init__(spec=ServingPusherSpec(
            model=model, model_blessing=model_blessing, push_destination=push_destination,
            examples=examples,
            pushed_model=channel.Channel(type=standard_artifacts.PushedModel)))
