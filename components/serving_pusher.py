"""A Pusher executor writing TF Serving's `<base>/<version>/` layout on any filesystem.

Everything goes through TFX's `fileio` (tf.io.gfile), so local paths, gs:// and
any filesystem TensorFlow knows work alike. Every `scheme://` path and every
path under `/gcs/` (Cloud Storage FUSE on Vertex AI) is treated as an object
store: no directory rename and no exclusive file creation there.

- Versions are increasing integers (1, 2, ...). A version number is reserved
  by creating the claim file `<base>/.version-<N>.json`: exclusively (O_EXCL)
  on local disks, so two pushes never take the same number, even from two
  pipelines sharing no lock. Object stores have no exclusive create: there the
  claim is written and read back, which narrows but cannot close that race.
- While a push works, its claim is a lease (`components.leases`): the claim
  records a `heartbeat` time that a background thread renews every
  `HEARTBEAT_SECONDS` (30 s) by writing the record anew and renaming it over the
  claim (`.version-<N>.json.<id>` meanwhile); rename of one file is atomic, or
  at least replaces it whole, on every filesystem here, even where writing in
  place would append. A push that finds its claim gone or taken by another
  nonce, or could not renew it within `LEASE_SECONDS`, fails before copying
  another file.
- On a local disk the model is copied to a hidden staging directory
  `.staging-<N>-<id>` and renamed to `<N>` only when complete (atomic).
  On an object store the files of `<N>/` are copied in place with
  `saved_model.pb` last (TF Serving may log failed loads of `<N>` until it is
  complete), and never over an existing file: a file already there means that
  another writer is using `<N>`, and the push fails.
- A failed push removes only what it wrote itself: its private staging
  directory on a local disk, exactly the files it copied on an object store
  (never a whole directory there), and its claim if that still holds its nonce.
- Remaining race on object stores: checking that a file or `<N>/` is absent
  and then writing it is not atomic, so two writers can still interleave and
  the later one overwrite the other's files; likewise a renewal can replace a
  claim that another push wrote over this one's an instant before.
- Leftovers are recognised by the lease alone, never by a process id (which
  another host, container or PID namespace cannot check): before each push, a
  claim of an incomplete `<N>` whose heartbeat is older than `LEASE_SECONDS`
  (10 min) is removed, and on an object store so are the files of `<N>/` it
  lists. A claim with no readable heartbeat (half written, or from an older
  version of this code) counts from its file's modification time, and is kept
  if the filesystem reports none. A staging directory or renewal file of `<N>`
  is removed when the claim of `<N>` is missing or expired (a staging
  directory without a number in its name belongs to no claim). Claims of
  complete versions are kept: they record what was pushed. The `owner`
  (host-pid) in a claim is for people reading it only.
- A model whose files are identical to the newest complete version (the
  highest `<N>` holding a `saved_model.pb`) is not pushed again. A model
  identical to an older version only (a rollback) is pushed as a new version,
  so that TF Serving, which serves the highest version, serves it. The claim
  files record each push's content digest, but the comparison reads the newest
  version itself, which other tools may have written.
- `ServingPusher` is TFX's Pusher with an optional `examples` input (ExampleGen's
  output): given it, every pushed version also holds TF Serving's warm-up
  requests (`components.warmup`), made of eval pairs and written with the model's
  files (into the staging directory, so part of the atomic push). They count in
  the comparison with the newest version, and the same eval data gives the same
  file, so an identical model is still not pushed again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import socket
import time
import uuid
from typing import Any, Callable

import tensorflow as tf
from absl import logging
from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, channel, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.utils import proto_utils

from components import leases, warmup
from components.blessings import SERVED_VERSION_KEY

STAGING_PREFIX = ".staging-"
CLAIM_PREFIX = ".version-"
FUSE_MOUNT = "/gcs/"
EXAMPLES_KEY = standard_component_specs.EXAMPLES_KEY  # the input of the warm-up requests' pairs
_NOT_FOUND = (fileio.NotFoundError, tf.errors.NotFoundError)


@dataclasses.dataclass(frozen=True)
class PushResult:
    """Where the model is served, and whether this push wrote it."""

    version_dir: str
    new: bool


def _is_object_store(path: str) -> bool:
    """Whether `path` lacks directory rename and exclusive create (`scheme://`, `/gcs/`)."""
    return "://" in path or path.startswith(FUSE_MOUNT)


def model_digest(model_path: str, extra_files: dict[str, bytes] | None = None) -> str:
    """SHA-256 over the relative paths and contents of every file of a SavedModel.

    `extra_files` (relative path: content) count as files of it, over any file there.
    """
    extra_files = extra_files or {}
    digest = hashlib.sha256()
    for relative in sorted({*_relative_files(model_path), *extra_files}):
        digest.update(relative.encode() + b"\0")
        if relative in extra_files:
            digest.update(extra_files[relative])
            continue
        with fileio.open(os.path.join(model_path, relative), "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def versions(base_directory: str) -> list[int]:
    """The integer version directories under the base directory."""
    if not fileio.isdir(base_directory):
        return []
    return sorted(int(name.rstrip("/")) for name in fileio.listdir(base_directory)
                  if name.rstrip("/").isdigit())


def _is_complete(version_dir: str) -> bool:
    return fileio.exists(os.path.join(version_dir, "saved_model.pb"))


def newest_complete_version(base_directory: str) -> str | None:
    """The directory of the highest version holding a `saved_model.pb`, if any."""
    for number in reversed(versions(base_directory)):
        version_dir = os.path.join(base_directory, str(number))
        if _is_complete(version_dir):
            return version_dir
    return None


def _claim_path(base_directory: str, number: int) -> str:
    return os.path.join(base_directory, f"{CLAIM_PREFIX}{number}.json")


def _read_claim(path: str) -> dict[str, Any]:
    with fileio.open(path, "r") as stream:
        return json.loads(stream.read())


def _holds_nonce(path: str, nonce: str) -> bool:
    """Whether the claim file at `path` exists, is readable and holds `nonce`."""
    try:
        return fileio.exists(path) and _read_claim(path).get("nonce") == nonce
    except (ValueError, *_NOT_FOUND):  # half written, written by two pushes at once, or removed
        return False


def _claimed_numbers(names: list[str]) -> list[int]:
    """The numbers of the claim files among these names, readable or not."""
    numbers = [name[len(CLAIM_PREFIX):-len(".json")] for name in names
               if name.startswith(CLAIM_PREFIX) and name.endswith(".json")]
    return [int(number) for number in numbers if number.isdigit()]


def next_version(base_directory: str) -> int:
    """One more than the largest version or claimed number (1 when there is none)."""
    taken = versions(base_directory)
    if fileio.isdir(base_directory):
        taken += _claimed_numbers(fileio.listdir(base_directory))
    return max(taken, default=0) + 1


def _claim_is_live(path: str) -> bool:
    """Whether the claim at `path` exists and has not expired (see the module docstring)."""
    try:
        try:
            heartbeat = float(_read_claim(path)["heartbeat"])
        except (ValueError, KeyError, TypeError):  # half written, or written by older code
            heartbeat = fileio.stat(path).mtime_nsec / 1e9
            if not heartbeat:  # the filesystem keeps no modification times: keep the claim
                return True
    except _NOT_FOUND:
        return False
    return not leases.expired(heartbeat)


def _owning_version(name: str) -> str | None:
    """The `<N>` of a staging directory or claim renewal file (maybe not a number), else None."""
    if name.startswith(STAGING_PREFIX):
        return name[len(STAGING_PREFIX):].split("-", 1)[0]
    if name.startswith(CLAIM_PREFIX) and ".json." in name:
        return name[len(CLAIM_PREFIX):].split(".json.", 1)[0]
    return None


def remove_stale_entries(base_directory: str) -> list[str]:
    """Removes what pushes whose lease expired left behind (see the module docstring).

    Returns the names of what it removed.
    """
    names = [name.rstrip("/") for name in fileio.listdir(base_directory)]
    claimed = _claimed_numbers(names)
    live = {number for number in claimed
            if _claim_is_live(_claim_path(base_directory, number))}
    removed = []
    for number in sorted(set(claimed) - live):
        path = _claim_path(base_directory, number)
        if _is_complete(os.path.join(base_directory, str(number))):
            continue  # its claim records what was pushed
        try:
            files = _read_claim(path).get("files", [])
        except ValueError:
            files = []
        except _NOT_FOUND:
            continue  # released meanwhile
        if str(number) in names and _is_object_store(base_directory):  # copied in place
            removed += _remove_files(base_directory,
                                     [os.path.join(str(number), name) for name in files])
        with contextlib.suppress(*_NOT_FOUND):
            fileio.remove(path)
            removed.append(os.path.basename(path))
    for name in names:
        owner = _owning_version(name)
        if owner is None or (owner.isdigit() and int(owner) in live):
            continue
        path = os.path.join(base_directory, name)
        with contextlib.suppress(*_NOT_FOUND):  # its push may have just finished
            if name.startswith(STAGING_PREFIX):
                fileio.rmtree(path)
            else:
                fileio.remove(path)
            removed.append(name)
    return removed


def _claim(base_directory: str, record: dict[str, Any]) -> int:
    """Reserves the next free version number with its claim file (exclusive on local disks)."""
    while True:
        number = next_version(base_directory)
        path = _claim_path(base_directory, number)
        payload = json.dumps({**record, "version": number, "heartbeat": time.time()})
        if not _is_object_store(path):
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except OSError as error:
                if error.errno == errno.EEXIST:
                    continue  # another push took this number first
                raise
            with os.fdopen(descriptor, "w") as stream:
                stream.write(payload)
            return number
        if fileio.exists(path):
            continue
        with fileio.open(path, "w") as stream:
            stream.write(payload)
        if _holds_nonce(path, record["nonce"]):
            return number


def _renew_claim(path: str, claim: dict[str, Any]) -> bool:
    """Writes the claim anew with a fresh heartbeat; False once it is no longer this push's."""
    if not _holds_nonce(path, claim["nonce"]):
        return False
    renewal = f"{path}.{uuid.uuid4().hex}"  # renamed over the claim: replaced whole, not appended
    with fileio.open(renewal, "w") as stream:
        stream.write(json.dumps({**claim, "heartbeat": time.time()}))
    try:
        fileio.rename(renewal, path, overwrite=True)
    except BaseException:
        fileio.remove(renewal)
        raise
    return True


def _release_claim(base_directory: str, number: int, nonce: str) -> None:
    """Removes the claim of `number` if it still holds this push's nonce."""
    path = _claim_path(base_directory, number)
    if _holds_nonce(path, nonce):
        fileio.remove(path)


class ServedModelChangedError(RuntimeError):
    """The newest served version is not the one the gate compared the candidate with."""


def version_number(version_dir: str | None) -> int:
    """The number of a version directory (0 for None: nothing served)."""
    return int(os.path.basename(version_dir)) if version_dir else 0


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
    files = _push_order({*_relative_files(model_path), *extra_files})
    record = {"owner": f"{socket.gethostname()}-{os.getpid()}", "time": time.time(),
              "source": model_path, "digest": digest, "files": files, "nonce": uuid.uuid4().hex}
    version = _claim(base_directory, record)
    target = os.path.join(base_directory, str(version))
    claim_path = _claim_path(base_directory, version)
    try:
        with leases.Heartbeat(lambda: _renew_claim(claim_path, {**record, "version": version}),
                              claim_path) as lease:
            if gated_against is not None and version != gated_against + 1:
                raise ServedModelChangedError(
                    f"{base_directory}: version {gated_against + 1} is being pushed by another "
                    f"run (it would be served before this model, which was compared with "
                    f"version {gated_against or 'none'}); nothing pushed: run the pipeline again "
                    "once it is done")
            if fileio.exists(target):
                raise FileExistsError(f"{target} appeared while pushing; not overwriting it")
            if _is_object_store(base_directory):
                _copy_in_place(model_path, target, files, extra_files, lease.check)
            else:
                _copy_then_rename(model_path, base_directory, target, files, extra_files,
                                  lease.check)
    except BaseException:
        _release_claim(base_directory, version, record["nonce"])
        raise
    return PushResult(target, new=True)


def _push_order(files: set[str]) -> list[str]:
    """The relative paths sorted, `saved_model.pb` last."""
    return sorted(files, key=lambda path: (path == "saved_model.pb", path))


def _relative_files(source: str) -> list[str]:
    """Every file below `source`, relative to it, `saved_model.pb` last."""
    files = set()
    for directory, _, names in fileio.walk(source):
        relative = os.path.relpath(directory, source)
        files.update(os.path.normpath(os.path.join(relative, name)) for name in names)
    return _push_order(files)


def _copy_then_rename(source: str, base_directory: str, target: str, files: list[str],
                      extra_files: dict[str, bytes], check: Callable[[], None]) -> None:
    """Local disks: copies to a private staging directory, then renames it to `target`.

    `check` raises if the push may no longer publish (before each file and the rename).
    """
    staging = os.path.join(base_directory,
                           f"{STAGING_PREFIX}{os.path.basename(target)}-{uuid.uuid4().hex}")
    try:
        _copy_files(source, staging, files, extra_files, [], check)  # private: removed on failure
        check()
        fileio.rename(staging, target)
    except BaseException:
        if fileio.exists(staging):
            fileio.rmtree(staging)
        raise


def copy_model(source: str, destination: str) -> None:
    """Copies every file of a SavedModel directory into a new directory."""
    _copy_files(source, destination, _relative_files(source), {}, [], check=lambda: None)


def _copy_in_place(source: str, target: str, files: list[str], extra_files: dict[str, bytes],
                   check: Callable[[], None]) -> None:
    """Object stores: copies into `target`; on failure removes exactly the files it wrote."""
    written: list[str] = []
    try:
        _copy_files(source, target, files, extra_files, written, check)
    except BaseException:
        _remove_files(target, written)
        raise


def _copy_files(source: str, destination: str, files: list[str],
                extra_files: dict[str, bytes], written: list[str],
                check: Callable[[], None]) -> None:
    """Copies `files` (from `extra_files` if there, else from `source`), never over an
    existing file; appends each one it (partly) wrote.

    `check` runs before each file, and raises to stop the copy.
    """
    for relative in files:
        check()
        path = os.path.join(destination, relative)
        fileio.makedirs(os.path.dirname(path))
        try:
            if relative in extra_files:
                _write_new_file(path, extra_files[relative])
            else:
                fileio.copy(os.path.join(source, relative), path, overwrite=False)
        except tf.errors.AlreadyExistsError as error:
            raise FileExistsError(
                f"{path} already exists: another writer is using {destination}") from error
        except BaseException:
            written.append(relative)  # a failed copy may have left part of the file
            raise
        written.append(relative)


def _write_new_file(path: str, content: bytes) -> None:
    """Writes a file that must not exist yet (the check and the write are not atomic)."""
    if fileio.exists(path):
        raise tf.errors.AlreadyExistsError(None, None, f"{path} already exists")
    with fileio.open(path, "wb") as stream:
        stream.write(content)


def _remove_files(directory: str, files: list[str]) -> list[str]:
    """Removes those of the listed files below `directory` that exist (never a directory)."""
    removed = [relative for relative in files
               if fileio.exists(os.path.join(directory, relative))]
    for relative in removed:
        fileio.remove(os.path.join(directory, relative))
    return removed


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
    pairs = warmup.read_pairs(artifact_utils.get_split_uri(examples, warmup.EVAL_SPLIT))
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
