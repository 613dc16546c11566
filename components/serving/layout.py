"""TF Serving's version directory: `<base>/<N>/` with increasing integers N, on any filesystem.

A version is complete once its `saved_model.pb` exists; TF Serving's default policy
serves the highest complete one. Every `scheme://` path and every path under `/gcs/`
(Cloud Storage FUSE on Vertex AI) is an object store: no directory rename and no
exclusive file creation there. Everything goes through TFX's `fileio` (tf.io.gfile).
"""

from __future__ import annotations

import os

import tensorflow as tf
from tfx.dsl.io import fileio

STAGING_PREFIX = ".staging-"
FUSE_MOUNT = "/gcs/"
# The served version a candidate was compared with (0: none), on the ServedModel snapshot
# and on the blessings that follow from it; the Pusher checks it is still the newest.
SERVED_VERSION_KEY = "served_version"
NOT_FOUND = (fileio.NotFoundError, tf.errors.NotFoundError)


def is_object_store(path: str) -> bool:
    """Whether `path` lacks directory rename and exclusive create (`scheme://`, `/gcs/`)."""
    return "://" in path or path.startswith(FUSE_MOUNT)


def versions(base_directory: str) -> list[int]:
    """The integer version directories under the base directory."""
    if not fileio.isdir(base_directory):
        return []
    return sorted(int(name.rstrip("/")) for name in fileio.listdir(base_directory)
                  if name.rstrip("/").isdigit())


def is_complete(version_dir: str) -> bool:
    return fileio.exists(os.path.join(version_dir, "saved_model.pb"))


def newest_complete_version(base_directory: str) -> str | None:
    """The directory of the highest version holding a `saved_model.pb`, if any."""
    for number in reversed(versions(base_directory)):
        version_dir = os.path.join(base_directory, str(number))
        if is_complete(version_dir):
            return version_dir
    return None


def version_number(version_dir: str | None) -> int:
    """The number of a version directory (0 for None: nothing served)."""
    return int(os.path.basename(version_dir)) if version_dir else 0
