"""Directory trees on any filesystem TensorFlow knows (local, gs://, s3://), through TFX's fileio.

A shared leaf: the Pusher, the served-model snapshot and remote checkpoints copy with it.
"""

from __future__ import annotations

import os

from tfx.dsl.io import fileio


def relative_files(source: str) -> list[str]:
    """Every file below `source`, relative to it, sorted."""
    files = set()
    for directory, _, names in fileio.walk(source):
        relative = os.path.relpath(directory, source)
        files.update(os.path.normpath(os.path.join(relative, name)) for name in names)
    return sorted(files)


def copy_tree(source: str, destination: str) -> None:
    """Copies every directory and file below `source` to the same place below `destination`
    (which exists afterwards, even for an empty `source`)."""
    for directory, _, names in fileio.walk(source):
        target = os.path.join(destination, os.path.relpath(directory, source))
        fileio.makedirs(target)
        for name in names:
            fileio.copy(os.path.join(directory, name), os.path.join(target, name),
                        overwrite=True)
