"""Test fixtures for SentencePiece Unigram checkpoints (ALBERT, DeBERTa-v3) trained on QQP text.

`write_tokenizer_files` trains a small SentencePiece Unigram model with the family's
special-piece conventions and saves the family's Hugging Face fast tokenizer next to it
(.model, tokenizer.json, tokenizer_config.json, special_tokens_map.json), as a hub
checkpoint would have them. Reading QQP and the parity count are generic (tests.families).
"""

from __future__ import annotations

import io
import os
import pathlib

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

_MODEL_FILES = {"albert": "spiece.model", "deberta-v2": "spm.model"}


def train_sentencepiece(texts: list[str], model_type: str, vocab_size: int = 6000) -> bytes:
    """Serialized ModelProto of a Unigram model with the family's special pieces."""
    import sentencepiece as spm

    common = dict(
        model_type="unigram", vocab_size=vocab_size, character_coverage=0.9995,
        byte_fallback=False, num_threads=1, shuffle_input_sentence=False,
        input_sentence_size=0, max_sentence_length=4096, minloglevel=2,
    )
    if model_type == "albert":
        special = dict(pad_id=0, pad_piece="<pad>", unk_id=1, unk_piece="<unk>", bos_id=-1,
                       eos_id=-1, user_defined_symbols=["[CLS]", "[SEP]", "[MASK]"])
    elif model_type == "deberta-v2":
        special = dict(pad_id=0, pad_piece="[PAD]", bos_id=1, bos_piece="[CLS]", eos_id=2,
                       eos_piece="[SEP]", unk_id=3, unk_piece="[UNK]")
    else:
        raise ValueError(f"unsupported model_type {model_type!r}")
    spm.set_random_generator_seed(1234)
    model = io.BytesIO()
    sentences = sorted(set(t for t in texts if t.strip()))
    spm.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_writer=model,
                                   **common, **special)
    return model.getvalue()


def write_tokenizer_files(directory: pathlib.Path, texts: list[str], model_type: str,
                          vocab_size: int = 6000) -> None:
    """Trains a Unigram model on texts and saves the family's fast tokenizer to directory.

    Writes the .model file (spiece.model / spm.model), tokenizer.json,
    tokenizer_config.json and special_tokens_map.json; never config.json.
    """
    from transformers import AlbertTokenizerFast, DebertaV2TokenizerFast

    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model_file = directory / _MODEL_FILES[model_type]
    model_file.write_bytes(train_sentencepiece(texts, model_type, vocab_size))
    if model_type == "albert":
        tokenizer = AlbertTokenizerFast(vocab_file=str(model_file))
    else:
        tokenizer = DebertaV2TokenizerFast(vocab_file=str(model_file))
    tokenizer.save_pretrained(str(directory))
