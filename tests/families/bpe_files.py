"""Byte-level BPE (RoBERTa) checkpoint files for tests, trained on QQP text.

`write_tokenizer_files` trains a small byte-level BPE with the `tokenizers` library and
saves it the way a hub RoBERTa checkpoint looks (vocab.json, merges.txt, tokenizer.json,
tokenizer_config.json, special_tokens_map.json); it writes no config.json.
Reading QQP and the parity count are generic (tests.families); speed and the code-point
check are in benchmarks/tokenizer_parity.py.
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

VOCAB_SIZE = 6000
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>")  # ids 0-3; "<mask>" gets the last id
MASK_TOKEN = "<mask>"


def write_tokenizer_files(directory: pathlib.Path, texts: list[str],
                          model_type: str = "roberta") -> None:
    """Trains a byte-level BPE on `texts` and saves it like a hub RoBERTa checkpoint.

    Special tokens: <s>=0, <pad>=1, </s>=2, <unk>=3 and <mask> the last id. Deterministic
    for the same texts. Writes no config.json.
    """
    if model_type != "roberta":
        raise ValueError(f"no byte-level BPE fixture for model_type {model_type!r}")
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=VOCAB_SIZE - 1, min_frequency=2,
                            special_tokens=list(SPECIAL_TOKENS), show_progress=False)
    with tempfile.TemporaryDirectory() as raw:
        vocab_file, merges_file = bpe.save_model(raw)
        vocab = json.loads(pathlib.Path(vocab_file).read_text(encoding="utf-8"))
        vocab[MASK_TOKEN] = len(vocab)
        pathlib.Path(vocab_file).write_text(json.dumps(vocab, ensure_ascii=False),
                                            encoding="utf-8")
        tokenizer = RobertaTokenizerFast(vocab_file=vocab_file, merges_file=merges_file)
        tokenizer.save_pretrained(str(directory))
