"""Where each version came from: its record `assets.extra/version.json`, and the list of versions.

The Pusher writes the record into every version it pushes, with the version's
files (so it is part of the atomic push and travels to object stores): the
number, when and by whom it was pushed, the pipeline run, the checkpoint and
its family, the data (span, ExampleGen's input fingerprint), the candidate's
eval accuracy and F1, whether it re-publishes an older version (`rollback_of`,
`reason`) and the digest of the model's files. A rollback
(`qqp-tfx rollback`) writes a new record and keeps the source's provenance.

The record and the model card (`CARD_FILE`) differ on every push, so they never
count in the comparison that keeps an identical model from being pushed again
(`UNCOUNTED_FILES`, skipped by `components.serving.files.model_digest`).
"""

from __future__ import annotations

import dataclasses
import datetime
import getpass
import json
import os
import socket
from typing import Any

from tfx.dsl.io import fileio

from components.features import CANDIDATE
from components.serving.layout import NOT_FOUND, is_complete, newest_complete_version, versions

RECORD_FILE = os.path.join("assets.extra", "version.json")
CARD_FILE = os.path.join("assets.extra", "model_card.md")
UNCOUNTED_FILES = frozenset({RECORD_FILE, CARD_FILE})  # not part of a model's digest
# What a version carries from the run that made it (a rollback: from its source).
FACT_KEYS = ("run_id", "checkpoint", "family", "data", "accuracy", "f1")
RECORD_KEYS = ("version", "pushed_at", "pushed_by", *FACT_KEYS, "rollback_of", "reason",
               "model_digest")
FIGURES_KEY = "figures"  # the BlessingGate's JSON string property on the model blessing


class VersionRecordError(ValueError):
    """A version record that cannot be read, or facts that do not fit one."""


def pushed_by() -> str:
    """user@host of this process (the user is `uid<N>` where the uid has no name)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container's uid without a passwd entry or $USER
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def utc_now() -> str:
    """The time now, ISO-8601 in UTC to the second (`2025-01-31T09:15:00Z`)."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def empty_facts() -> dict[str, Any]:
    """Facts of a model whose origin is unknown: every one null."""
    return dict.fromkeys(FACT_KEYS)


def candidate_figures(figures_json: str | None) -> dict[str, float | None]:
    """The candidate's `accuracy` and `f1` from the gate's figures (JSON), null without them."""
    if figures_json is None:
        return {"accuracy": None, "f1": None}
    try:
        candidate = json.loads(figures_json)[CANDIDATE]
        return {key: None if candidate.get(key) is None else float(candidate[key])
                for key in ("accuracy", "f1")}
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise VersionRecordError(f"the blessing's {FIGURES_KEY!r} property has no "
                                 f"{CANDIDATE}.accuracy/f1: {error!r} in {figures_json[:200]}"
                                 ) from error


def new_record(version: int, model_digest: str, facts: dict[str, Any],
               rollback_of: int | None = None, reason: str | None = None) -> dict[str, Any]:
    """The record of a version pushed now by this process; `facts` holds every FACT_KEYS."""
    if set(facts) != set(FACT_KEYS):
        raise VersionRecordError(f"version {version}: the facts of a record are "
                                 f"{', '.join(FACT_KEYS)}; got {', '.join(sorted(facts))}")
    return {"version": version, "pushed_at": utc_now(), "pushed_by": pushed_by(), **facts,
            "rollback_of": rollback_of, "reason": reason, "model_digest": model_digest}


def record_bytes(record: dict[str, Any]) -> bytes:
    """The record as the file holds it: indented JSON, keys in RECORD_KEYS order."""
    return (json.dumps({key: record[key] for key in RECORD_KEYS}, indent=1, allow_nan=False)
            + "\n").encode()


def read_record(version_dir: str) -> dict[str, Any] | None:
    """The record of a version directory; None if it has none (pushed before records, or
    by hand); VersionRecordError if it is not a JSON object."""
    path = os.path.join(version_dir, RECORD_FILE)
    try:
        with fileio.open(path, "rb") as stream:
            text = stream.read()
    except NOT_FOUND:
        return None
    try:
        record = json.loads(text)
    except ValueError as error:
        raise VersionRecordError(f"{path}: not JSON ({error})") from error
    if not isinstance(record, dict):
        raise VersionRecordError(f"{path}: not a JSON object")
    return record


def facts_of(record: dict[str, Any] | None) -> dict[str, Any]:
    """The FACT_KEYS of a record (all null for a version without one)."""
    return {key: (record or {}).get(key) for key in FACT_KEYS}


@dataclasses.dataclass(frozen=True)
class VersionEntry:
    """One version directory as `qqp-tfx versions` lists it."""

    version: int
    path: str
    complete: bool
    served: bool  # the highest complete version: what TF Serving's default policy serves
    record: dict[str, Any] | None  # None: no record (or an unreadable one: `record_error`)
    record_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The entry as one flat object; fields the version does not record are null."""
        record = self.record or {}
        return {"version": self.version, "complete": self.complete, "served": self.served,
                "pushed_at": record.get("pushed_at"), "pushed_by": record.get("pushed_by"),
                **facts_of(record), "rollback_of": record.get("rollback_of"),
                "reason": record.get("reason"), "model_digest": record.get("model_digest"),
                "has_record": self.record is not None, "record_error": self.record_error,
                "path": self.path}


def list_versions(base_directory: str) -> list[VersionEntry]:
    """Every version directory under `base_directory`, newest first, with its record."""
    served = newest_complete_version(base_directory)
    entries = []
    for number in reversed(versions(base_directory)):
        version_dir = os.path.join(base_directory, str(number))
        try:
            record, error = read_record(version_dir), None
        except VersionRecordError as unreadable:
            record, error = None, str(unreadable)
        entries.append(VersionEntry(number, version_dir, is_complete(version_dir),
                                    version_dir == served, record, error))
    return entries
