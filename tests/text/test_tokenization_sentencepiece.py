"""Parity of the in-graph SentencePiece Unigram tokenizer with the Hugging Face fast tokenizers.

ALBERT (AlbertTokenizerFast) and DeBERTa-v3 (DebertaV2TokenizerFast) checkpoints are
built from a Unigram model trained on the bundled QQP sample (fixtures/families); pairs and
single questions are compared by the generic families.parity_counts.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from components.text.tokenization import sentencepiece_unigram  # noqa: E402
from fixtures import families  # noqa: E402
from fixtures.families import sentencepiece_files  # noqa: E402

KEYS = ("input_ids", "token_type_ids", "attention_mask")
FAMILIES = ("albert", "deberta-v2")
TRAIN_PAIRS = 6000

EDGE_CASES = [
    "",
    " ",
    "   ",
    " \t\n\r\u3000\xa0 ",
    "trailing space ",
    "  leading  and   inner   runs  ",
    "tab\there\nnew\r\nline",
    "Café, naïve résumé? ÄÖÜ äöü ß Ångström e\u0301 a\u0327\u0301",
    "ΣΑΣ ΟΔΥΣΣΕΥΣ σας İstanbul IŞIK Ǆemal",
    "中文字 日本語の文章 한국어 \u1100\u1161",
    "emoji 🥰🤣😀👍🏽 👨‍👩‍👧 flags 🇫🇷",
    "wait… ？！ fullwidth ＡＢＣ１２３ ｗｈａｔ ½ ﬁ Ⅻ ㎏ ℃ Ａ\u0301",
    "``quoted'' text with ``double'' and 'single' quotes",
    "[CLS] [SEP] [MASK] [PAD] [UNK] <pad> <unk> [cls] [SEP][SEP]x[MASK]y  [MASK]",
    "what is [MASK]? a[SEP]b <unk>c",
    "ctrl\x00a\x01b\x07c\x7fd zero\u200bwidth\ufeffx\u00adsoft",
    "5,000 or 2, 3,5, 10,000,000,",
    "▁a ▁▁b ▁",
    "hmmm zzz ..... cccc ccc \"\"\" !!! ???",  # equal-score segmentations (ties)
    "What is the best way to learn " + "very " * 300 + "long text?",
]


def _texts() -> list[str]:
    return families.training_texts(families.SAMPLE_DIR / "train.tsv", TRAIN_PAIRS)


@pytest.fixture(scope="module")
def dev_pairs() -> tuple[list[str], list[str]]:
    return families.read_questions(families.SAMPLE_DIR / "dev.tsv")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    texts = _texts()
    directories = {}
    for model_type in FAMILIES:
        directory = tmp_path_factory.mktemp(model_type.replace("-", "_"))
        families.write_tokenizer_files(directory, texts, model_type)
        families.write_model_type(directory, model_type)
        directories[model_type] = directory
    return directories


@pytest.fixture(scope="module")
def hf_tokenizers(checkpoints):
    return {m: families.hf_tokenizer(d) for m, d in checkpoints.items()}


@pytest.fixture(scope="module")
def tokenizers(checkpoints):
    return {m: sentencepiece_unigram.load(str(d), m) for m, d in checkpoints.items()}


def _assert_parity(directory: Path, q1: list[str], q2: list[str], max_length: int) -> None:
    """Every pair (input_ids, token_type_ids, attention_mask) and question is identical."""
    counts = families.parity_counts(directory, q1, q2, max_length)
    assert (counts["pairs_identical"], counts["questions_identical"]) == (
        len(q1), 2 * len(q1)), counts["first_differences"]


def test_files_look_like_a_hub_checkpoint(tmp_path):
    texts = families.training_texts(families.SAMPLE_DIR / "train.tsv", 1000)
    for model_type, model_file in (("albert", "spiece.model"), ("deberta-v2", "spm.model")):
        directory = tmp_path / model_type
        sentencepiece_files.write_tokenizer_files(directory, texts, model_type, vocab_size=1000)
        names = {p.name for p in directory.iterdir()}
        assert {model_file, "tokenizer.json", "tokenizer_config.json",
                "special_tokens_map.json"} <= names
        assert "config.json" not in names
        # Deterministic: training again gives the same model.
        assert (directory / model_file).read_bytes() == sentencepiece_files.train_sentencepiece(
            texts, model_type, vocab_size=1000)
    albert, deberta = (families.hf_tokenizer(tmp_path / m) for m in ("albert", "deberta-v2"))
    assert albert.pad_token_id == deberta.pad_token_id == 0
    assert len(albert) == 1000
    assert len(deberta) == 1001  # + [MASK]


@pytest.mark.parametrize("model_type", FAMILIES)
def test_template_and_specials(tokenizers, hf_tokenizers, model_type):
    hf, tok = hf_tokenizers[model_type], tokenizers[model_type]
    assert tok.template.start == (hf.cls_token_id,)
    assert tok.template.middle == tok.template.end == (hf.sep_token_id,)
    assert tok.template.pad_id == hf.pad_token_id
    assert "token_type_ids" in hf("a", "b")  # so parity_counts compares them


@pytest.mark.parametrize("max_length", [128, 32])
@pytest.mark.parametrize("model_type", FAMILIES)
def test_parity_on_qqp_dev_sample(checkpoints, dev_pairs, model_type, max_length):
    q1, q2 = dev_pairs
    assert len(q1) == 1000
    _assert_parity(checkpoints[model_type], q1, q2, max_length)


@pytest.mark.parametrize("max_length", [128, 32])
@pytest.mark.parametrize("model_type", FAMILIES)
def test_parity_on_edge_cases(checkpoints, tokenizers, hf_tokenizers, model_type, max_length):
    _assert_parity(checkpoints[model_type], EDGE_CASES + EDGE_CASES,
                   EDGE_CASES + EDGE_CASES[::-1], max_length)
    # Ids without special tokens, not truncated.
    assert tokenizers[model_type].tokenize(tf.constant(EDGE_CASES)).to_list() == hf_tokenizers[
        model_type](EDGE_CASES, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("model_type", FAMILIES)
def test_verbatim_special_tokens(tokenizers, hf_tokenizers, model_type):
    hf, tok = hf_tokenizers[model_type], tokenizers[model_type]
    texts = ["a [MASK] b", "a[MASK]b", "x  [MASK]", "[SEP]  [MASK]", "a [UNK] b", "[CLS]hello",
             "<pad>x<unk>", "[PAD] [SEP]"]
    assert tok.tokenize(tf.constant(texts)).to_list() == hf(
        texts, add_special_tokens=False)["input_ids"]
    if model_type == "albert":  # [MASK] has lstrip=True: the space before it is swallowed
        x, x_space, x_mask = tok.tokenize(tf.constant(["x", "x ", "x [MASK]"])).to_list()
        assert x_space == x + [hf.convert_tokens_to_ids("\u2581")]
        assert x_mask == x + [hf.mask_token_id]


@pytest.mark.parametrize("model_type", FAMILIES)
def test_parity_fails_when_a_step_is_missing(checkpoints, hf_tokenizers, dev_pairs, model_type):
    """The parity checks are sensitive: dropping one normalization step breaks them."""
    directory = str(checkpoints[model_type])
    definition = json.loads(Path(directory, "tokenizer.json").read_text())
    steps = definition["normalizer"]["normalizers"]
    definition["normalizer"]["normalizers"] = [s for s in steps if s["type"] != "Precompiled"]
    model_file = Path(directory, "spiece.model" if model_type == "albert" else "spm.model")
    broken = sentencepiece_unigram.SentencePieceTokenizer(model_file.read_bytes(), definition,
                                                          pad_id=0)
    questions = dev_pairs[0] + dev_pairs[1] + EDGE_CASES
    expected = hf_tokenizers[model_type](questions, add_special_tokens=False)["input_ids"]
    assert broken.tokenize(tf.constant(questions)).to_list() != expected


@pytest.mark.parametrize("model_type", FAMILIES)
def test_without_tokenizer_json_uses_converter_defaults(checkpoints, hf_tokenizers, dev_pairs,
                                                        tmp_path, model_type):
    for path in checkpoints[model_type].iterdir():
        if path.name != "tokenizer.json":
            (tmp_path / path.name).write_bytes(path.read_bytes())
    tok = sentencepiece_unigram.load(str(tmp_path), model_type)
    questions = dev_pairs[0][:300] + dev_pairs[1][:300] + EDGE_CASES
    assert tok.tokenize(tf.constant(questions)).to_list() == hf_tokenizers[model_type](
        questions, add_special_tokens=False)["input_ids"]


def test_load_rejects_other_families(checkpoints):
    with pytest.raises(ValueError):
        sentencepiece_unigram.load(str(checkpoints["albert"]), "bert")


def test_saved_model_round_trip(tmp_path, checkpoints, hf_tokenizers, dev_pairs):
    """Both families in one SavedModel; the reloaded signature gives the fast tokenizer's ids."""
    max_length = 32

    class Encoder(tf.Module):
        def __init__(self):
            super().__init__()
            self.tokenizers = {m: sentencepiece_unigram.load(str(d), m)
                               for m, d in checkpoints.items()}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string),
                                      tf.TensorSpec([None], tf.string)])
        def serve(self, question1, question2):
            outputs = {}
            for model_type, tokenizer in self.tokenizers.items():
                out = tokenizer.encode_pairs(question1, question2, max_length)
                for key, value in out.items():
                    outputs[f"{model_type}/{key}"] = value.to_tensor(-1)
            return outputs

    export_dir = str(tmp_path / "saved_model")
    encoder = Encoder()
    tf.saved_model.save(encoder, export_dir,
                        signatures={"serving_default": encoder.serve.get_concrete_function()})
    del encoder
    import tensorflow_text  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    q1, q2 = dev_pairs[0][:200] + EDGE_CASES, dev_pairs[1][:200] + EDGE_CASES[::-1]
    got = serve(question1=tf.constant(q1), question2=tf.constant(q2))
    for model_type in FAMILIES:
        expected = hf_tokenizers[model_type](q1, q2, truncation=True, max_length=max_length)
        for key in KEYS:
            rows = got[f"{model_type}/{key}"].numpy().tolist()
            assert [[i for i in row if i != -1] for row in rows] == expected[key], (model_type, key)
