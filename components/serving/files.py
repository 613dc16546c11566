"""Copying a SavedModel's files into a version: staged and renamed on local disks, in place
(never over an existing file, `saved_model.pb` last) on object stores; a failed copy
removes exactly what it wrote. And the content digest that tells identical models apart
(without the version record and model card, which differ on every push).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from typing import Callable

import tensorflow as tf
from tfx.dsl.io import fileio

from components.file_trees import relative_files
from components.serving.history import UNCOUNTED_FILES
from components.serving.layout import STAGING_PREFIX


def model_digest(model_path: str, extra_files: dict[str, bytes] | None = None) -> str:
    """SHA-256 over the relative paths and contents of every file of a SavedModel, but its
    version record and model card (`history.UNCOUNTED_FILES`).

    `extra_files` (relative path: content) count as files of it, over any file there.
    """
    extra_files = extra_files or {}
    digest = hashlib.sha256()
    for relative in sorted({*relative_files(model_path), *extra_files} - UNCOUNTED_FILES):
        digest.update(relative.encode() + b"\0")
        if relative in extra_files:
            digest.update(extra_files[relative])
            continue
        with fileio.open(os.path.join(model_path, relative), "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def push_order(files: set[str]) -> list[str]:
    """The relative paths sorted, `saved_model.pb` last."""
    return sorted(files, key=lambda path: (path == "saved_model.pb", path))


def copy_then_rename(source: str, base_directory: str, target: str, files: list[str],
                      extra_files: dict[str, bytes], check: Callable[[], None]) -> None:
    """Local disks: copies to a private staging directory, then renames it to `target`.

    `check` raises if the push may no longer publish (before each file and the rename).
    """
    staging = os.path.join(base_directory,
                           f"{STAGING_PREFIX}{os.path.basename(target)}-{uuid.uuid4().hex}")
    try:
        copy_files(source, staging, files, extra_files, [], check)  # private: removed on failure
        check()
        fileio.rename(staging, target)
    except BaseException:
        if fileio.exists(staging):
            fileio.rmtree(staging)
        raise


def copy_in_place(source: str, target: str, files: list[str], extra_files: dict[str, bytes],
                   check: Callable[[], None]) -> None:
    """Object stores: copies into `target`; on failure removes exactly the files it wrote."""
    written: list[str] = []
    try:
        copy_files(source, target, files, extra_files, written, check)
    except BaseException:
        remove_files(target, written)
        raise


def copy_files(source: str, destination: str, files: list[str],
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


def remove_files(directory: str, files: list[str]) -> list[str]:
    """Removes those of the listed files below `directory` that exist (never a directory)."""
    removed = [relative for relative in files
               if fileio.exists(os.path.join(directory, relative))]
    for relative in removed:
        fileio.remove(os.path.join(directory, relative))
    return removed
