"""The Hugging Face model families a run can use, keyed by config.json's `model_type`."""

from __future__ import annotations

import dataclasses
import json
import os

from components.families.checkpoint import CheckpointError


@dataclasses.dataclass(frozen=True)
class Family:
    """What the pipeline needs to know about one `model_type`."""

    model_type: str
    tokenizer: str  # "wordpiece", "sentencepiece" or "byte_level_bpe"
    encoder_class: str  # the transformers TF class
    uses_token_types: bool  # whether the encoder takes token_type_ids
    has_pooler: bool  # whether the encoder has a pooler_output
    pair_separators: int = 1  # tokens between a pair's questions: [SEP]; RoBERTa </s></s>
    # The encoder's layers whose call needs AutoGraph (Python control flow on tensors).
    # Everything else runs as plain graph code, which saves AutoGraph's conversion of
    # transformers' code: about 10 s at each model build and again at each trace.
    autograph_layers: tuple[str, ...] = ()


FAMILIES: dict[str, Family] = {family.model_type: family for family in (
    Family("bert", "wordpiece", "TFBertModel", True, True),
    Family("distilbert", "wordpiece", "TFDistilBertModel", False, False),
    Family("electra", "wordpiece", "TFElectraModel", True, False),
    Family("albert", "sentencepiece", "TFAlbertModel", True, True),
    Family("roberta", "byte_level_bpe", "TFRobertaModel", False, True, pair_separators=2),
    Family("mpnet", "wordpiece", "TFMPNetModel", False, True, pair_separators=2),
    Family("deberta-v2", "sentencepiece", "TFDebertaV2Model", True, False,
           autograph_layers=("TFDebertaV2DisentangledSelfAttention",)),
)}


def with_pooler() -> list[str]:
    """The model types whose encoder has a pooler_output."""
    return [name for name, family in FAMILIES.items() if family.has_pooler]


class UnsupportedModelError(CheckpointError):
    """A checkpoint whose model_type has no in-graph tokenizer or encoder here."""


def read_model_type(checkpoint_dir: str) -> str:
    """config.json's `model_type` (CheckpointError if config.json is missing or has none)."""
    path = os.path.join(checkpoint_dir, "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            model_type = json.load(f).get("model_type")
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path}: cannot read the checkpoint's config: {error}") from None
    if not isinstance(model_type, str):
        raise CheckpointError(f"{path} has no model_type")
    return model_type


def family_of(checkpoint_dir: str) -> Family:
    """The family of a local checkpoint directory (UnsupportedModelError if none fits)."""
    model_type = read_model_type(checkpoint_dir)
    if model_type not in FAMILIES:
        raise UnsupportedModelError(
            f"{checkpoint_dir}: model_type {model_type!r} is not supported; supported: "
            f"{', '.join(FAMILIES)}")
    return FAMILIES[model_type]
