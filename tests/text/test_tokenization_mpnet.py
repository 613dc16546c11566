"""Parity of the in-graph WordPiece tokenizer with MPNetTokenizerFast (the mpnet family).

The checkpoint is a WordPiece vocabulary trained on the bundled QQP sample's train
questions, saved by MPNetTokenizerFast with all-mpnet-base-v2's special tokens
(fixtures/families/wordpiece_files.py): <s> A </s></s> B </s> pairs, and added tokens
matched in the text as the hub's tokenizer.json has them: "<s>", "<pad>", "</s>", "[UNK]"
raw, "<unk>" normalized ("<UNK>" is it too), "<mask>" taking the whitespace on its left.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import json  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from transformers import MPNetTokenizerFast  # noqa: E402

from components.text.tokenization import load_tokenizer, wordpiece  # noqa: E402
from components.text.tokenization.added_tokens import AddedToken, read_added_tokens  # noqa: E402
from fixtures import families  # noqa: E402
from tests.text.parity import assert_parity, trained_tokenizer_dir  # noqa: E402
from tests.text.test_tokenization import EDGE_CASES as BERT_EDGE_CASES  # noqa: E402

# Each literal special-token case, with what MPNetTokenizerFast gives (ids without <s> </s>;
# names stand for the fixture's ids: the real checkpoint gives the same with its own ids).
LITERAL_CASES = [
    ("<s>", ["<s>"]),
    ("</s>", ["</s>"]),
    ("<pad>", ["<pad>"]),
    ("<unk>", ["<unk>"]),
    ("<UNK>", ["<unk>"]),  # normalized: matched in the lowercased text
    ("<Ünk>", ["<unk>"]),  # ... after accents are stripped
    ("<un\u200bk>", ["<unk>"]),  # ... and format characters dropped
    ("[UNK]", ["[UNK]"]),
    ("<mask>", ["<mask>"]),
    (" <mask>", ["<mask>"]),  # lstrip: the space is the token's
    ("x<mask>y", ["x", "<mask>", "y"]),
    ("a\u3000 <mask>\tb", ["a", "<mask>", "b"]),
    ("a</s>b<s>c", ["a", "</s>", "b", "<s>", "c"]),
    ("<<unk>>", ["<", "<unk>", ">"]),
]
# Cases that are not special tokens: they are tokenized as text.
TEXT_CASES = ["<S>", "</S>", "<PAD>", "<MASK>", "<Mask>", "[unk]", "[MASK]", "[CLS]", "[SEP]",
              "[PAD]", "< unk>", "<s<unk>>", "</s<s>>", "<unk></s><UNK>"]
EDGE_CASES = BERT_EDGE_CASES + [text for text, _ in LITERAL_CASES] + TEXT_CASES


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MPNet tokenizer directory trained on the bundled sample's train questions."""
    return trained_tokenizer_dir(tmp_path_factory, "mpnet")


@pytest.fixture(scope="module")
def hf(checkpoint: Path):
    return families.hf_tokenizer(checkpoint)


@pytest.fixture(scope="module")
def tokenizer(checkpoint: Path) -> wordpiece.WordPieceTokenizer:
    return load_tokenizer(str(checkpoint))


def test_the_fixture_looks_like_all_mpnet_base_v2(checkpoint: Path, hf, tokenizer):
    vocab = (checkpoint / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert vocab[:5] == ["<s>", "<pad>", "</s>", "<unk>", "[UNK]"] and vocab[-1] == "<mask>"
    assert isinstance(hf, MPNetTokenizerFast) and len(hf) == len(vocab) == 6000
    assert (hf.unk_token, hf.pad_token_id, hf.mask_token_id) == ("[UNK]", 1, 5999)
    added = json.loads((checkpoint / "tokenizer.json").read_text())["added_tokens"]
    assert [(t["content"], t["normalized"], t["lstrip"]) for t in added] == [
        ("<s>", False, False), ("<pad>", False, False), ("</s>", False, False),
        ("<unk>", True, False), ("[UNK]", False, False), ("<mask>", False, True)]
    assert tokenizer.template.start == (0,) and tokenizer.template.end == (2,)
    assert tokenizer.template.middle == (2, 2) and tokenizer.template.pad_id == 1
    assert hf("a", "b")["input_ids"] == [0, *hf.convert_tokens_to_ids(["a"]), 2, 2,
                                         *hf.convert_tokens_to_ids(["b"]), 2]


@pytest.mark.parametrize("max_length", [128, 32])
def test_dev_pairs_and_questions_match(checkpoint: Path, max_length: int):
    first, second = families.read_questions(families.SAMPLE_DIR / "dev.tsv")
    counts = assert_parity(checkpoint, first, second, max_length)
    assert counts["pairs"] == 1000
    assert (counts["pairs_truncated"] > 0) == (max_length == 32)


@pytest.mark.parametrize("max_length", [128, 16])
def test_edge_cases_match(checkpoint: Path, max_length: int):
    assert_parity(checkpoint, EDGE_CASES, EDGE_CASES[::-1], max_length)


@pytest.mark.parametrize("text,tokens", LITERAL_CASES)
def test_special_tokens_written_in_the_text(hf, tokenizer, text: str, tokens: list[str]):
    expected = hf(text, add_special_tokens=False)["input_ids"]
    assert expected == hf.convert_tokens_to_ids(tokens)  # what Hugging Face does
    assert tokenizer.tokenize(tf.constant([text])).to_list() == [expected]


def test_tokens_like_special_ones_are_text(hf, tokenizer):
    expected = hf(TEXT_CASES, add_special_tokens=False)["input_ids"]
    assert tokenizer.tokenize(tf.constant(TEXT_CASES)).to_list() == expected
    assert hf.convert_tokens_to_ids("<s>") not in expected[0]  # "<S>" is not "<s>"


def test_special_tokens_made_normalized_by_the_constructor(checkpoint: Path, tmp_path: Path):
    """MPNetTokenizerFast(vocab_file) alone makes every special token `normalized`: then
    "<S>" is "<s>" and "[unk]" is "[UNK]" (matched by their normalized content)."""
    directory = tmp_path / "normalized"
    directory.mkdir()
    for name in ("vocab.txt", "config.json"):
        shutil.copy(checkpoint / name, directory / name)
    MPNetTokenizerFast(vocab_file=str(directory / "vocab.txt")).save_pretrained(str(directory))
    hf = families.hf_tokenizer(directory)
    texts = [text for text, _ in LITERAL_CASES] + TEXT_CASES
    expected = hf(texts, add_special_tokens=False)["input_ids"]
    assert expected[texts.index("<S>")] == [0] and expected[texts.index("[unk]")] == [4]
    got = load_tokenizer(str(directory)).tokenize(tf.constant(texts)).to_list()
    assert got == expected


def test_tokenizer_config_adds_the_added_tokens_tokenizer_json_lacks(checkpoint: Path, hf,
                                                                     tmp_path: Path):
    """transformers adds tokenizer_config.json's added_tokens_decoder at load: a new content
    is matched; a present one keeps tokenizer.json's properties for matching."""
    for name in ("vocab.txt", "tokenizer.json", "special_tokens_map.json", "config.json"):
        shutil.copy(checkpoint / name, tmp_path / name)
    vocab = (checkpoint / "vocab.txt").read_text(encoding="utf-8").splitlines()
    config = json.loads((checkpoint / "tokenizer_config.json").read_text())
    decoder = config["added_tokens_decoder"]
    decoder["3"]["normalized"] = False  # still normalized when matched
    decoder[str(vocab.index("learn"))] = dict(decoder["2"], content="learn")  # new, raw
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    tokens = read_added_tokens(tmp_path)
    assert AddedToken("<unk>", 3, normalized=True) in tokens
    assert AddedToken("learn", vocab.index("learn")) in tokens
    texts = ["<unk> <UNK>", "relearning LEARN learn", "unlearn<unk>"]
    expected = families.hf_tokenizer(tmp_path)(texts, add_special_tokens=False)["input_ids"]
    assert expected[0] == [3, 3]
    without = hf(texts, add_special_tokens=False)["input_ids"]
    assert expected[1:] != without[1:]  # "relearning" -> "re", "learn", ...
    assert load_tokenizer(str(tmp_path)).tokenize(tf.constant(texts)).to_list() == expected


def test_unsupported_added_tokens_are_refused(checkpoint: Path, tmp_path: Path):
    """An added token must be its id's line of vocab.txt, and not single_word."""
    for name in ("vocab.txt", "config.json"):
        shutil.copy(checkpoint / name, tmp_path / name)
    config = json.loads((checkpoint / "tokenizer_config.json").read_text())
    del config["added_tokens_decoder"]  # tokenizer.json's alone
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    definition = json.loads((checkpoint / "tokenizer.json").read_text())
    tokens = definition["added_tokens"]
    for change, error in ((dict(id=7), r"'<unk>' \(id 7\) is not line 8"),
                          (dict(single_word=True), "single_word added token '<unk>'")):
        (tmp_path / "tokenizer.json").write_text(json.dumps(dict(definition, added_tokens=[
            {**token, **change} if token["content"] == "<unk>" else token for token in tokens])))
        with pytest.raises(ValueError, match=error):
            load_tokenizer(str(tmp_path))


def test_saved_model_is_self_contained(tmp_path: Path, checkpoint: Path, hf):
    copy = tmp_path / "checkpoint"
    shutil.copytree(checkpoint, copy)

    class Encoder(tf.Module):
        def __init__(self):
            super().__init__()
            self.tokenizer = load_tokenizer(str(copy))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)] * 2)
        def __call__(self, question1, question2):
            out = self.tokenizer.encode_pairs(question1, question2, 24)
            return {key: value.to_tensor(-1) for key, value in out.items()}

    export_dir = tmp_path / "saved_model"
    tf.saved_model.save(Encoder(), str(export_dir))
    shutil.rmtree(copy)  # the SavedModel must not depend on the checkpoint's files
    assert (export_dir / "assets" / "vocab.txt").is_file()
    import tensorflow_text  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    model = tf.saved_model.load(str(export_dir))
    first, second = families.read_questions(families.SAMPLE_DIR / "dev.tsv", 100)
    first, second = first + EDGE_CASES, second + EDGE_CASES[::-1]
    got = model(tf.constant(first), tf.constant(second))
    expected = hf(first, second, truncation=True, max_length=24)
    for key in ("input_ids", "attention_mask"):
        rows = got[key].numpy().tolist()
        assert [[i for i in row if i != -1] for row in rows] == expected[key], key
