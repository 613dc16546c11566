"""Offline checkpoints of every supported family, for tests and benchmarks.

No vocabulary or weights can be downloaded here, so each family's tokenizer files
are trained on QQP questions with the real algorithm (`tokenizers` WordPiece and
byte-level BPE, `sentencepiece` Unigram) and saved by the family's Hugging Face fast
tokenizer; the encoder is a tiny random one of the family's transformers class.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

FAMILY_TYPES = ("bert", "distilbert", "electra", "albert", "roberta", "deberta-v2")
_TOKENIZER_FILES = {"bert": "wordpiece_files", "distilbert": "wordpiece_files",
                    "electra": "wordpiece_files", "albert": "sentencepiece_files",
                    "deberta-v2": "sentencepiece_files", "roberta": "bpe_files"}
SAMPLE_DIR = Path(__file__).parents[2] / "data" / "qqp_sample"


def read_pairs(tsv: Path, limit: int | None = None) -> tuple[list[str], list[str]]:
    """question1 and question2 of a GLUE QQP TSV (no quoting: split on tabs)."""
    with open(tsv, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        first, second = header.index("question1"), header.index("question2")
        rows = [line.rstrip("\n").split("\t") for line in f]
    rows = rows[:limit]
    return [row[first] for row in rows], [row[second] for row in rows]


def training_texts(tsv: Path = SAMPLE_DIR / "train.tsv", limit: int | None = None) -> list[str]:
    """Every question of a QQP TSV (of its first `limit` pairs), for training a tokenizer."""
    first, second = read_pairs(tsv, limit)
    return first + second


def write_tokenizer_files(directory: Path, texts: list[str], model_type: str) -> None:
    """The family's tokenizer files, trained on `texts`, in hub layout."""
    module = importlib.import_module(f"tests.families.{_TOKENIZER_FILES[model_type]}")
    module.write_tokenizer_files(directory, texts, model_type)


def hf_tokenizer(directory: Path):
    """The directory's Hugging Face fast tokenizer (the parity reference)."""
    from transformers import AutoTokenizer  # pylint: disable=import-outside-toplevel

    return AutoTokenizer.from_pretrained(str(directory), use_fast=True)


def make_family_checkpoint(directory: Path, model_type: str, texts: list[str] | None = None,
                           seed: int = 0) -> Path:
    """A tiny random checkpoint of the family with tokenizer files trained on QQP text."""
    from tests.families.weights import write_tiny_encoder  # pylint: disable=import-outside-toplevel

    write_tokenizer_files(directory, training_texts() if texts is None else texts, model_type)
    tokenizer = hf_tokenizer(directory)
    return write_tiny_encoder(directory, model_type, len(tokenizer), tokenizer.pad_token_id, seed)


def write_model_type(directory: Path, model_type: str) -> None:
    """A config.json holding only model_type (enough to pick the tokenizer family)."""
    (directory / "config.json").write_text(json.dumps({"model_type": model_type}))


def parity_counts(directory: Path, first: list[str], second: list[str], max_length: int,
                  batch_size: int = 1024) -> dict:
    """How many pairs and single questions our tokenizer encodes exactly as Hugging Face's.

    `directory` is a checkpoint (config.json's model_type picks our tokenizer, as
    load_tokenizer does). Compares input_ids, attention_mask and, where the family's fast
    tokenizer returns them (not RoBERTa's or DistilBERT's), token_type_ids of
    tokenizer(q1s, q2s, truncation=True, max_length=L), and input_ids and attention_mask of
    tokenizer(qs, truncation=True, max_length=L) for each question alone.
    Returns {"pairs", "pairs_truncated" (pairs Hugging Face truncates), "pairs_identical",
    "questions", "questions_identical", "first_differences" (up to 5 examples:
    ("pair", q1, q2, expected input_ids, ours) or ("question", q, expected, ours))}.
    """
    # pylint: disable=import-outside-toplevel
    import tensorflow as tf

    from components.tokenization import load_tokenizer
    from components.tokenization.base import assemble_single

    reference, ours = hf_tokenizer(directory), load_tokenizer(str(directory))
    counts = {"pairs": len(first), "pairs_truncated": 0, "pairs_identical": 0,
              "questions": 2 * len(first), "questions_identical": 0}
    differences: list[tuple] = []

    def compare(kind: str, inputs: list[tuple], expected, got) -> int:
        """How many rows agree on every key Hugging Face returned; notes differences."""
        keys = [key for key in ("input_ids", "attention_mask", "token_type_ids")
                if key in expected and key in got]
        got = {key: got[key].to_list() for key in keys}
        identical = 0
        for i, row in enumerate(inputs):
            if all(got[key][i] == expected[key][i] for key in keys):
                identical += 1
            elif len(differences) < 5:
                differences.append((kind, *row, expected["input_ids"][i], got["input_ids"][i]))
        return identical

    for start in range(0, len(first), batch_size):
        q1, q2 = first[start:start + batch_size], second[start:start + batch_size]
        counts["pairs_truncated"] += sum(
            len(ids) > max_length for ids in reference(q1, q2)["input_ids"])
        counts["pairs_identical"] += compare(
            "pair", list(zip(q1, q2)), reference(q1, q2, truncation=True, max_length=max_length),
            ours.encode_pairs(tf.constant(q1), tf.constant(q2), max_length))
        questions = q1 + q2
        counts["questions_identical"] += compare(
            "question", [(q,) for q in questions],
            reference(questions, truncation=True, max_length=max_length),
            assemble_single(ours.tokenize(tf.constant(questions)), ours.template, max_length))
    return {**counts, "first_differences": differences}
