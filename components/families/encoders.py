"""Loading a checkpoint's TF encoder for its family, strictly: every weight must load.

The encoder runs as plain graph code, with AutoGraph only for the layers its family
names (`components.families.table`).
"""

from __future__ import annotations

import os
import types

from components.families.checkpoint import CheckpointError
from components.families.table import family_of


def _encoder_class(checkpoint_dir: str):
    """The transformers TF encoder class of a checkpoint directory's family."""
    import transformers  # pylint: disable=import-outside-toplevel

    return getattr(transformers, family_of(checkpoint_dir).encoder_class)


def _plain_graph_code(encoder, checkpoint_dir: str):
    """The encoder, its call run without AutoGraph but where its family needs it.

    Keras converts a subclassed layer's `call` with AutoGraph whenever it is traced.
    transformers' TF encoders need no conversion, so their call is marked
    `do_not_convert` (which covers the layers it calls), except the family's
    `autograph_layers` (DeBERTa-v2's attention), whose calls are converted once here.
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    encoder.call = tf.autograph.experimental.do_not_convert(encoder.call)
    converted = family_of(checkpoint_dir).autograph_layers
    for layer in encoder.submodules:
        if type(layer).__name__ in converted:
            layer.call = types.MethodType(tf.autograph.to_graph(type(layer).call), layer)
    return encoder


def new_encoder(checkpoint_dir: str):
    """The checkpoint family's TF encoder with the checkpoint's config and fresh (random) weights.

    Raises UnsupportedModelError (a CheckpointError) for a model_type no family fits,
    CheckpointError for a config.json its family's config class refuses.
    """
    encoder_class = _encoder_class(checkpoint_dir)
    try:
        config = encoder_class.config_class.from_pretrained(checkpoint_dir)
        return _plain_graph_code(encoder_class(config), checkpoint_dir)
    except (OSError, ValueError, TypeError) as error:
        raise CheckpointError(f"{checkpoint_dir}: config.json is not a usable "
                              f"{encoder_class.config_class.model_type} config: {error}") from None


def load_encoder(checkpoint_dir: str):
    """Loads the checkpoint family's TF encoder with the checkpoint's weights; every weight
    must load.

    Uses TensorFlow weights (`tf_model.h5`) when present; otherwise converts the
    PyTorch `model.safetensors` (the TF classes' from_pretrained fails on those in
    transformers 4.57 without torch). A missing weight, or one whose shape differs
    from config.json's, is a CheckpointError naming it; weights of the checkpoint the
    encoder does not use (heads of a pre-training task, `position_ids` buffers) are
    ignored.
    """
    encoder_class = _encoder_class(checkpoint_dir)
    h5_weights = os.path.join(checkpoint_dir, "tf_model.h5")
    if os.path.exists(h5_weights):
        try:
            # Mismatched shapes are reported in the info rather than raised (without the name).
            model, info = encoder_class.from_pretrained(
                checkpoint_dir, output_loading_info=True, ignore_mismatched_sizes=True)
        except (OSError, ValueError, KeyError) as error:
            raise CheckpointError(f"{checkpoint_dir}: cannot load tf_model.h5 with "
                                  f"config.json: {error}") from None
        info["mismatched_keys"] = (info.get("mismatched_keys") or []) + [
            mismatch for mismatch in _h5_reshaped(model, h5_weights)
            if mismatch[0] not in {key[0] for key in info.get("mismatched_keys") or []}]
        model = _plain_graph_code(model, checkpoint_dir)
    else:
        weights = os.path.join(checkpoint_dir, "model.safetensors")
        if not os.path.exists(weights):
            raise CheckpointError(f"{checkpoint_dir}: no tf_model.h5 or model.safetensors to "
                                  "load the encoder's weights from")
        model = new_encoder(checkpoint_dir)  # plain graph code already
        info = _load_safetensors(model, weights, checkpoint_dir)
    problems = {key: info.get(key) for key in ("missing_keys", "mismatched_keys") if info.get(key)}
    if problems:
        raise CheckpointError(f"{checkpoint_dir}: weights do not match config.json: {problems}")
    return model


def _h5_reshaped(model, weights: str) -> list[tuple[str, tuple, tuple]]:
    """Weights of tf_model.h5 whose shape differs from the model's but whose element
    count fits (transformers' loader silently reshapes those): (name, saved, expected)."""
    import h5py  # pylint: disable=import-outside-toplevel

    saved = {}
    with h5py.File(weights, "r") as h5:
        def visit(name, item):
            if isinstance(item, h5py.Dataset):  # <layer>/<model name>/<weight name>
                saved["/".join(name.split("/")[2:])] = tuple(item.shape)
        h5.visititems(visit)
    reshaped = []
    for weight in model.weights:
        name = "/".join(weight.name.split("/")[1:])
        shape = saved.get(name, saved.get(name[:-len("embeddings:0")] + "weight:0")
                          if name.endswith("embeddings:0") else None)
        if shape is not None and shape != tuple(weight.shape):
            reshaped.append((name, shape, tuple(weight.shape)))
    return reshaped


def _load_safetensors(model, weights: str, checkpoint_dir: str) -> dict:
    """Loads PyTorch safetensors weights into a TF encoder; returns the loading info.

    transformers' loader reshapes a weight whose element count fits whatever its
    shape, so the shapes are compared here first (after the loader's own
    squeeze / transpose), and mismatches reported under `mismatched_keys`.
    """
    # pylint: disable=import-outside-toplevel
    from safetensors.numpy import load_file
    from transformers.modeling_tf_pytorch_utils import (TransposeType,
                                                        convert_tf_weight_name_to_pt_weight_name,
                                                        load_pytorch_state_dict_in_tf2_model)

    try:
        state = load_file(weights)
    except Exception as error:  # pylint: disable=broad-except
        raise CheckpointError(f"{weights}: cannot read the weights: {error}") from None
    model(model.dummy_inputs, training=False)  # builds the weights
    # The loader's own renaming of old-style names (gamma/beta -> weight/bias).
    names = {key.replace("gamma", "weight").replace("beta", "bias"): key for key in state}
    prefix = ("" if any(name.startswith(model.base_model_prefix) for name in names)
              else model.base_model_prefix + ".")
    mismatched = []
    for weight in model.weights:
        name, transpose = convert_tf_weight_name_to_pt_weight_name(
            weight.name, start_prefix_to_remove=prefix, tf_weight_shape=weight.shape)
        if name not in names:
            continue  # reported as missing by the loader
        shape = tuple(state[names[name]].shape)
        if transpose is TransposeType.SIMPLE:
            shape = shape[::-1]
        elif transpose is not TransposeType.NO:
            continue  # convolutions: none in the supported encoders
        if [d for d in shape if d != 1] != [d for d in weight.shape if d != 1]:
            mismatched.append((name, shape, tuple(weight.shape)))
    if mismatched:
        return {"mismatched_keys": mismatched}
    try:
        _, info = load_pytorch_state_dict_in_tf2_model(
            model, state, allow_missing_keys=True, output_loading_info=True)
    except ValueError as error:  # a weight's shape differs from the config's
        raise CheckpointError(f"{checkpoint_dir}: weights do not match config.json: "
                              f"{error}") from None
    return info


def usable_positions(config) -> int:
    """How many tokens an encoder with this config takes.

    max_position_embeddings, except for RoBERTa and MPNet: their position ids start
    after padding_idx (pad_token_id), so they take max_position_embeddings -
    padding_idx - 1 (514 -> 512).
    """
    positions = int(config.max_position_embeddings)
    if getattr(config, "model_type", None) in ("roberta", "mpnet"):
        positions -= int(config.pad_token_id) + 1
    return positions
