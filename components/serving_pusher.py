"""A Pusher executor writing TF Serving's `<base>/<version>/` layout on any filesystem.

Everything goes through TFX's `fileio` (tf.io.gfile), so local paths, gs:// and
any filesystem TensorFlow knows work alike.

- Versions are increasing integers (1, 2, ...). A version number is reserved
  by creating the claim file `<base>/.version-<N>.json` exclusively (O_EXCL on
  local disks), so two pushes never take the same number, even from two
  pipelines sharing no lock. On filesystems without exclusive create (object
  stores) the claim is written and read back, which narrows but cannot close
  that race.
- On a local disk the model is copied to a hidden staging directory
  `.staging-<host>-<pid>-<id>` and renamed to `<N>` only when complete (atomic).
  Object stores have no directory rename: there the files of `<N>/` are copied
  in place with `saved_model.pb` last, and TF Serving may log failed loads of
  `<N>` until it is complete.
- Stale staging directories, partial versions and claims of pushes whose
  process is gone (same host) are removed before each push.
- A model whose files are identical to an already pushed version is not pushed
  again: the claim files record each version's content digest.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import socket
import time
import uuid
from typing import Any

from absl import logging
from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from components.processes import is_dead_here

STAGING_PREFIX = ".staging-"
CLAIM_PREFIX = ".version-"


@dataclasses.dataclass(frozen=True)
class PushResult:
    """Where the model is served, and whether this push wrote it."""

    version_dir: str
    new: bool


def _is_local(path: str) -> bool:
    return "://" not in path


def _owner() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _owner_is_dead(owner: str) -> bool:
    """Whether `<host>-<pid>` names a process of this host that no longer runs."""
    host, _, pid = owner.rpartition("-")
    return pid.isdigit() and is_dead_here(host, int(pid))


def model_digest(model_path: str) -> str:
    """SHA-256 over the relative paths and contents of every file of a SavedModel."""
    digest = hashlib.sha256()
    for directory, _, files in sorted(fileio.walk(model_path)):
        for name in sorted(files):
            path = os.path.join(directory, name)
            digest.update(os.path.relpath(path, model_path).encode() + b"\0")
            with fileio.open(path, "rb") as stream:
                for block in iter(lambda: stream.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def versions(base_directory: str) -> list[int]:
    """The integer version directories under the base directory."""
    if not fileio.isdir(base_directory):
        return []
    return sorted(int(name.rstrip("/")) for name in fileio.listdir(base_directory)
                  if name.rstrip("/").isdigit())


def _claims(base_directory: str) -> dict[int, dict[str, Any]]:
    """Version -> claim record, for every claim file under the base directory."""
    claims = {}
    for name in fileio.listdir(base_directory):
        if name.startswith(CLAIM_PREFIX) and name.endswith(".json"):
            number = name[len(CLAIM_PREFIX):-len(".json")]
            try:
                with fileio.open(os.path.join(base_directory, name), "r") as stream:
                    claims[int(number)] = json.loads(stream.read())
            except (ValueError, OSError):
                continue
    return claims


def next_version(base_directory: str) -> int:
    """One more than the largest version or claimed number (1 when there is none)."""
    taken = versions(base_directory)
    if fileio.isdir(base_directory):
        taken += list(_claims(base_directory))
    return max(taken, default=0) + 1


def remove_stale_entries(base_directory: str) -> list[str]:
    """Removes staging directories and unfinished claims of dead pushes; returns their names."""
    existing = set(versions(base_directory))
    removed = []
    for name in fileio.listdir(base_directory):
        name = name.rstrip("/")
        path = os.path.join(base_directory, name)
        if name.startswith(STAGING_PREFIX) and _owner_is_dead(
                name[len(STAGING_PREFIX):].rsplit("-", 1)[0]):
            fileio.rmtree(path)
            removed.append(name)
    for number, claim in _claims(base_directory).items():
        version_dir = os.path.join(base_directory, str(number))
        complete = fileio.exists(os.path.join(version_dir, "saved_model.pb"))
        if complete or not _owner_is_dead(claim.get("owner", "")):
            continue
        if number in existing:  # an object-store push copied in place, then died
            _remove_files(version_dir, [])
            removed.append(str(number))
        fileio.remove(os.path.join(base_directory, f"{CLAIM_PREFIX}{number}.json"))
        removed.append(f"{CLAIM_PREFIX}{number}.json")
    return removed


def _claim(base_directory: str, record: dict[str, Any]) -> int:
    """Reserves the next free version number by creating its claim file exclusively."""
    while True:
        number = next_version(base_directory)
        path = os.path.join(base_directory, f"{CLAIM_PREFIX}{number}.json")
        payload = json.dumps({**record, "version": number})
        if _is_local(path):
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
        with fileio.open(path, "r") as stream:
            if json.loads(stream.read()).get("nonce") == record["nonce"]:
                return number


def push_model(model_path: str, base_directory: str) -> PushResult:
    """Copies a SavedModel to the next version directory, unless it is already served."""
    fileio.makedirs(base_directory)
    for name in remove_stale_entries(base_directory):
        logging.warning("Removed %s, left behind by a push that did not finish", name)
    digest = model_digest(model_path)
    served = set(versions(base_directory))
    for number, claim in sorted(_claims(base_directory).items()):
        if claim.get("digest") == digest and number in served:
            return PushResult(os.path.join(base_directory, str(number)), new=False)
    record = {"owner": _owner(), "time": time.time(), "source": model_path, "digest": digest,
              "nonce": uuid.uuid4().hex}
    version = _claim(base_directory, record)
    target = os.path.join(base_directory, str(version))
    # Local disks: copy to a hidden staging directory, then rename it (atomic). Object
    # stores have no directory rename: copy in place, `saved_model.pb` last.
    staging = (os.path.join(base_directory, f"{STAGING_PREFIX}{_owner()}-{uuid.uuid4().hex}")
               if _is_local(base_directory) else target)
    files = _relative_files(model_path)
    try:
        if fileio.exists(target):
            raise FileExistsError(f"{target} appeared while pushing; not overwriting it")
        _copy_files(model_path, staging, files)
        if staging != target:
            fileio.rename(staging, target)
    except BaseException:
        _remove_files(staging, files)
        fileio.remove(os.path.join(base_directory, f"{CLAIM_PREFIX}{version}.json"))
        raise
    return PushResult(target, new=True)


def _relative_files(source: str) -> list[str]:
    """Every file below `source`, relative to it, `saved_model.pb` last."""
    files = []
    for directory, _, names in fileio.walk(source):
        relative = os.path.relpath(directory, source)
        files += [os.path.normpath(os.path.join(relative, name)) for name in names]
    return sorted(files, key=lambda path: (path == "saved_model.pb", path))


def _copy_files(source: str, destination: str, files: list[str]) -> None:
    for relative in files:
        fileio.makedirs(os.path.dirname(os.path.join(destination, relative)))
        fileio.copy(os.path.join(source, relative), os.path.join(destination, relative))


def _remove_files(directory: str, files: list[str]) -> None:
    """Removes a partial copy: the listed files, then the directory where that works."""
    for relative in files:
        path = os.path.join(directory, relative)
        if fileio.exists(path):
            fileio.remove(path)
    try:
        if fileio.exists(directory):
            fileio.rmtree(directory)
    except fileio.NotFoundError:  # object stores: no directory objects left to remove
        pass


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
        result = push_model(self.GetModelPath(input_dict),
                            destination.filesystem.base_directory)
        if result.new:
            logging.info("Model pushed to %s", result.version_dir)
        else:
            logging.warning("This model is already served as %s; not pushed again",
                            result.version_dir)
        model_push.set_int_custom_property("already_served", int(not result.new))
        self._MarkPushed(model_push, pushed_destination=result.version_dir,
                         pushed_version=os.path.basename(result.version_dir))
