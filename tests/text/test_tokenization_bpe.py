"""Parity of the in-graph byte-level BPE tokenizer (RoBERTa) with RobertaTokenizerFast.

The checkpoint is a small byte-level BPE trained on the bundled QQP sample's train
questions (fixtures/families/bpe_files.py); the reference is AutoTokenizer on its directory.
Pairs and single questions are compared by the generic families.parity_counts (input_ids
and attention_mask: RobertaTokenizerFast returns no token_type_ids).
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import json  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from components.text.tokenization import base, byte_level_bpe  # noqa: E402
from fixtures import families  # noqa: E402
from tests.text.parity import assert_parity, trained_tokenizer_dir  # noqa: E402

EDGE_CASES = [
    "",
    " ",
    "   ",
    " leading space",
    "trailing space ",
    "  two leading and trailing  ",
    "multiple   spaces    between words",
    "tab\tword\t\tword \tword\t word",
    "newline\nword\n\nword \n word\r\nword",
    "ideographic\u3000word\u3000\u3000word \u3000word",
    "nbsp\xa0word\xa0\xa0word \xa0 word",
    "other spaces\x85w\u1680w\u2000\u2000w\u2028w\u202f w\u205f\x0bw\x0c w",
    "space run then punct   ??? and digits   123 and quote   'sam",
    "digits 1234567890 3.14 1,000,000 2nd ٣٤ ¹²",
    "punctuation!!! ??? ... --- ,,, ;;; (([{}])) @#$%^&*",
    "contractions: it's don't we're I've I'm we'll he'd 'S 'T 'RE Y'ALL ''s 's's",
    "apostrophe ' alone 's  's\t's",
    "Café, naïve résumé? ÄÖÜ äöü ß Ångström e\u0301 a\u0327\u0301",
    "中文字 日本語の文章 한국어",
    "emoji 🥰🤣😀👍🏽 👨‍👩‍👧 flags 🇫🇷",
    "zero\u200bwidth\u200cjoin\u200dx\ufeffy\u2060z\u00adsoft",
    "ctrl\x00a\x01b\x07c\x7fd nul\x00\x00 \x00",
    "new letters \u1c89\u1c8a \U000105c0 numbers \U00010d40\U00016130 x",
    "<s> </s> <unk> <pad> <mask>",
    "special<s>inside</s>words<mask>x <mask>  <mask>\t<mask>",
    " <mask> leading",
    "<s<s>> </s </s>> <mask <MASK> < s>",
    "aaaaaaa oooooooo lllllll !!!!!! ....... ??????? 0000000",
    "What is the best way to learn machine learning? " * 40,
    "Why? " * 2000,
]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A RoBERTa-like tokenizer directory trained on the bundled sample's train questions."""
    return trained_tokenizer_dir(tmp_path_factory, "roberta")


@pytest.fixture(scope="module")
def hf(checkpoint: Path):
    return families.hf_tokenizer(checkpoint)


@pytest.fixture(scope="module")
def tokenizer(checkpoint: Path) -> byte_level_bpe.ByteLevelBpeTokenizer:
    return byte_level_bpe.load(str(checkpoint), "roberta")


def test_checkpoint_files(checkpoint: Path, hf, tokenizer) -> None:
    names = {p.name for p in checkpoint.iterdir()}
    assert {"vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json",
            "special_tokens_map.json"} <= names
    assert type(hf).__name__ == "RobertaTokenizerFast"
    vocab = json.loads((checkpoint / "vocab.json").read_text(encoding="utf-8"))
    assert [vocab[t] for t in ("<s>", "<pad>", "</s>", "<unk>")] == [0, 1, 2, 3]
    assert vocab["<mask>"] == len(vocab) - 1 == hf.mask_token_id
    assert 4000 <= len(vocab) <= 8000
    assert tokenizer.template == base.PairTemplate(start=(0,), middle=(2, 2), end=(2,),
                                                   pad_id=1)


@pytest.mark.parametrize("max_length", [128, 32])
def test_dev_pairs_and_questions_match(checkpoint: Path, max_length: int) -> None:
    first, second = families.read_questions(families.SAMPLE_DIR / "dev.tsv")
    assert len(first) == 1000
    assert_parity(checkpoint, first, second, max_length)


def test_edge_cases_without_special_tokens(hf, tokenizer) -> None:
    ref = hf(EDGE_CASES, add_special_tokens=False)["input_ids"]
    got = tokenizer.tokenize(EDGE_CASES).to_list()
    bad = [(text, r, g) for text, r, g in zip(EDGE_CASES, ref, got) if r != g]
    assert not bad, bad[:2]


@pytest.mark.parametrize("max_length", [128, 32])
def test_edge_cases_pairs_and_questions(checkpoint: Path, hf, max_length: int) -> None:
    counts = assert_parity(checkpoint, EDGE_CASES, EDGE_CASES[::-1], max_length)
    assert counts["pairs_truncated"] > 0
    single = hf(EDGE_CASES, truncation=True, max_length=max_length)["input_ids"]
    assert max(len(ids) for ids in single) == max_length  # questions truncated too


def test_repeated_symbol_merges(checkpoint: Path, hf, tokenizer) -> None:
    merges = (checkpoint / "merges.txt").read_text(encoding="utf-8").split("\n")
    texts = ["oooooooo", "lllllll", "0000000", " ......."]
    for symbol in ("o o", "l l", "0 0", ". ."):
        assert symbol in merges  # the texts really exercise same-symbol merges
    ref = hf(texts, add_special_tokens=False)["input_ids"]
    assert tokenizer.tokenize(texts).to_list() == ref
    assert all(len(ids) < len(text) - 2 for ids, text in zip(ref, texts))


def test_random_strings_of_tricky_characters(hf, tokenizer) -> None:
    alphabet = list("aZé1٣ '\"sStTrRvVmMlLdD!?.,-_<>/") + [
        " ", " ", " ", "\t", "\n", "\r", "\x0b", "\x85", "\xa0", "\u1680", "\u2000", "\u2028",
        "\u3000", "\u200b", "\ufeff", "日", "😀", "\x00", "\x01", "<s>", "</s>", "<mask>",
        "<pad>", "<unk>", "\u1c89", "\U00010d40", "\u0301", "'s", "'ll", "'re", "'ve", "'d",
        "'m", "'t"]
    rng = random.Random(0)
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
             for _ in range(1000)]
    ref = hf(texts, add_special_tokens=False)["input_ids"]
    got = tokenizer.tokenize(texts).to_list()
    bad = [(text, r, g) for text, r, g in zip(texts, ref, got) if r != g]
    assert not bad, f"{len(bad)} differ, first {bad[:2]}"


def test_tokenizer_json_only(checkpoint: Path, tmp_path: Path, hf) -> None:
    directory = tmp_path / "json_only"
    shutil.copytree(checkpoint, directory)
    (directory / "vocab.json").unlink()
    (directory / "merges.txt").unlink()
    tokenizer = byte_level_bpe.load(str(directory), "roberta")
    first, second = EDGE_CASES, EDGE_CASES[::-1]
    got = tokenizer.encode_pairs(tf.constant(first), tf.constant(second), 128)
    ref = hf(first, second, truncation=True, max_length=128)
    for key in ("input_ids", "attention_mask"):
        assert got[key].to_list() == ref[key], key


def test_add_prefix_space(checkpoint: Path, tmp_path: Path, hf) -> None:
    directory = tmp_path / "prefix_space"
    shutil.copytree(checkpoint, directory)
    config = json.loads((directory / "tokenizer_config.json").read_text())
    config["add_prefix_space"] = True
    (directory / "tokenizer_config.json").write_text(json.dumps(config))
    prefixed = AutoTokenizer.from_pretrained(str(directory))
    tokenizer = byte_level_bpe.load(str(directory), "roberta")
    ref = prefixed(EDGE_CASES, add_special_tokens=False)["input_ids"]
    assert ref != hf(EDGE_CASES, add_special_tokens=False)["input_ids"]  # the setting matters
    assert tokenizer.tokenize(EDGE_CASES).to_list() == ref


def test_unsupported_model_type(checkpoint: Path) -> None:
    with pytest.raises(ValueError):
        byte_level_bpe.load(str(checkpoint), "bert")
