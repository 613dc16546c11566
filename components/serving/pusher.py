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
- Every version it pushes holds its record, `assets.extra/version.json`
  (`components.serving.history`): run id, checkpoint and family (the optional
  execution property `version_facts`, else the Trainer's `warm_start/model.json`), the
  examples' span and input fingerprint, the candidate's accuracy and F1 (the blessing's
  `figures`), and the digest of the model's files. It is written once the number is
  claimed, with the model's files, and does not count in the comparison.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
import uuid
from typing import Any, Callable

from absl import logging
from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, channel, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.utils import proto_utils

from components.file_trees import relative_files
from components.serving import history, leases, warmup
from components.serving.claims import (claim_next_version, claim_path, release_claim,
                                       remove_stale_entries, renew_claim)
from components.serving.files import copy_in_place, copy_then_rename, model_digest, push_order
from components.serving.layout import (SERVED_VERSION_KEY, is_object_store, newest_complete_version,
                                       version_number)
from components.serving.model_card import model_card

EXAMPLES_KEY = standard_component_specs.EXAMPLES_KEY  # the input of the warm-up requests' pairs
# Execution property: JSON of the version record's facts the pipeline knows (checkpoint, family).
VERSION_FACTS_KEY = "version_facts"
GIVEN_FACTS = ("checkpoint", "family")
# Written by the Trainer into the model (components.training.warm_start, read here by path).
TRAINED_IDENTITY_FILE = os.path.join("assets.extra", "warm_start", "model.json")
SPAN_KEY = "span"  # custom properties of ExampleGen's Examples, set by TFX's driver
FINGERPRINT_KEY = "input_fingerprint"
# (claimed version, digest of the model's files) -> files written into that version only
# (`history.UNCOUNTED_FILES`: the record, the model card).
VersionFiles = Callable[[int, str], dict[str, bytes]]


@dataclasses.dataclass(frozen=True)
class PushResult:
    """Where the model is served, and whether this push wrote it."""

    version_dir: str
    new: bool


class ServedModelChangedError(RuntimeError):
    """The newest served version is not the one the gate compared the candidate with."""


def push_model(model_path: str, base_directory: str, gated_against: int | None = None,
               extra_files: dict[str, bytes] | None = None,
               version_files: VersionFiles | None = None) -> PushResult:
    """Copies a SavedModel to the next version directory, unless it is the newest one.

    `extra_files` (relative path: content) are written into the version with the
    model's files, and count in the comparison with the newest version.
    `version_files(version, digest)` gives the files that depend on the claimed number
    (`history.UNCOUNTED_FILES` only), written with them too; they do not count. A record
    in `model_path` itself is never copied: only `version_files` writes one.

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
    model_files = set(relative_files(model_path)) - {history.RECORD_FILE}
    record = {"owner": f"{socket.gethostname()}-{os.getpid()}", "time": time.time(),
              "source": model_path, "digest": digest, "nonce": uuid.uuid4().hex,
              "files": push_order({*model_files, *extra_files, *history.UNCOUNTED_FILES})}
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
            written = {**extra_files, **_checked_version_files(
                version_files(version, digest) if version_files else {}, version)}
            files = push_order({*model_files, *written})
            if is_object_store(base_directory):
                copy_in_place(model_path, target, files, written, lease.check)
            else:
                copy_then_rename(model_path, base_directory, target, files, written, lease.check)
    except BaseException:
        release_claim(base_directory, version, record["nonce"])
        raise
    return PushResult(target, new=True)


def _checked_version_files(files: dict[str, bytes], version: int) -> dict[str, bytes]:
    """`files` if they are all among `history.UNCOUNTED_FILES` (the claim lists only those)."""
    unexpected = sorted(set(files) - history.UNCOUNTED_FILES)
    if unexpected:
        raise ValueError(f"version {version}: version_files may write only "
                         f"{', '.join(sorted(history.UNCOUNTED_FILES))}; got {unexpected}")
    return files


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
        model_path = self.GetModelPath(input_dict)
        facts = pushed_model_facts(model_path, blessing, input_dict.get(EXAMPLES_KEY, []),
                              exec_properties.get(VERSION_FACTS_KEY),
                              self._context.pipeline_run_id if self._context else None)
        extra_files, per_version_files = version_extra_files(
            input_dict.get(EXAMPLES_KEY, []), facts, _gate_figures(blessing))
        result = push_model(model_path, destination.filesystem.base_directory,
                            gated_against=blessing.get_int_custom_property(SERVED_VERSION_KEY),
                            extra_files=extra_files, version_files=per_version_files)
        if result.new:
            logging.info("Model pushed to %s", result.version_dir)
        else:
            logging.warning("This model is already served as %s; not pushed again",
                            result.version_dir)
        model_push.set_int_custom_property("already_served", int(not result.new))
        self._MarkPushed(model_push, pushed_destination=result.version_dir,
                         pushed_version=os.path.basename(result.version_dir))


def version_extra_files(examples: list[types.Artifact], facts: dict[str, Any],
                        figures: dict[str, Any] | None = None
                        ) -> tuple[dict[str, bytes], VersionFiles]:
    """Every file the Pusher adds to a model's own, in one place: those that count in the
    comparison with the newest version (the warm-up requests), and those written once the
    number is claimed, which do not (the record, and the model card made of the record
    and the gate's `figures`).
    """
    counted = _warmup_files(examples)

    def per_version(version: int, digest: str) -> dict[str, bytes]:
        record = history.new_record(version, digest, facts)
        return {history.RECORD_FILE: history.record_bytes(record),
                history.CARD_FILE: model_card(record, figures).encode("utf-8")}

    return counted, per_version


def _gate_figures(blessing: types.Artifact) -> dict[str, Any] | None:
    """The BlessingGate's figures on the blessing (None: a blessing without them)."""
    if not blessing.has_custom_property(history.FIGURES_KEY):
        return None
    return json.loads(blessing.get_string_custom_property(history.FIGURES_KEY))


def pushed_model_facts(model_path: str, blessing: types.Artifact, examples: list[types.Artifact],
                  given_json: str | None, run_id: str | None) -> dict[str, Any]:
    """The record's facts (`history.FACT_KEYS`) of a model pushed by a pipeline run."""
    given = json.loads(given_json) if given_json else {}
    if not isinstance(given, dict) or set(given) - set(GIVEN_FACTS):
        raise ValueError(f"{VERSION_FACTS_KEY}: a JSON object with keys among "
                         f"{', '.join(GIVEN_FACTS)} expected; got {given_json}")
    figures = (blessing.get_string_custom_property(history.FIGURES_KEY)
               if blessing.has_custom_property(history.FIGURES_KEY) else None)
    return {**history.empty_facts(), "run_id": run_id, "checkpoint": given.get("checkpoint"),
            "family": given.get("family") or _trained_family(model_path),
            "data": _data_facts(examples), **history.candidate_figures(figures)}


def _trained_family(model_path: str) -> str | None:
    """The `model_type` the Trainer recorded in the model (None for a model without it)."""
    path = os.path.join(model_path, TRAINED_IDENTITY_FILE)
    if not fileio.exists(path):
        logging.warning("%s is missing: the version record's family is unknown", path)
        return None
    with fileio.open(path, "r") as stream:
        text = stream.read()
    try:
        return json.loads(text)["model_type"]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: no model_type ({error!r})") from error


def _data_facts(examples: list[types.Artifact]) -> dict[str, Any] | None:
    """The span and input fingerprint of ExampleGen's output (None without that input)."""
    if not examples:
        return None
    artifact = artifact_utils.get_single_instance(examples)
    return {"span": (artifact.get_int_custom_property(SPAN_KEY)
                     if artifact.has_custom_property(SPAN_KEY) else None),
            "fingerprint": (artifact.get_string_custom_property(FINGERPRINT_KEY)
                            if artifact.has_custom_property(FINGERPRINT_KEY) else None)}


def _warmup_files(examples: list[types.Artifact]) -> dict[str, bytes]:
    """TF Serving's warm-up file made of the eval split's pairs (none without examples)."""
    if not examples:
        return {}
    pairs = warmup.read_split_pairs(artifact_utils.get_split_uri(examples, warmup.EVAL_SPLIT))
    return {warmup.WARMUP_FILE: warmup.warmup_file(pairs)} if pairs else {}


class ServingPusherSpec(standard_component_specs.PusherSpec):
    """TFX's PusherSpec with an optional `examples` input (the warm-up requests' pairs) and
    an optional `version_facts` execution property (JSON, see `pushed_model_facts`)."""

    PARAMETERS = {**standard_component_specs.PusherSpec.PARAMETERS,
                  VERSION_FACTS_KEY: ExecutionParameter(type=str, optional=True)}
    INPUTS = {**standard_component_specs.PusherSpec.INPUTS,
              EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples, optional=True)}


class ServingPusher(base_component.BaseComponent):
    """TFX's Pusher with this module's executor, a record in every version and, given
    `examples`, warm-up requests. An `infra_blessing` (TFX's InfraValidator) that is not
    blessed stops the push, as in TFX's Pusher (its executor's `CheckBlessing`)."""

    SPEC_CLASS = ServingPusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, model: channel.BaseChannel, model_blessing: channel.BaseChannel,
                 push_destination: pusher_pb2.PushDestination,
                 examples: channel.BaseChannel | None = None,
                 infra_blessing: channel.BaseChannel | None = None,
                 version_facts: str | None = None):
        super().__init__(spec=ServingPusherSpec(
            model=model, model_blessing=model_blessing, infra_blessing=infra_blessing,
            push_destination=push_destination, examples=examples, version_facts=version_facts,
            pushed_model=channel.Channel(type=standard_artifacts.PushedModel)))
