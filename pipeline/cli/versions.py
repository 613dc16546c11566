"""`qqp-tfx versions` and `qqp-tfx rollback`: the versions in TF Serving's directory, and
re-publishing an older one as the newest.

Both read each version's record (`components.serving.history`). A rollback pushes the
source version's files, byte for byte but its record, through the Pusher's own claim
and lease path (`components.serving.pusher.push_model`), with a new record that says
what it re-publishes and why. Heavy imports (TensorFlow, TFX) happen inside commands.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from typing import Any

from pipeline.config import MODEL_NAME, ConfigError, PipelineConfig

UNKNOWN = "-"
TABLE_COLUMNS = ("version", "complete", "served", "pushed at", "run id", "checkpoint (family)",
                 "data", "accuracy", "F1", "rollback")


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Adds the `versions` and `rollback` commands."""
    default_dir = PipelineConfig().serving_dir
    where = ("TF Serving base directory, as given to `qqp-tfx run --serving-dir`; the "
             f"versions are in <serving-dir>/{MODEL_NAME}/ [default: %(default)s]")
    versions = subparsers.add_parser(
        "versions", help="list the pushed versions: where each came from, which one is served",
        description="List every version directory, newest first: whether it is complete "
                    "(has its saved_model.pb), when and from which run it was pushed, the "
                    "checkpoint and its family, the data (span, and a short hash of "
                    "ExampleGen's input fingerprint; the whole of it in JSON), the "
                    "candidate's eval accuracy and F1, the version it rolls back to, and "
                    "the one TF Serving serves (the highest complete version). Versions "
                    "without a record (pushed by hand or by older code) show '-'.")
    versions.add_argument("--serving-dir", default=default_dir, help=where)
    versions.add_argument("--format", choices=("table", "json"), default="table",
                          help="table: aligned plain text; json: a list with one object per "
                               "version, unknown values null [default: %(default)s]")
    rollback = subparsers.add_parser(
        "rollback", help="serve an older version again, by re-publishing it as a new version",
        description="Copy version N, byte for byte, to a new version (the next number, so "
                    "TF Serving serves it) with a new record: rollback_of N, the reason, who "
                    "and when, and N's provenance. Refused (exit code 2) when N is missing, "
                    "incomplete, or already the served version. Prints the new version.")
    rollback.add_argument("--to", type=int, required=True, metavar="N", dest="to",
                          help="the version to serve again")
    rollback.add_argument("--reason", default=None, help="why, in words (kept in the record)")
    rollback.add_argument("--serving-dir", default=default_dir, help=where)


def model_base_directory(serving_dir: str) -> str:
    """`<serving_dir>/qqp`, absolute for local paths; ConfigError if it is missing."""
    from tfx.dsl.io import fileio  # pylint: disable=import-outside-toplevel

    if "://" not in serving_dir:
        serving_dir = os.path.abspath(serving_dir)
    base = os.path.join(serving_dir, MODEL_NAME)
    if not fileio.isdir(base):
        hint = ""
        if fileio.isdir(serving_dir) and any(
                name.rstrip("/").isdigit() for name in fileio.listdir(serving_dir)):
            hint = (f"; {serving_dir} holds version directories itself: give its parent, "
                    f"{os.path.dirname(serving_dir.rstrip('/'))}")
        raise ConfigError(f"--serving-dir: {base}: no such directory (nothing was pushed "
                          f"there){hint}")
    return base


def run_versions(args: argparse.Namespace) -> int:
    """`qqp-tfx versions`: prints the table or the JSON list."""
    from components.serving import history  # pylint: disable=import-outside-toplevel

    entries = [entry.to_json()
               for entry in history.list_versions(model_base_directory(args.serving_dir))]
    if args.format == "json":
        print(json.dumps(entries, indent=2, allow_nan=False))
    else:
        print(format_table(entries))
    return 0


def _cell(value: Any, digits: int = 4) -> str:
    if value is None:
        return UNKNOWN
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _data_cell(data: dict[str, Any] | None) -> str:
    if not data:
        return UNKNOWN
    span = _cell(data.get("span"))
    fingerprint = data.get("fingerprint")
    short = hashlib.sha256(fingerprint.encode()).hexdigest()[:8] if fingerprint else UNKNOWN
    return f"span {span}, input {short}"


def table_row(entry: dict[str, Any]) -> list[str]:
    """One version's cells, in TABLE_COLUMNS order."""
    model = _cell(entry["checkpoint"])
    if entry["family"]:
        model += f" ({entry['family']})"
    rollback = UNKNOWN if entry["rollback_of"] is None else f"of {entry['rollback_of']}"
    if entry["record_error"]:
        rollback = f"record unreadable: {entry['record_error']}"
    return [str(entry["version"]), _cell(entry["complete"]), _cell(entry["served"]),
            _cell(entry["pushed_at"]), _cell(entry["run_id"]), model,
            _data_cell(entry["data"]), _cell(entry["accuracy"]), _cell(entry["f1"]), rollback]


def format_table(entries: list[dict[str, Any]]) -> str:
    """Aligned plain text, newest first; `served` is yes for the version TF Serving serves."""
    if not entries:
        return "No versions."
    rows = [list(TABLE_COLUMNS)] + [table_row(entry) for entry in entries]
    widths = [max(len(row[column]) for row in rows) for column in range(len(TABLE_COLUMNS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
                     for row in rows)


def rollback_source(base_directory: str, number: int) -> str:
    """The directory of version `number`, if a rollback to it can be pushed; else ConfigError
    saying why (missing, incomplete, already the served version)."""
    # pylint: disable=import-outside-toplevel
    from components.serving.layout import is_complete, newest_complete_version, versions

    numbers = versions(base_directory)
    if number not in numbers:
        raise ConfigError(f"--to {number}: {base_directory} has no version {number} (versions: "
                          f"{', '.join(map(str, numbers)) or 'none'})")
    source = os.path.join(base_directory, str(number))
    if not is_complete(source):
        raise ConfigError(f"--to {number}: {source} is incomplete (no saved_model.pb): a push "
                          "that is still copying or that failed; it cannot be served")
    if newest_complete_version(base_directory) == source:
        raise ConfigError(f"--to {number}: version {number} is already the newest complete "
                          "version, the one TF Serving serves: nothing to roll back")
    return source


def rollback(base_directory: str, number: int, reason: str | None) -> str:
    """Re-publishes version `number` as a new version; returns the new version's directory."""
    # pylint: disable=import-outside-toplevel
    from components.serving import history
    from components.serving.pusher import push_model

    source = rollback_source(base_directory, number)
    try:
        facts = history.facts_of(history.read_record(source))
    except history.VersionRecordError as error:
        raise ConfigError(f"--to {number}: its record cannot be carried over: {error}") from error

    def new_record(version: int, digest: str) -> dict[str, bytes]:
        record = history.new_record(version, digest, facts, rollback_of=number, reason=reason)
        return {history.RECORD_FILE: history.record_bytes(record)}

    result = push_model(source, base_directory, version_files=new_record)
    if not result.new:
        raise ConfigError(f"--to {number}: its model files are identical to those of the "
                          f"newest version, {result.version_dir}, which TF Serving serves: "
                          "nothing pushed")
    return result.version_dir


def run_rollback(args: argparse.Namespace) -> int:
    """`qqp-tfx rollback`: prints the new version's number (and what it did, on stderr)."""
    version_dir = rollback(model_base_directory(args.serving_dir), args.to, args.reason)
    print(f"qqp-tfx: version {args.to} re-published as {version_dir}; TF Serving serves it "
          "once it loads it", file=sys.stderr)
    print(os.path.basename(version_dir))
    return 0
