"""Tiny random encoders of every supported family (2 layers, hidden 32), for tests.

`write_tiny_encoder` writes config.json and tf_model.h5 (what `save_pretrained`
writes); `write_tiny_encoder_safetensors` writes config.json and the same
weights under their PyTorch names in model.safetensors, as a PyTorch
checkpoint on the hub has them (made without torch, by transformers' own
TF -> PyTorch name mapping, the inverse of the one the loader uses).
No tokenizer files: tests feed random ids below `vocab_size`.
"""

from __future__ import annotations

from pathlib import Path

_COMMON = {"num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 2,
           "intermediate_size": 64, "max_position_embeddings": 512}


def tiny_config(model_type: str, vocab_size: int, pad_token_id: int):
    """The transformers config of a tiny encoder of a family."""
    # pylint: disable=import-outside-toplevel
    from transformers import (AlbertConfig, BertConfig, DebertaV2Config, DistilBertConfig,
                              ElectraConfig, RobertaConfig)

    common = {**_COMMON, "vocab_size": vocab_size, "pad_token_id": pad_token_id}
    if model_type == "bert":
        return BertConfig(**common)
    if model_type == "electra":
        return ElectraConfig(**common, embedding_size=16)
    if model_type == "albert":
        return AlbertConfig(**common, embedding_size=16)
    if model_type == "distilbert":
        return DistilBertConfig(vocab_size=vocab_size, pad_token_id=pad_token_id, n_layers=2,
                                dim=32, n_heads=2, hidden_dim=64, max_position_embeddings=512)
    if model_type == "roberta":
        return RobertaConfig(**{**common, "max_position_embeddings": 514}, type_vocab_size=1,
                             bos_token_id=0, eos_token_id=2)
    if model_type == "deberta-v2":  # relative attention as in microsoft/deberta-v3-*
        return DebertaV2Config(**common, type_vocab_size=0, relative_attention=True,
                               position_buckets=256, max_relative_positions=-1,
                               pos_att_type=["p2c", "c2p"], norm_rel_ebd="layer_norm",
                               share_att_key=True, position_biased_input=False)
    raise ValueError(f"no tiny config for model_type {model_type!r}")


def tiny_model(model_type: str, vocab_size: int, pad_token_id: int, seed: int = 0):
    """A built TF encoder of the family with deterministic random weights."""
    import tf_keras as keras  # pylint: disable=import-outside-toplevel
    import transformers  # pylint: disable=import-outside-toplevel

    from components.families import FAMILIES  # pylint: disable=import-outside-toplevel

    config = tiny_config(model_type, vocab_size, pad_token_id)
    # Python's, NumPy's and TensorFlow's seeds (see tests/tiny_bert.py).
    keras.utils.set_random_seed(seed)
    model = getattr(transformers, FAMILIES[model_type].encoder_class)(config)
    model(model.dummy_inputs)
    return model


def write_tiny_encoder(directory: Path, model_type: str, vocab_size: int, pad_token_id: int,
                       seed: int = 0) -> Path:
    """Writes config.json and a random tf_model.h5 of a tiny encoder; returns `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    tiny_model(model_type, vocab_size, pad_token_id, seed).save_pretrained(str(directory))
    return directory


def pytorch_state_dict(model) -> dict:
    """A TF encoder's weights as NumPy arrays under the names its PyTorch twin saves."""
    # pylint: disable=import-outside-toplevel
    from transformers.modeling_tf_pytorch_utils import (apply_transpose,
                                                        convert_tf_weight_name_to_pt_weight_name)

    state = {}
    for weight in model.weights:
        name, transpose = convert_tf_weight_name_to_pt_weight_name(
            weight.name, start_prefix_to_remove=model.base_model_prefix + ".",
            tf_weight_shape=weight.shape)
        if name.startswith(model.base_model_prefix + "."):  # a base model saves without it
            name = name[len(model.base_model_prefix) + 1:]
        state[name] = apply_transpose(transpose, weight.numpy(), pt_to_tf=False).copy()
    return state


def write_tiny_encoder_safetensors(directory: Path, model_type: str, vocab_size: int,
                                   pad_token_id: int, seed: int = 0) -> Path:
    """Writes config.json and model.safetensors (PyTorch names, no tf_model.h5)."""
    from safetensors.numpy import save_file  # pylint: disable=import-outside-toplevel

    directory.mkdir(parents=True, exist_ok=True)
    model = tiny_model(model_type, vocab_size, pad_token_id, seed)
    model.config.save_pretrained(str(directory))
    save_file(pytorch_state_dict(model), str(directory / "model.safetensors"),
              metadata={"format": "pt"})
    return directory
