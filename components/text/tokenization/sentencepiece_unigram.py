"""In-graph SentencePiece Unigram tokenizers (ALBERT, DeBERTa-v2/v3) matching Hugging Face.

`load(checkpoint_dir, model_type)` builds a `SentencePieceTokenizer` that gives the same
ids as the checkpoint's fast tokenizer (AlbertTokenizerFast / DebertaV2TokenizerFast) with
TensorFlow and tensorflow_text ops only, so it can be saved in a SavedModel and served by
stock TF Serving (load the graph after `import tensorflow_text`).

The pipeline follows the `tokenizers` definition in tokenizer.json (or, without one, the
transformers converters AlbertConverter / DebertaV2Converter) step by step:
  1. added tokens written in the raw text ([CLS], [SEP], [MASK], <pad>, ...) are split off
     first (leftmost-longest, honouring lstrip/rstrip; `normalized` ones are matched on the
     normalized text, as `tokenizers` does),
  2. the normalizer sequence on each remaining segment: Replace, NFKD/NFD/NFKC/NFC,
     StripAccents, Lowercase, Strip and Precompiled (the SentencePiece charsmap, decoded
     from its double-array trie into a lookup table and applied per grapheme cluster with
     the `tokenizers` quirks: a grapheme shorter than 6 bytes is replaced as a whole by the
     mapping of its shortest prefix that is a key),
  3. the pre-tokenizers: Punctuation (isolated) and Metaspace (" " -> "▁", prepend "▁",
     split before each "▁"),
  4. the Unigram model on each word, with `tensorflow_text.SentencepieceTokenizer` fed a
     copy of the model proto whose own normalizer is disabled (identity, no dummy prefix,
     no whitespace handling) and whose pieces and scores are those of the fast tokenizer
     (e.g. ALBERT's -100 on "<digit>," pieces; control/user pieces become normal pieces, as
     they are in the `tokenizers` Unigram vocabulary). Scores are rounded to a 2**-k grid
     (about 1e-4) so that SentencePiece's float32 path sums tie exactly where the float64
     sums of `tokenizers` do ("z"+"zz" vs "zz"+"z"); both then keep the same path.
Known approximations: grapheme clusters are found with a regular expression (combining
marks, ZWJ sequences, CR LF, controls; Prepend characters are not attached, which matters
only for a mapped Prepend char before a short grapheme); Unicode tables of ICU (NFKD,
lowercase) may differ from Rust's in rare code points; U+0000 is read as U+FDD0 (both are
unknown to the model); two segmentations whose scores differ by less than the rounding
grid may be ordered differently; `single_word` added tokens and Metaspace
prepend_scheme "first" are rejected.
"""

from __future__ import annotations

import base64
import hashlib

import tensorflow as tf
import tensorflow_text as tf_text

from components.text.tokenization import base
from components.text.tokenization.sentencepiece_model import (PRECOMPILED_MAX_BYTES, REPLACEMENT,
                                                              charsmap_entries, identity_proto,
                                                              read_model)
from components.text.tokenization.unicode_classes import PUNCTUATION, char_class, literal

FAMILIES = ("albert", "deberta-v2")
# Rust char::is_whitespace (Unicode White_Space).
_WHITESPACE = "9-D 20 85 A0 1680 2000-200A 2028-2029 202F 205F 3000"
# Chars removed by tokenizers' StripAccents (is_combining_mark), extracted from tokenizers 0.22.
_MARKS = (
    "300-36F 483-489 591-5BD 5BF 5C1-5C2 5C4-5C5 5C7 610-61A 64B-65F 670 6D6-6DC 6DF-6E4 "
    "6E7-6E8 6EA-6ED 711 730-74A 7A6-7B0 7EB-7F3 816-819 81B-823 825-827 829-82D 859-85B "
    "8D4-8E1 8E3-903 93A-93C 93E-94F 951-957 962-963 981-983 9BC 9BE-9C4 9C7-9C8 9CB-9CD 9D7 "
    "9E2-9E3 A01-A03 A3C A3E-A42 A47-A48 A4B-A4D A51 A70-A71 A75 A81-A83 ABC ABE-AC5 AC7-AC9 "
    "ACB-ACD AE2-AE3 B01-B03 B3C B3E-B44 B47-B48 B4B-B4D B56-B57 B62-B63 B82 BBE-BC2 BC6-BC8 "
    "BCA-BCD BD7 C00-C03 C3E-C44 C46-C48 C4A-C4D C55-C56 C62-C63 C81-C83 CBC CBE-CC4 CC6-CC8 "
    "CCA-CCD CD5-CD6 CE2-CE3 D01-D03 D3E-D44 D46-D48 D4A-D4D D57 D62-D63 D82-D83 DCA DCF-DD4 "
    "DD6 DD8-DDF DF2-DF3 E31 E34-E3A E47-E4E EB1 EB4-EB9 EBB-EBC EC8-ECD F18-F19 F35 F37 F39 "
    "F3E-F3F F71-F84 F86-F87 F8D-F97 F99-FBC FC6 102B-103E 1056-1059 105E-1060 1062-1064 "
    "1067-106D 1071-1074 1082-108D 108F 109A-109D 135D-135F 1712-1714 1732-1734 1752-1753 "
    "1772-1773 17B4-17D3 17DD 180B-180D 1885-1886 18A9 1920-192B 1930-193B 1A17-1A1B "
    "1A55-1A5E 1A60-1A7C 1A7F 1AB0-1ABE 1B00-1B04 1B34-1B44 1B6B-1B73 1B80-1B82 1BA1-1BAD "
    "1BE6-1BF3 1C24-1C37 1CD0-1CD2 1CD4-1CE8 1CED 1CF2-1CF4 1CF8-1CF9 1DC0-1DF5 1DFB-1DFF "
    "20D0-20F0 2CEF-2CF1 2D7F 2DE0-2DFF 302A-302F 3099-309A A66F-A672 A674-A67D A69E-A69F "
    "A6F0-A6F1 A802 A806 A80B A823-A827 A880-A881 A8B4-A8C5 A8E0-A8F1 A926-A92D A947-A953 "
    "A980-A983 A9B3-A9C0 A9E5 AA29-AA36 AA43 AA4C-AA4D AA7B-AA7D AAB0 AAB2-AAB4 AAB7-AAB8 "
    "AABE-AABF AAC1 AAEB-AAEF AAF5-AAF6 ABE3-ABEA ABEC-ABED FB1E FE00-FE0F FE20-FE2F 101FD "
    "102E0 10376-1037A 10A01-10A03 10A05-10A06 10A0C-10A0F 10A38-10A3A 10A3F 10AE5-10AE6 "
    "11000-11002 11038-11046 1107F-11082 110B0-110BA 11100-11102 11127-11134 11173 "
    "11180-11182 111B3-111C0 111CA-111CC 1122C-11237 1123E 112DF-112EA 11300-11303 1133C "
    "1133E-11344 11347-11348 1134B-1134D 11357 11362-11363 11366-1136C 11370-11374 "
    "11435-11446 114B0-114C3 115AF-115B5 115B8-115C0 115DC-115DD 11630-11640 116AB-116B7 "
    "1171D-1172B 11C2F-11C36 11C38-11C3F 11C92-11CA7 11CA9-11CB6 16AF0-16AF4 16B30-16B36 "
    "16F51-16F7E 16F8F-16F92 1BC9D-1BC9E 1D165-1D169 1D16D-1D172 1D17B-1D182 1D185-1D18B "
    "1D1AA-1D1AD 1D242-1D244 1DA00-1DA36 1DA3B-1DA6C 1DA75 1DA84 1DA9B-1DA9F 1DAA1-1DAAF "
    "1E000-1E006 1E008-1E018 1E01B-1E021 1E023-1E024 1E026-1E02A 1E8D0-1E8D6 1E944-1E94A "
    "E0100-E01EF")
# Grapheme cluster approximation (UAX #29): extenders, pictographs, regional indicators.
_EXTEND = _MARKS + " 200C 1F3FB-1F3FF E0020-E007F"
_PICTO = ("A9 AE 203C 2049 2122 2139 2194-2199 21A9-21AA 231A-231B 2328 23CF 23E9-23F3 "
          "23F8-23FA 24C2 25AA-25AB 25B6 25C0 25FB-25FE 2600-27BF 2934-2935 2B05-2B07 "
          "2B1B-2B1C 2B50 2B55 3030 303D 3297 3299 1F000-1FAFF")
# Grapheme_Cluster_Break=Control (Cc, Zl, Zp, Cf but ZWNJ/ZWJ/prepend, ignorables).
_CONTROL = ("0-1F 7F-9F AD 61C 180E 200B 200E-200F 2028-202E 2060-206F FEFF FFF0-FFFB "
            "1BCA0-1BCA3 1D173-1D17A E0000-E001F E0080-E00FF E01F0-E0FFF")
# U+0000 stand-in (regex_split and tf.strings.lower stop at NUL); both are unknown pieces.
_NUL_STAND_IN = "\ufdd0"


_WS_RE = char_class(_WHITESPACE)
_MARKS_RE = char_class(_MARKS)
_PUNCT_RE = char_class(PUNCTUATION)
_GRAPHEME_RE = (
    "(?s)\\r\\n|[\\x{1F1E6}-\\x{1F1FF}]{2}|"
    + char_class(_CONTROL, negate=True)
    + "(?:" + char_class(_EXTEND) + "|\\x{200D}" + char_class(_PICTO) + "|\\x{200D})*|.")


def _flatten(step: dict | None, key: str) -> list[dict]:
    if step is None:
        return []
    if step.get("type") == "Sequence":
        return [s for inner in step[key] for s in _flatten(inner, key)]
    return [step]


def _template(post_processor: dict | None) -> tuple[tuple[int, ...], tuple[int, ...],
                                                    tuple[int, ...]]:
    """(start, middle, end) of a TemplateProcessing pair template whose B has type id 1."""
    if not post_processor or post_processor.get("type") != "TemplateProcessing":
        kind = post_processor.get("type") if post_processor else None
        raise ValueError(f"unsupported post_processor {kind}")
    parts: list[list[int]] = [[], [], []]
    part = 0
    for item in post_processor["pair"]:
        if "Sequence" in item:
            part += 1
            if item["Sequence"]["id"] == "B" and item["Sequence"]["type_id"] != 1:
                raise ValueError(f"unsupported pair template: the second segment has type id "
                                 f"{item['Sequence']['type_id']}, not 1")
        else:
            special = post_processor["special_tokens"][item["SpecialToken"]["id"]]
            parts[part].extend(special["ids"])
    return tuple(parts[0]), tuple(parts[1]), tuple(parts[2])


class SentencePieceTokenizer(base.Tokenizer):
    """A SentencePiece Unigram checkpoint's fast tokenizer as TensorFlow ops.

    Build it with `load`. `tokenize` returns the ids without special tokens; pair assembly
    and truncation come from `base.Tokenizer`.
    """

    def __init__(self, model_proto: bytes, definition: dict, pad_id: int,
                 name: str | None = None) -> None:
        """model_proto: a serialized SentencePiece ModelProto (Unigram); definition: a
        tokenizer.json-like dict (added_tokens, normalizer, pre_tokenizer, post_processor,
        model.vocab with the fast tokenizer's scores)."""
        super().__init__(name=name)
        model = definition["model"]
        if model.get("type") != "Unigram":
            raise ValueError(f"not a Unigram model: {model.get('type')}")
        if model.get("byte_fallback"):
            raise ValueError("byte_fallback Unigram models are not supported")
        start, middle, end = _template(definition.get("post_processor"))
        self.template = base.PairTemplate(start=start, middle=middle, end=end,
                                          pad_id=pad_id)
        self._normalizers = _flatten(definition.get("normalizer"), "normalizers")
        self._pre_tokenizers = _flatten(definition.get("pre_tokenizer"), "pretokenizers")
        for step in self._normalizers:
            if step["type"] not in ("Replace", "NFKD", "NFD", "NFKC", "NFC", "StripAccents",
                                    "Lowercase", "Strip", "Precompiled"):
                raise ValueError(f"unsupported normalizer {step['type']}")
        for step in self._pre_tokenizers:
            if step["type"] == "Metaspace":
                if step.get("prepend_scheme", "always") not in ("always", "never"):
                    raise ValueError(f"unsupported Metaspace prepend_scheme "
                                     f"{step.get('prepend_scheme')}")
            elif step["type"] == "Punctuation":
                if step.get("behavior", "Isolated").lower() != "isolated":
                    raise ValueError(f"unsupported Punctuation behavior {step.get('behavior')}")
            else:
                raise ValueError(f"unsupported pre_tokenizer {step['type']}")
        tokens = [t for t in definition.get("added_tokens", []) if t["content"]]
        if any(t.get("single_word") for t in tokens):
            raise ValueError("single_word added tokens are not supported")
        self._raw_tokens = [t for t in tokens if not t.get("normalized", False)]
        # tokenizers matches `normalized` added tokens by their normalized content.
        self._normalized_tokens = [
            dict(t, content=_normalize_py(t["content"], self._normalizers))
            for t in tokens if t.get("normalized", False)]
        self._normalized_tokens = [t for t in self._normalized_tokens if t["content"]]
        # Precompiled charsmap lookup tables (one per Precompiled step).
        self._charsmaps = []
        for step in self._normalizers:
            if step["type"] == "Precompiled":
                entries = charsmap_entries(base64.b64decode(step["precompiled_charsmap"]))
                keys = tf.constant([k for k, _ in entries], tf.string)
                self._charsmaps.append((
                    tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
                        keys, tf.range(len(entries), dtype=tf.int64)), default_value=-1),
                    tf.constant([v for _, v in entries] + [""], tf.string)))
        proto = identity_proto(model_proto, model)
        # The op's kernel-owned resource is shared by node name: two different models in one
        # restored SavedModel would otherwise share the first one. Name it by content.
        self._sentencepiece = tf_text.SentencepieceTokenizer(
            model=proto, out_type=tf.int32,
            name="sentencepiece_" + hashlib.sha256(proto).hexdigest()[:16])

    # -- added tokens ---------------------------------------------------------------
    @staticmethod
    def _split_tokens(text: tf.Tensor, tokens: list[dict]) -> tuple[tf.RaggedTensor,
                                                                     tf.RaggedTensor]:
        """[n] strings -> ([n, (pieces)] strings, [n, (pieces)] token id or -1 for text)."""
        if not tokens:
            pieces = tf.RaggedTensor.from_tensor(tf.expand_dims(text, 1))
            pieces = tf.ragged.boolean_mask(pieces, tf.strings.length(pieces) > 0)
            return pieces, tf.ones_like(pieces, dtype=tf.int64) * -1
        patterns = []
        for token in sorted(tokens, key=lambda t: -len(t["content"])):
            pattern = literal(token["content"])
            if token.get("lstrip"):
                pattern = _WS_RE + "*" + pattern
            if token.get("rstrip"):
                pattern = pattern + _WS_RE + "*"
            patterns.append((pattern, token["id"]))
        alternation = "|".join(p for p, _ in patterns)
        pieces = tf_text.regex_split(text, alternation, alternation)

        def ids_of(flat: tf.Tensor) -> tf.Tensor:
            ids = tf.fill(tf.shape(flat), tf.constant(-1, tf.int64))
            for pattern, token_id in reversed(patterns):
                ids = tf.where(tf.strings.regex_full_match(flat, pattern),
                               tf.constant(token_id, tf.int64), ids)
            return ids

        return pieces, tf.ragged.map_flat_values(ids_of, pieces)

    # -- normalizer -----------------------------------------------------------------
    def _precompiled(self, text: tf.Tensor, table: tf.lookup.StaticHashTable,
                     values: tf.Tensor) -> tf.Tensor:
        """tokenizers' Precompiled normalizer on [n] strings."""
        graphemes = tf_text.regex_split(text, _GRAPHEME_RE, _GRAPHEME_RE)
        flat = graphemes.flat_values
        none = tf.cast(tf.size(values) - 1, tf.int64)
        # (tf.strings.unicode_split would turn noncharacters into U+FFFD)
        chars = tf_text.regex_split(flat, "(?s).", "(?s).")
        char_ids = tf.ragged.map_flat_values(table.lookup, chars)
        char_out = tf.where(char_ids.flat_values >= 0,
                            tf.gather(values, tf.maximum(char_ids.flat_values, 0)),
                            chars.flat_values)
        per_char = tf.strings.reduce_join(chars.with_flat_values(char_out), axis=-1)
        # Whole grapheme: the replacement of its shortest prefix that is a key.
        n_chars = tf.cast(chars.row_lengths(), tf.int64)
        whole = tf.fill(tf.shape(flat, out_type=tf.int64), none)
        for k in range(PRECOMPILED_MAX_BYTES - 1, 0, -1):
            prefix = tf.strings.substr(flat, 0, k, unit="UTF8_CHAR")
            found = table.lookup(prefix)
            whole = tf.where((found >= 0) & (n_chars >= k), found, whole)
        short = tf.strings.length(flat) < PRECOMPILED_MAX_BYTES
        out = tf.where(short & tf.not_equal(whole, none), tf.gather(values, whole), per_char)
        return tf.strings.reduce_join(graphemes.with_flat_values(out), axis=-1)

    def _normalize(self, text: tf.Tensor) -> tf.Tensor:
        charsmaps = iter(self._charsmaps)
        for step in self._normalizers:
            kind = step["type"]
            if kind == "Replace":
                pattern = step["pattern"]
                regex = pattern["Regex"] if "Regex" in pattern else literal(pattern["String"])
                text = tf.strings.regex_replace(text, regex, step["content"].replace("\\", "\\\\"))
            elif kind in ("NFKD", "NFD", "NFKC", "NFC"):
                text = tf_text.normalize_utf8(text, kind)
            elif kind == "StripAccents":
                text = tf.strings.regex_replace(text, _MARKS_RE, "")
            elif kind == "Lowercase":
                # Rust lowercases char by char: no final-sigma rule.
                text = tf.strings.regex_replace(text, "\u03a3", "\u03c3")
                text = tf.strings.lower(text, encoding="utf-8")
            elif kind == "Strip":
                if step.get("strip_left", True):
                    text = tf.strings.regex_replace(text, "^" + _WS_RE + "+", "")
                if step.get("strip_right", True):
                    text = tf.strings.regex_replace(text, _WS_RE + "+$", "")
            elif kind == "Precompiled":
                text = self._precompiled(text, *next(charsmaps))
        return text

    # -- pre-tokenizers -------------------------------------------------------------
    def _pre_tokenize(self, text: tf.Tensor) -> tf.RaggedTensor:
        """[n] normalized segments -> [n, (words)]."""
        words = tf.RaggedTensor.from_tensor(tf.expand_dims(text, 1))
        words = tf.ragged.boolean_mask(words, tf.strings.length(words) > 0)
        for step in self._pre_tokenizers:
            flat = words.flat_values
            if step["type"] == "Punctuation":
                pattern = f"{_PUNCT_RE}|{char_class(PUNCTUATION, negate=True)}+"
                split = tf_text.regex_split(flat, pattern, pattern)
            else:  # Metaspace
                mark = step.get("replacement", REPLACEMENT)
                flat = tf.strings.regex_replace(flat, " ", mark)
                if step.get("prepend_scheme", "always") == "always":
                    starts = tf.equal(tf.strings.substr(flat, 0, 1, unit="UTF8_CHAR"), mark)
                    flat = tf.where(starts, flat, mark + flat)
                if step.get("split", True):
                    pattern = f"{literal(mark)}[^{literal(mark)}]*|[^{literal(mark)}]+"
                    split = tf_text.regex_split(flat, pattern, pattern)
                else:
                    split = tf.RaggedTensor.from_tensor(tf.expand_dims(flat, 1))
            words = words.with_flat_values(split).merge_dims(1, 2)
        return words

    # -- tokenize -------------------------------------------------------------------
    @tf.autograph.experimental.do_not_convert
    def tokenize(self, text: tf.Tensor) -> tf.RaggedTensor:
        """[batch] tf.string -> [batch, (tokens)] int64 ids, without special tokens."""
        text = tf.strings.regex_replace(tf.reshape(text, [-1]), "\\x00", _NUL_STAND_IN)
        segments, ids = self._split_tokens(text, self._raw_tokens)      # [b, (s)]
        flat = self._normalize(tf.where(ids.flat_values < 0, segments.flat_values, ""))
        inner, inner_ids = self._split_tokens(flat, self._normalized_tokens)  # [s, (t)]
        raw_ids = _at_most_one(ids.flat_values)                         # [s, (0 or 1)]
        inner_ids = tf.concat([raw_ids, inner_ids], axis=1)
        inner = tf.concat([tf.strings.as_string(raw_ids), inner], axis=1)
        words = self._pre_tokenize(tf.where(inner_ids.flat_values < 0, inner.flat_values, ""))
        pieces = tf.cast(self._sentencepiece.tokenize(words).merge_dims(1, 2), tf.int64)
        per_piece = tf.concat([pieces, _at_most_one(inner_ids.flat_values)], axis=1)
        return (segments.with_flat_values(inner_ids.with_flat_values(per_piece))
                .merge_dims(1, 2).merge_dims(1, 2))


def _normalize_py(text: str, steps: list[dict]) -> str:
    """The normalizer steps in Python, for added-token contents (exact for simple text)."""
    import re
    import unicodedata

    for step in steps:
        kind = step["type"]
        if kind == "Replace":
            pattern = step["pattern"]
            if "Regex" in pattern:
                text = re.sub(pattern["Regex"], step["content"].replace("\\", "\\\\"), text)
            else:
                text = text.replace(pattern["String"], step["content"])
        elif kind in ("NFKD", "NFD", "NFKC", "NFC"):
            text = unicodedata.normalize(kind, text)
        elif kind == "StripAccents":
            text = "".join(c for c in text if not unicodedata.category(c).startswith("M"))
        elif kind == "Lowercase":
            text = "".join(c.lower() for c in text)
        elif kind == "Strip":
            if step.get("strip_left", True):
                text = text.lstrip()
            if step.get("strip_right", True):
                text = text.rstrip()
        elif kind == "Precompiled":
            table = dict(charsmap_entries(base64.b64decode(step["precompiled_charsmap"])))
            text = "".join(table.get(c, c) for c in text)
    return text


def _at_most_one(ids: tf.Tensor) -> tf.RaggedTensor:
    """[n] ids -> [n, (0 or 1)]: the id where it is >= 0 (an added token), else nothing."""
    present = ids >= 0
    return tf.RaggedTensor.from_row_lengths(tf.boolean_mask(ids, present),
                                            tf.cast(present, tf.int64), validate=False)


def load(checkpoint_dir: str, model_type: str) -> SentencePieceTokenizer:
    """The in-graph tokenizer of a SentencePiece Unigram checkpoint directory.

    model_type: config.json's `model_type`, "albert" or "deberta-v2"
    (`sentencepiece_model.read_model` says which files it reads).
    """
    if model_type not in FAMILIES:
        raise ValueError(f"unsupported model_type {model_type!r}; expected one of {FAMILIES}")
    model = read_model(checkpoint_dir, model_type)
    return SentencePieceTokenizer(model.model_proto, model.definition, pad_id=model.pad_id)
