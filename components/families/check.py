"""Checking, before a run starts, that it can use a checkpoint: config, tokenizer files, weights."""

from __future__ import annotations

import os

from components.families.checkpoint import CheckpointError, resolve_checkpoint
from components.families.encoders import load_encoder
from components.families.table import family_of


def _tokenizer_files(family) -> tuple[tuple[str, ...], ...]:
    """The tokenizer files a family needs: every group must have one file present."""
    if family.tokenizer == "wordpiece":
        return (("vocab.txt",),)
    if family.tokenizer == "sentencepiece":
        return (("spiece.model", "spm.model", "tokenizer.json"),)
    if family.tokenizer == "byte_level_bpe":
        return (("vocab.json", "tokenizer.json"), ("merges.txt", "tokenizer.json"))
    raise CheckpointError(f"model_type {family.model_type!r}: unknown tokenizer "
                          f"{family.tokenizer!r}")


_TOKENIZER_NAMES = {"wordpiece": "WordPiece vocabulary",
                    "sentencepiece": "SentencePiece model",
                    "byte_level_bpe": "byte-level BPE vocabulary and merges"}


def check_checkpoint(checkpoint: str):
    """Resolves a checkpoint and checks that a run can use it; returns its config.

    It needs config.json with a supported model_type (`components.families.table`), the
    files of that family's in-graph tokenizer (WordPiece: vocab.txt; SentencePiece:
    spiece.model or spm.model, or tokenizer.json; byte-level BPE: vocab.json and
    merges.txt, or tokenizer.json), and every weight of the encoder must load with
    the shapes config.json gives. Raises CheckpointError naming what is wrong.
    """
    checkpoint_dir = resolve_checkpoint(checkpoint)
    if not os.path.isfile(os.path.join(checkpoint_dir, "config.json")):
        raise CheckpointError(f"checkpoint {checkpoint!r} ({checkpoint_dir}) lacks config.json")
    family = family_of(checkpoint_dir)
    missing = [" or ".join(group) for group in _tokenizer_files(family)
               if not any(os.path.isfile(os.path.join(checkpoint_dir, name)) for name in group)]
    if missing:
        raise CheckpointError(f"checkpoint {checkpoint!r} ({checkpoint_dir}) lacks "
                              f"{', '.join(missing)}: a {family.model_type} checkpoint needs its "
                              f"{_TOKENIZER_NAMES[family.tokenizer]}")
    return load_encoder(checkpoint_dir).config
