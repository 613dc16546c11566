"""Claims: reserving a version number, and the lease that keeps it while a push copies.

- A version number is reserved by creating the claim file `<base>/.version-<N>.json`:
  exclusively (O_EXCL) on local disks, so two pushes never take the same number, even
  from two pipelines sharing no lock. Object stores have no exclusive create: there the
  claim is written and read back, which narrows but cannot close that race.
- While a push works, its claim is a lease (`components.serving.leases`): the claim
  records a `heartbeat` time that a background thread renews every `HEARTBEAT_SECONDS`
  (30 s) by writing the record anew and renaming it over the claim
  (`.version-<N>.json.<id>` meanwhile); rename of one file is atomic, or at least
  replaces it whole, on every filesystem here, even where writing in place would append.
- Leftovers are recognised by the lease alone, never by a process id (which another
  host, container or PID namespace cannot check): before each push, a claim of an
  incomplete `<N>` whose heartbeat is older than `LEASE_SECONDS` (10 min) is removed,
  and on an object store so are the files of `<N>/` it lists. A claim with no readable
  heartbeat (half written, or from an older version of this code) counts from its
  file's modification time, and is kept if the filesystem reports none. A staging
  directory or renewal file of `<N>` is removed when the claim of `<N>` is missing or
  expired (a staging directory without a number in its name belongs to no claim).
  Claims of complete versions are kept: they record what was pushed. The `owner`
  (host-pid) in a claim is for people reading it only.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import time
import uuid
from typing import Any

from tfx.dsl.io import fileio

from components.serving import leases
from components.serving.files import remove_files
from components.serving.layout import (NOT_FOUND, STAGING_PREFIX, is_complete, is_object_store,
                                       versions)

CLAIM_PREFIX = ".version-"


def claim_path(base_directory: str, number: int) -> str:
    return os.path.join(base_directory, f"{CLAIM_PREFIX}{number}.json")


def read_claim(path: str) -> dict[str, Any]:
    with fileio.open(path, "r") as stream:
        return json.loads(stream.read())


def holds_nonce(path: str, nonce: str) -> bool:
    """Whether the claim file at `path` exists, is readable and holds `nonce`."""
    try:
        return fileio.exists(path) and read_claim(path).get("nonce") == nonce
    except (ValueError, *NOT_FOUND):  # half written, written by two pushes at once, or removed
        return False


def claimed_numbers(names: list[str]) -> list[int]:
    """The numbers of the claim files among these names, readable or not."""
    numbers = [name[len(CLAIM_PREFIX):-len(".json")] for name in names
               if name.startswith(CLAIM_PREFIX) and name.endswith(".json")]
    return [int(number) for number in numbers if number.isdigit()]


def next_version(base_directory: str) -> int:
    """One more than the largest version or claimed number (1 when there is none)."""
    taken = versions(base_directory)
    if fileio.isdir(base_directory):
        taken += claimed_numbers(fileio.listdir(base_directory))
    return max(taken, default=0) + 1


def claim_is_live(path: str) -> bool:
    """Whether the claim at `path` exists and has not expired (see the module docstring)."""
    try:
        try:
            heartbeat = float(read_claim(path)["heartbeat"])
        except (ValueError, KeyError, TypeError):  # half written, or written by older code
            heartbeat = fileio.stat(path).mtime_nsec / 1e9
            if not heartbeat:  # the filesystem keeps no modification times: keep the claim
                return True
    except NOT_FOUND:
        return False
    return not leases.expired(heartbeat)


def owning_version(name: str) -> str | None:
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
    claimed = claimed_numbers(names)
    live = {number for number in claimed
            if claim_is_live(claim_path(base_directory, number))}
    removed = []
    for number in sorted(set(claimed) - live):
        path = claim_path(base_directory, number)
        if is_complete(os.path.join(base_directory, str(number))):
            continue  # its claim records what was pushed
        try:
            files = read_claim(path).get("files", [])
        except ValueError:
            files = []
        except NOT_FOUND:
            continue  # released meanwhile
        if str(number) in names and is_object_store(base_directory):  # copied in place
            removed += remove_files(base_directory,
                                     [os.path.join(str(number), name) for name in files])
        with contextlib.suppress(*NOT_FOUND):
            fileio.remove(path)
            removed.append(os.path.basename(path))
    for name in names:
        owner = owning_version(name)
        if owner is None or (owner.isdigit() and int(owner) in live):
            continue
        path = os.path.join(base_directory, name)
        with contextlib.suppress(*NOT_FOUND):  # its push may have just finished
            if name.startswith(STAGING_PREFIX):
                fileio.rmtree(path)
            else:
                fileio.remove(path)
            removed.append(name)
    return removed


def claim_next_version(base_directory: str, record: dict[str, Any]) -> int:
    """Reserves the next free version number with its claim file (exclusive on local disks)."""
    while True:
        number = next_version(base_directory)
        path = claim_path(base_directory, number)
        payload = json.dumps({**record, "version": number, "heartbeat": time.time()})
        if not is_object_store(path):
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
        if holds_nonce(path, record["nonce"]):
            return number


def renew_claim(path: str, claim: dict[str, Any]) -> bool:
    """Writes the claim anew with a fresh heartbeat; False once it is no longer this push's."""
    if not holds_nonce(path, claim["nonce"]):
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


def release_claim(base_directory: str, number: int, nonce: str) -> None:
    """Removes the claim of `number` if it still holds this push's nonce."""
    path = claim_path(base_directory, number)
    if holds_nonce(path, nonce):
        fileio.remove(path)
