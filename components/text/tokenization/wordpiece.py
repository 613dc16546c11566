"""In-graph WordPiece tokenization (BERT, DistilBERT, ELECTRA, MPNet), matching Hugging Face.

The reference is the family's fast tokenizer (BertTokenizerFast, ..., MPNetTokenizerFast:
one algorithm; MPNet differs in its special tokens and pair template only).

Only TensorFlow and tensorflow_text ops are used, so the tokenizer can live inside a
`tf.function`, a tensorflow-transform `preprocessing_fn` or a SavedModel. The vocabulary
is read through a `tf.lookup` table initialized from the checkpoint's vocab.txt, which
therefore becomes an asset of any SavedModel (or TFT transform graph) that uses it.

The pipeline mirrors the Rust `tokenizers` implementation step by step:
  1. added tokens ("[SEP]", MPNet's "<s>", "<unk>", "<mask>", ...) written literally in
     the text are kept whole: tokenizer.json's `added_tokens` and the special tokens of
     tokenizer_config.json, with their `normalized`, `lstrip` and `rstrip`
     (components.text.tokenization.added_tokens),
  2. BertNormalizer: drop control/format/private-use chars, map whitespace to " ", put
     spaces around CJK ideographs, NFD + remove non-spacing marks, per-char lowercase,
  3. BertPreTokenizer: split on whitespace and isolate every punctuation char,
  4. WordPiece (greedy longest match, words over 100 chars or unmatchable -> [UNK]),
  5. [CLS] a [SEP] b [SEP] (MPNet: <s> a </s></s> b </s>) with `longest_first` truncation
     (components.text.tokenization.base).
tensorflow_text's own BERT normalizers fold compatibility characters (NFKC), and RE2's
\\p{..} classes follow a newer Unicode version than `tokenizers` (which classifies chars
with the `unicode_categories` crate, Unicode 9.0), so the character classes are spelled
out explicitly below. They were extracted code point by code point from tokenizers 0.22;
`benchmarks/tokenizer_parity.py --unicode` re-checks every code point. Known difference:
tf.strings.lower (ICU) lacks the 95 case mappings added in Unicode 14-16 (e.g. U+2C2F,
U+A7C0, Vithkuqi, Garay); neither case of those letters is in BERT vocabularies, so the
ids are still identical. Known difference: a `normalized` added token's normalized
content is computed in Python (the same steps with `re`, unicodedata and str.lower), exact
for the ASCII contents of real checkpoints (MPNet's "<unk>") but not for every code point;
added tokens are found by an RE2 alternation (leftmost, the longest content first), which
differs from tokenizers' leftmost-longest only when a token's lstrip whitespace or another
token overlaps it (none do in the supported checkpoints).

Loading a graph that contains these ops requires `import tensorflow_text` first.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import unicodedata

import tensorflow as tf
import tensorflow_text as tf_text

from components.families.table import FAMILIES
from components.text.tokenization.added_tokens import (AddedToken, read_added_tokens,
                                                       split_added_tokens)
from components.text.tokenization.base import PairTemplate, Tokenizer
from components.text.tokenization.unicode_classes import (PUNCTUATION, char_class,
                                                          python_char_class)

# Chars removed by BertNormalizer's clean_text (Cc/Cf/Co minus \t\n\r, plus U+0000 and
# U+FFFD). U+0000 and U+0001 are turned into U+FFFD beforehand (see _SENTINEL).
_CONTROL = (
    "2-8 B-C E-1F 7F-9F AD 600-605 61C 6DD 70F 180E 200B-200F 202A-202E 2060-2064 "
    "2066-206F E000-F8FF FEFF FFF9-FFFB FFFD 110BD 1BCA0-1BCA3 1D173-1D17A E0001 "
    "E0020-E007F F0000-FFFFD 100000-10FFFD"
)
# Chars mapped to " " by clean_text (\t\n\r and Unicode White_Space that survive the filter).
_WHITESPACE = "9-A D A0 1680 2000-200A 2028-2029 202F 205F 3000"
# "Chinese characters" (tokenizers normalizers/bert.rs: is_chinese_char).
_CJK = "3400-4DBF 4E00-9FFF F900-FAFF 20000-2A6DF 2A700-2B81F 2B920-2CEAF 2F800-2FA1F"
# Non-spacing marks (Mn, Unicode 9.0) removed after NFD when stripping accents.
_MN = (
    "300-36F 483-487 591-5BD 5BF 5C1-5C2 5C4-5C5 5C7 610-61A 64B-65F 670 6D6-6DC 6DF-6E4 "
    "6E7-6E8 6EA-6ED 711 730-74A 7A6-7B0 7EB-7F3 816-819 81B-823 825-827 829-82D 859-85B "
    "8E3-902 93A 93C 941-948 94D 951-957 962-963 981 9BC 9C1-9C4 9CD 9E2-9E3 A01-A02 A3C "
    "A41-A42 A47-A48 A4B-A4D A51 A70-A71 A75 A81-A82 ABC AC1-AC5 AC7-AC8 ACD AE2-AE3 B01 "
    "B3C B3F B41-B44 B4D B56 B62-B63 B82 BC0 BCD C00 C3E-C40 C46-C48 C4A-C4D C55-C56 "
    "C62-C63 C81 CBC CBF CC6 CCC-CCD CE2-CE3 D01 D41-D44 D4D D62-D63 DCA DD2-DD4 DD6 E31 "
    "E34-E3A E47-E4E EB1 EB4-EB9 EBB-EBC EC8-ECD F18-F19 F35 F37 F39 F71-F7E F80-F84 "
    "F86-F87 F8D-F97 F99-FBC FC6 102D-1030 1032-1037 1039-103A 103D-103E 1058-1059 "
    "105E-1060 1071-1074 1082 1085-1086 108D 109D 135D-135F 1712-1714 1732-1734 1752-1753 "
    "1772-1773 17B4-17B5 17B7-17BD 17C6 17C9-17D3 17DD 180B-180D 18A9 1920-1922 1927-1928 "
    "1932 1939-193B 1A17-1A18 1A1B 1A56 1A58-1A5E 1A60 1A62 1A65-1A6C 1A73-1A7C 1A7F "
    "1AB0-1ABD 1B00-1B03 1B34 1B36-1B3A 1B3C 1B42 1B6B-1B73 1B80-1B81 1BA2-1BA5 1BA8-1BA9 "
    "1BAB-1BAD 1BE6 1BE8-1BE9 1BED 1BEF-1BF1 1C2C-1C33 1C36-1C37 1CD0-1CD2 1CD4-1CE0 "
    "1CE2-1CE8 1CED 1CF4 1CF8-1CF9 1DC0-1DF5 1DFC-1DFF 20D0-20DC 20E1 20E5-20F0 2CEF-2CF1 "
    "2D7F 2DE0-2DFF 302A-302D 3099-309A A66F A674-A67D A69E-A69F A6F0-A6F1 A802 A806 A80B "
    "A825-A826 A8C4 A8E0-A8F1 A926-A92D A947-A951 A980-A982 A9B3 A9B6-A9B9 A9BC A9E5 "
    "AA29-AA2E AA31-AA32 AA35-AA36 AA43 AA4C AA7C AAB0 AAB2-AAB4 AAB7-AAB8 AABE-AABF AAC1 "
    "AAEC-AAED AAF6 ABE5 ABE8 ABED FB1E FE00-FE0F FE20-FE2F 101FD 102E0 10376-1037A "
    "10A01-10A03 10A05-10A06 10A0C-10A0F 10A38-10A3A 10A3F 10AE5-10AE6 11001 11038-11046 "
    "1107F-11081 110B3-110B6 110B9-110BA 11100-11102 11127-1112B 1112D-11134 11173 "
    "11180-11181 111B6-111BE 111CA-111CC 1122F-11231 11234 11236-11237 112DF 112E3-112EA "
    "11300-11301 1133C 11340 11366-1136C 11370-11374 114B3-114B8 114BA 114BF-114C0 "
    "114C2-114C3 115B2-115B5 115BC-115BD 115BF-115C0 115DC-115DD 11633-1163A 1163D "
    "1163F-11640 116AB 116AD 116B0-116B5 116B7 1171D-1171F 11722-11725 11727-1172B "
    "16AF0-16AF4 16B30-16B36 16F8F-16F92 1BC9D-1BC9E 1D167-1D169 1D17B-1D182 1D185-1D18B "
    "1D1AA-1D1AD 1D242-1D244 1DA00-1DA36 1DA3B-1DA6C 1DA75 1DA84 1DA9B-1DA9F 1DAA1-1DAAF "
    "1E8D0-1E8D6 E0100-E01EF"
)
# Added tokens found verbatim in the text are replaced by "\x01<i>\x01" words (i: their
# index in WordPieceSpec.added_tokens); raw U+0000/U+0001 are first turned into U+FFFD (all
# three are dropped by clean_text) so they cannot clash (and tf.strings.lower would stop
# at U+0000).
_SENTINEL = "\x01{}\x01"
_SENTINEL_START, _SENTINEL_END = _SENTINEL.split("{}")
_MAX_CHARS_PER_WORD = 100  # tokenizers WordPiece.max_input_chars_per_word

_PUNCT_RE = char_class(PUNCTUATION)


def _read_vocab(vocab_file: str) -> dict[str, int]:
    with tf.io.gfile.GFile(vocab_file, "r") as f:
        return {line.rstrip("\n"): i for i, line in enumerate(f)}


@dataclasses.dataclass(frozen=True)
class WordPieceSpec:
    """What the in-graph tokenizer needs to know about a WordPiece (BERT-like) checkpoint."""

    vocab_file: str
    do_lower_case: bool
    tokenize_chinese_chars: bool = True
    strip_accents: bool | None = None  # None: strip accents iff do_lower_case
    unk_token: str = "[UNK]"
    sep_token: str = "[SEP]"
    pad_token: str = "[PAD]"
    cls_token: str = "[CLS]"
    mask_token: str = "[MASK]"
    # Tokens matched verbatim in the text (added_tokens.read_added_tokens); the special
    # tokens above that it lacks are added as raw ones (transformers adds them at load).
    added_tokens: tuple[AddedToken, ...] = ()
    # Derived from vocab_file.
    unk_id: int = dataclasses.field(init=False)
    sep_id: int = dataclasses.field(init=False)
    pad_id: int = dataclasses.field(init=False)
    cls_id: int = dataclasses.field(init=False)
    mask_id: int = dataclasses.field(init=False)
    vocab_size: int = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "vocab_file", os.fspath(self.vocab_file))
        vocab = _read_vocab(self.vocab_file)
        for name in ("unk", "sep", "pad", "cls", "mask"):
            token = getattr(self, f"{name}_token")
            if token not in vocab:
                raise ValueError(f"{name}_token {token!r} is not in {self.vocab_file}")
            object.__setattr__(self, f"{name}_id", vocab[token])
        object.__setattr__(self, "vocab_size", len(vocab))
        object.__setattr__(self, "added_tokens", self._complete_added_tokens(vocab))

    @property
    def special_tokens(self) -> tuple[str, ...]:
        """The special tokens (pad, unk, cls, sep, mask)."""
        return (self.pad_token, self.unk_token, self.cls_token, self.sep_token, self.mask_token)

    def _complete_added_tokens(self, vocab: dict[str, int]) -> tuple[AddedToken, ...]:
        """added_tokens with the special tokens it lacks; each must be its id's vocab entry
        (the in-graph tokenizer finds its id by looking its content up in vocab.txt)."""
        contents = {token.content for token in self.added_tokens}
        added = (*self.added_tokens, *(AddedToken(token, vocab[token])
                                       for token in dict.fromkeys(self.special_tokens)
                                       if token not in contents))
        for token in added:
            if vocab.get(token.content) != token.id:
                raise ValueError(f"added token {token.content!r} (id {token.id}) is not line "
                                 f"{token.id + 1} of {self.vocab_file}: unsupported")
        return tuple(added)


def load_wordpiece_spec(checkpoint_dir: str | os.PathLike) -> WordPieceSpec:
    """Reads vocab.txt, tokenizer_config.json and tokenizer.json's added tokens of a
    WordPiece checkpoint directory."""
    checkpoint_dir = os.fspath(checkpoint_dir)
    config_path = os.path.join(checkpoint_dir, "tokenizer_config.json")
    config = {}
    if tf.io.gfile.exists(config_path):
        with tf.io.gfile.GFile(config_path, "r") as f:
            config = json.load(f)
    tokens = {
        key: config[key]
        for key in ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
        if isinstance(config.get(key), str)
    }
    return WordPieceSpec(
        vocab_file=os.path.join(checkpoint_dir, "vocab.txt"),
        do_lower_case=bool(config.get("do_lower_case", True)),
        tokenize_chinese_chars=bool(config.get("tokenize_chinese_chars", True)),
        strip_accents=config.get("strip_accents"),
        added_tokens=tuple(read_added_tokens(checkpoint_dir)),
        **tokens,
    )


def create_vocab_table(spec: WordPieceSpec) -> tf.lookup.StaticHashTable:
    """Token -> id table initialized from spec.vocab_file (tracked as a SavedModel asset)."""
    initializer = tf.lookup.TextFileInitializer(
        spec.vocab_file,
        key_dtype=tf.string,
        key_index=tf.lookup.TextFileIndex.WHOLE_LINE,
        value_dtype=tf.int64,
        value_index=tf.lookup.TextFileIndex.LINE_NUMBER,
    )
    return tf.lookup.StaticHashTable(initializer, default_value=-1)


class _GraphOps:
    """The operations of `_normalize` on tf.string tensors."""

    @staticmethod
    def sub(text: tf.Tensor, ranges: str, replacement: str) -> tf.Tensor:
        """Replaces each char of `ranges` by `replacement` ("{}": the char)."""
        return tf.strings.regex_replace(text, char_class(ranges), replacement.format(r"\0"))

    @staticmethod
    def nfd(text: tf.Tensor) -> tf.Tensor:
        return tf_text.normalize_utf8(text, "NFD")

    @staticmethod
    def lower(text: tf.Tensor) -> tf.Tensor:
        return tf.strings.lower(text, encoding="utf-8")


class _PythonOps:
    """The operations of `_normalize` on a Python str (for added tokens' contents)."""

    @staticmethod
    def sub(text: str, ranges: str, replacement: str) -> str:
        return re.sub(python_char_class(ranges), replacement.format(r"\g<0>"), text)

    @staticmethod
    def nfd(text: str) -> str:
        return unicodedata.normalize("NFD", text)

    @staticmethod
    def lower(text: str) -> str:
        return "".join(char.lower() for char in text)


def _normalize(text, spec: WordPieceSpec, ops=_GraphOps):
    """Hugging Face BertNormalizer (clean_text=True) on a tf.string tensor of any shape
    (or, with ops=_PythonOps, on a Python str)."""
    text = ops.sub(text, _CONTROL, "")
    text = ops.sub(text, _WHITESPACE, " ")
    if spec.tokenize_chinese_chars:
        text = ops.sub(text, _CJK, " {} ")
    strip_accents = spec.do_lower_case if spec.strip_accents is None else spec.strip_accents
    if strip_accents:
        text = ops.sub(ops.nfd(text), _MN, "")
    if spec.do_lower_case:
        # Rust lowercases char by char; ICU (tf.strings.lower) would apply the final-sigma rule.
        text = ops.lower(ops.sub(text, "3A3", "\u03c3"))
    return text


def _token_patterns(spec: WordPieceSpec, normalized: bool) -> list[tuple[str, int]]:
    """(RE2 pattern, index in spec.added_tokens) of the raw or of the normalized added
    tokens, the longest content first; a normalized token is matched by its normalized
    content (tokens that normalize to "" never match)."""
    found = []
    for index, token in enumerate(spec.added_tokens):
        if token.normalized == normalized:
            content = _normalize(token.content, spec, _PythonOps) if normalized else token.content
            if content:
                found.append((-len(content), content, token.pattern(content), index))
    return [(pattern, index) for *_, pattern, index in sorted(found)]


def _mark_added_tokens(text: tf.Tensor, patterns: list[tuple[str, int]]) -> tf.Tensor:
    """[batch] strings with every match of `patterns` replaced by " \x01<index>\x01 "."""
    if not patterns:
        return text
    pieces, which = split_added_tokens(text, [pattern for pattern, _ in patterns])
    which = which.flat_values
    index = tf.gather(tf.constant([index for _, index in patterns], tf.int64),
                      tf.maximum(which, 0))
    sentinels = tf.strings.join([" " + _SENTINEL_START, tf.strings.as_string(index),
                                 _SENTINEL_END + " "])
    marked = pieces.with_flat_values(tf.where(which >= 0, sentinels, pieces.flat_values))
    return tf.strings.reduce_join(marked, axis=-1)


def _split_words(text: tf.Tensor, spec: WordPieceSpec) -> tf.RaggedTensor:
    """[batch] raw strings -> [batch, (words)] normalized, pre-tokenized words."""
    text = tf.strings.regex_replace(text, r"[\x{0}\x{1}]", "\ufffd")
    text = _mark_added_tokens(text, _token_patterns(spec, normalized=False))
    text = _mark_added_tokens(_normalize(text, spec), _token_patterns(spec, normalized=True))
    words = tf_text.regex_split(
        text,
        delim_regex_pattern=f" +|{_PUNCT_RE}",
        keep_delim_regex_pattern=_PUNCT_RE,
    )

    def restore(flat_words: tf.Tensor) -> tf.Tensor:
        too_long = tf.strings.length(flat_words, unit="UTF8_CHAR") > _MAX_CHARS_PER_WORD
        flat_words = tf.where(too_long, spec.unk_token, flat_words)
        for i, token in enumerate(spec.added_tokens):
            flat_words = tf.where(tf.equal(flat_words, _SENTINEL.format(i)), token.content,
                                  flat_words)
        return flat_words

    return tf.ragged.map_flat_values(restore, words)


class WordPieceTokenizer(Tokenizer):
    """A BERT-style checkpoint's WordPiece tokenizer: [CLS] A [SEP] B [SEP] pairs, or with
    `pair_separators=2` MPNet's <s> A </s></s> B </s> (its cls and sep tokens)."""

    def __init__(self, spec: WordPieceSpec, pair_separators: int = 1) -> None:
        super().__init__(name="wordpiece_tokenizer")
        self.spec = spec
        self.vocab_table = create_vocab_table(spec)
        self.template = PairTemplate(start=(spec.cls_id,),
                                     middle=(spec.sep_id,) * pair_separators,
                                     end=(spec.sep_id,), pad_id=spec.pad_id)

    @tf.autograph.experimental.do_not_convert
    def tokenize(self, text: tf.Tensor) -> tf.RaggedTensor:
        """[batch] tf.string -> [batch, (tokens)] int64 WordPiece ids, without special tokens."""
        wordpiece = tf_text.WordpieceTokenizer(
            self.vocab_table,
            token_out_type=tf.int64,
            max_bytes_per_word=4 * _MAX_CHARS_PER_WORD,  # longer words were already replaced
            unknown_token=self.spec.unk_token,
        )
        ids = wordpiece.tokenize(_split_words(tf.reshape(text, [-1]), self.spec))
        return ids.merge_dims(1, 2)


def load(checkpoint_dir: str, model_type: str = "bert") -> WordPieceTokenizer:
    """The WordPiece tokenizer of a bert, distilbert, electra or mpnet checkpoint directory.

    The four families share BertTokenizerFast's algorithm; MPNet frames pairs as
    RoBERTa does (`pair_separators` of components.families.table).
    """
    return WordPieceTokenizer(load_wordpiece_spec(checkpoint_dir),
                              FAMILIES[model_type].pair_separators)
