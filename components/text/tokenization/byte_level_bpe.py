"""In-graph byte-level BPE tokenization (RoBERTa), matching Hugging Face `RobertaTokenizerFast`.

Only TensorFlow core and tensorflow_text ops are used (no py_function, no custom ops), so
the tokenizer can live inside a `tf.function`, a tensorflow-transform `preprocessing_fn`
or a SavedModel served by stock TF Serving (which must load tensorflow_text's ops). The
merge ranks are a `tf.lookup.StaticHashTable` built from constants, so no asset files are
needed.

The pipeline mirrors the Rust `tokenizers` implementation step by step:
  1. added tokens ("<s>", "</s>", "<mask>", ...) written literally in the raw text are
     matched first (longest first; "<mask>" also takes the whitespace on its left, lstrip),
     and split the text into segments that are pre-tokenized independently,
  2. (add_prefix_space only) a " " is put in front of each segment not starting with one,
  3. ByteLevel pre-tokenization with the GPT-2 regex
     's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+
     RE2 has no lookahead, so `\\s+(?!\\S)` is emulated: every whitespace run followed by
     a non-space is first cut before its last char (Oniguruma gives that char to the next
     pre-token, or makes it one on its own), then each piece is split with the regex
     without the lookahead alternative,
  4. each pre-token's UTF-8 bytes -> GPT-2 `bytes_to_unicode` symbols -> vocabulary ids,
  5. BPE: a vectorised `tf.while_loop` over the symbols of all distinct words of the batch;
     in each round every word merges all (non-overlapping, left to right) occurrences of
     its lowest-ranked adjacent pair, until no word has a pair in merges.txt.
Pair assembly and `longest_first` truncation are shared (components/text/tokenization/base.py).

Unicode classes: `tokenizers` matches with Oniguruma, whose \\s is Unicode White_Space and
whose \\p{L}/\\p{N} follow Unicode 16, while RE2's \\s is ASCII and its \\p{L}/\\p{N} are
older. Whitespace is spelled out below, and the letters/numbers RE2 lacks are added to
its classes (extracted code point by code point from tokenizers 0.22's ByteLevel
pre-tokenizer; RE2's classes are a subset of those).

Loading a graph that contains these ops requires `import tensorflow_text` first.
"""

from __future__ import annotations

import dataclasses
import json
import os

import tensorflow as tf
import tensorflow_text as tf_text

from components.text.tokenization import base
from components.text.tokenization.unicode_classes import class_body

# Oniguruma's \s (Unicode White_Space), which is also Rust's char::is_whitespace (lstrip).
_WHITESPACE = "9-D 20 85 A0 1680 2000-200A 2028-2029 202F 205F 3000"
# Letters (\p{L}) and numbers (\p{N}) of tokenizers' Oniguruma that RE2 (TF 2.16) lacks.
_EXTRA_LETTERS = (
    "1C89-1C8A A7CB-A7CD A7DA-A7DC 105C0-105F3 10D4A-10D65 10D6F-10D85 10EC2-10EC4 "
    "11380-11389 1138B 1138E 11390-113B5 113B7 113D1 113D3 11BC0-11BE0 13460-143FA "
    "16100-1611D 16D40-16D6C 18CFF 1E5D0-1E5ED 1E5F0 2EBF0-2EE5D"
)
_EXTRA_NUMBERS = (
    "10D40-10D49 116D0-116E3 11BF0-11BF9 16130-16139 16D70-16D79 1CCF0-1CCF9 1E5F1-1E5FA"
)


_WS = class_body(_WHITESPACE)
_LETTERS = r"\p{L}" + class_body(_EXTRA_LETTERS)
_NUMBERS = r"\p{N}" + class_body(_EXTRA_NUMBERS)
_SPACE_RUN = f"[{_WS}]+"
# The GPT-2 pre-tokenizer regex without its lookahead alternative \s+(?!\S) (see step 3).
_PRETOKEN = (f"'s|'t|'re|'ve|'m|'ll|'d| ?[{_LETTERS}]+| ?[{_NUMBERS}]+"
             f"| ?[^{_WS}{_LETTERS}{_NUMBERS}]+|[{_WS}]+")
_LAST_CHAR = r"(?s)^.*(.)$"


def _regex_split(text: tf.Tensor, pattern: str) -> tuple[tf.RaggedTensor, tf.RaggedTensor,
                                                         tf.RaggedTensor]:
    """tf_text.regex_split_with_offsets(text, pattern, pattern), correct for U+0000 too.

    tensorflow_text stops reading a string at U+0000, so the split is done on a copy with
    U+0001 (the same regex class here) instead, and the pieces are cut from the original.
    """
    safe = tf.strings.regex_replace(text, r"\x00", "\x01")
    pieces, starts, ends = tf_text.regex_split_with_offsets(safe, pattern, pattern)
    originals = tf.strings.substr(tf.gather(text, pieces.value_rowids()), starts.flat_values,
                                  ends.flat_values - starts.flat_values)
    return pieces.with_flat_values(originals), starts, ends


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable unicode char table (as in tokenizers' ByteLevel)."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {byte: chr(char) for byte, char in zip(printable, chars)}


@dataclasses.dataclass(frozen=True)
class AddedToken:
    """A token matched verbatim in the raw text before pre-tokenization."""

    content: str
    id: int
    lstrip: bool = False
    rstrip: bool = False

    @property
    def pattern(self) -> str:
        """RE2 pattern matching the token with the whitespace it strips."""
        literal = "".join(f"\\x{{{ord(c):X}}}" for c in self.content)
        return ((f"[{_WS}]*" if self.lstrip else "") + literal
                + (f"[{_WS}]*" if self.rstrip else ""))


@dataclasses.dataclass(frozen=True)
class BpeSpec:
    """What the in-graph tokenizer needs to know about a byte-level BPE checkpoint."""

    vocab: dict[str, int]
    merges: list[tuple[str, str]]
    added_tokens: tuple[AddedToken, ...]
    add_prefix_space: bool
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int | None = None  # the BPE model's unk (None for RoBERTa: unknown bytes dropped)


def _read_json(path: str) -> dict | None:
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path, "r") as f:
        return json.load(f)


def _parse_merges(lines: list) -> list[tuple[str, str]]:
    merges = []
    for line in lines:
        if isinstance(line, str):
            if line.startswith("#version") or not line.strip():
                continue
            left, right = line.split(" ")  # tokens never contain " " (mapped to "Ġ")
        else:
            left, right = line
        merges.append((left, right))
    return merges


def load_spec(checkpoint_dir: str | os.PathLike) -> BpeSpec:
    """Reads vocab.json, merges.txt (or tokenizer.json) and tokenizer_config.json."""
    checkpoint_dir = os.fspath(checkpoint_dir)
    path = lambda name: os.path.join(checkpoint_dir, name)  # noqa: E731
    tokenizer_json = _read_json(path("tokenizer.json")) or {}
    config = _read_json(path("tokenizer_config.json")) or {}
    model = tokenizer_json.get("model") or {}
    if tf.io.gfile.exists(path("vocab.json")) and tf.io.gfile.exists(path("merges.txt")):
        vocab = _read_json(path("vocab.json"))
        with tf.io.gfile.GFile(path("merges.txt"), "r") as f:
            merges = _parse_merges(f.read().split("\n"))
    elif model.get("type") == "BPE":
        vocab, merges = model["vocab"], _parse_merges(model["merges"])
    else:
        raise FileNotFoundError(
            f"{checkpoint_dir}: no vocab.json + merges.txt, nor a BPE tokenizer.json")
    if model.get("ignore_merges") or model.get("continuing_subword_prefix") or \
            model.get("end_of_word_suffix") or model.get("dropout"):
        raise ValueError(f"{checkpoint_dir}: unsupported BPE options in tokenizer.json")

    # Added tokens: tokenizer.json's, then tokenizer_config.json's (transformers re-adds
    # those, so their lstrip/rstrip win); RoBERTa's defaults if neither file lists them.
    added: dict[str, AddedToken] = {}
    entries = [(t["content"], t["id"], t) for t in tokenizer_json.get("added_tokens", [])]
    entries += [(t["content"], int(i), t)
                for i, t in (config.get("added_tokens_decoder") or {}).items()]
    for content, token_id, props in entries:
        if props.get("single_word"):
            raise ValueError(f"{checkpoint_dir}: single_word added token {content!r} unsupported")
        added[content] = AddedToken(content, int(token_id), bool(props.get("lstrip")),
                                    bool(props.get("rstrip")))

    def token_name(key: str, default: str) -> str:
        value = config.get(key, default)
        return value["content"] if isinstance(value, dict) else value

    for key, default in (("bos_token", "<s>"), ("eos_token", "</s>"), ("unk_token", "<unk>"),
                         ("sep_token", "</s>"), ("cls_token", "<s>"), ("pad_token", "<pad>"),
                         ("mask_token", "<mask>")):
        name = token_name(key, default)
        if name not in added and name in vocab:
            added[name] = AddedToken(name, vocab[name], lstrip=key == "mask_token")

    def token_id(key: str, default: str) -> int:
        name = token_name(key, default)
        if name in added:
            return added[name].id
        if name in vocab:
            return vocab[name]
        raise ValueError(f"{checkpoint_dir}: {key} {name!r} is not in the vocabulary")

    processor = tokenizer_json.get("post_processor") or {}
    if processor.get("type") == "RobertaProcessing":
        bos_id, eos_id = processor["cls"][1], processor["sep"][1]
    else:
        bos_id, eos_id = token_id("cls_token", "<s>"), token_id("sep_token", "</s>")
    unk = model.get("unk_token")
    return BpeSpec(
        vocab=vocab, merges=merges,
        added_tokens=tuple(sorted(added.values(), key=lambda t: (-len(t.content), t.content))),
        # RobertaTokenizerFast's add_prefix_space argument (default False) overrides the
        # pre-tokenizer saved in tokenizer.json.
        add_prefix_space=bool(config.get("add_prefix_space", False)),
        bos_id=int(bos_id), eos_id=int(eos_id), pad_id=token_id("pad_token", "<pad>"),
        unk_id=vocab.get(unk) if isinstance(unk, str) else None,
    )


class ByteLevelBpeTokenizer(base.Tokenizer):
    """RoBERTa's byte-level BPE as TensorFlow ops (see the module docstring)."""

    def __init__(self, spec: BpeSpec, name: str | None = None) -> None:
        super().__init__(name=name)
        self.template = base.PairTemplate(start=(spec.bos_id,), middle=(spec.eos_id, spec.eos_id),
                                          end=(spec.eos_id,),
                                          pad_id=spec.pad_id)
        self._add_prefix_space = spec.add_prefix_space
        self._added = spec.added_tokens
        self._added_pattern = "|".join(t.pattern for t in spec.added_tokens)
        # Symbols are vocabulary ids; a pair (a, b) is keyed a * stride + b.
        self._stride = max([*spec.vocab.values(), *(t.id for t in spec.added_tokens)]) + 1
        ranks: dict[int, tuple[int, int]] = {}
        for rank, (left, right) in enumerate(spec.merges):
            ids = (spec.vocab.get(left), spec.vocab.get(right), spec.vocab.get(left + right))
            if None in ids:
                raise ValueError(f"merge {left!r} {right!r}: a token is not in the vocabulary")
            ranks[ids[0] * self._stride + ids[1]] = (rank, ids[2])  # later duplicates win
        keys = sorted(ranks)
        self._no_merge = len(spec.merges)  # rank of pairs without a merge
        merged = [0] * len(spec.merges)
        for key in keys:
            merged[ranks[key][0]] = ranks[key][1]
        self._merged_ids = tf.constant(merged + [0], tf.int64)
        self._ranks = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(keys, tf.int64), tf.constant([ranks[k][0] for k in keys], tf.int64)),
            default_value=self._no_merge)
        fallback = -1 if spec.unk_id is None else spec.unk_id
        self._byte_ids = tf.constant(
            [spec.vocab.get(char, fallback) for _, char in sorted(bytes_to_unicode().items())],
            tf.int64)

    @tf.autograph.experimental.do_not_convert
    def tokenize(self, text: tf.Tensor) -> tf.RaggedTensor:
        """[batch] tf.string -> [batch, (tokens)] int64 ids, without special tokens."""
        return self._tokenize(tf.reshape(tf.convert_to_tensor(text, tf.string), [-1]))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)
    def _tokenize(self, text: tf.Tensor) -> tf.RaggedTensor:
        segments, special_ids = self._split_added_tokens(text)
        ids = self._encode_segments(segments.flat_values, special_ids)
        return tf.RaggedTensor.from_row_splits(ids, segments.row_splits,
                                               validate=False).merge_dims(1, 2)

    def _split_added_tokens(self, text: tf.Tensor) -> tuple[tf.RaggedTensor, tf.Tensor]:
        """[batch] text -> [batch, (segments)] and each segment's added-token id (or -1)."""
        if not self._added:
            segments = tf.RaggedTensor.from_row_lengths(
                tf.boolean_mask(text, tf.not_equal(text, "")),
                tf.cast(tf.not_equal(text, ""), tf.int64))
            return segments, -tf.ones_like(segments.flat_values, tf.int64)
        segments, _, _ = _regex_split(text, self._added_pattern)
        flat = segments.flat_values
        special_ids = -tf.ones_like(flat, tf.int64)
        for token in self._added:
            special_ids = tf.where(tf.strings.regex_full_match(flat, token.pattern),
                                   tf.constant(token.id, tf.int64), special_ids)
        return segments, special_ids

    def _encode_segments(self, segments: tf.Tensor, special_ids: tf.Tensor) -> tf.RaggedTensor:
        """[segments] text -> [segments, (ids)]: added tokens' ids or BPE ids of the text."""
        is_special = special_ids >= 0
        text = tf.where(is_special, "", segments)
        if self._add_prefix_space:
            text = tf.where(tf.strings.regex_full_match(text, "(?s)(| .*)"), text, " " + text)
        pieces, piece_rows = self._cut_space_runs(text)
        words, _, _ = _regex_split(pieces, _PRETOKEN)
        unique_words, index = tf.unique(words.flat_values)
        word_ids = tf.gather(self._bpe(unique_words), index)
        piece_ids = tf.RaggedTensor.from_row_splits(word_ids, words.row_splits, validate=False)
        segment_ids = tf.RaggedTensor.from_value_rowids(
            piece_ids, piece_rows, nrows=tf.size(text, out_type=tf.int64),
            validate=False).merge_dims(1, 3)
        specials = tf.RaggedTensor.from_row_lengths(
            tf.boolean_mask(special_ids, is_special), tf.cast(is_special, tf.int64),
            validate=False)
        return tf.concat([segment_ids, specials], axis=1)

    @staticmethod
    def _cut_space_runs(text: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Cuts each whitespace run followed by a non-space before its last char.

        Returns the pieces and the row of `text` each comes from. No pre-token of
        tokenizers' regex crosses these cuts (nor the start of a whitespace run).
        """
        runs, starts, ends = _regex_split(text, _SPACE_RUN)
        flat = runs.flat_values
        rows = runs.value_rowids()
        position = tf.range(tf.size(flat, out_type=tf.int64)) - tf.gather(runs.row_starts(), rows)
        is_last = tf.equal(position, tf.gather(runs.row_lengths(), rows) - 1)
        is_space = tf.strings.regex_full_match(flat, _SPACE_RUN)
        last_char = tf.cast(
            tf.strings.length(tf.strings.regex_replace(flat, _LAST_CHAR, r"\1")), tf.int64)
        # Cut points: the start of every whitespace run (and of the text), and the start of
        # the last char of every whitespace run that is followed by something.
        cut_here = tf.stack([is_space | tf.equal(position, 0), is_space & ~is_last], axis=1)
        cut_at = tf.stack([starts.flat_values, ends.flat_values - last_char], axis=1)
        cut_rows = tf.boolean_mask(tf.stack([rows, rows], axis=1), cut_here)
        cut_at = tf.boolean_mask(cut_at, cut_here)
        # Each piece ends at the next cut of its row or at the end of its text.
        text_ends = tf.gather(tf.cast(tf.strings.length(text), tf.int64), cut_rows)
        next_same_row = tf.concat([tf.equal(cut_rows[1:], cut_rows[:-1]),
                                   tf.zeros([tf.minimum(tf.size(cut_rows), 1)], tf.bool)], axis=0)
        next_cut = tf.concat([cut_at[1:], tf.zeros([tf.minimum(tf.size(cut_at), 1)], tf.int64)],
                             axis=0)
        lengths = tf.where(next_same_row, next_cut, text_ends) - cut_at
        nonempty = lengths > 0
        cut_rows = tf.boolean_mask(cut_rows, nonempty)
        pieces = tf.strings.substr(tf.gather(text, cut_rows), tf.boolean_mask(cut_at, nonempty),
                                   tf.boolean_mask(lengths, nonempty))
        return pieces, cut_rows

    def _bpe(self, words: tf.Tensor) -> tf.RaggedTensor:
        """[words] pre-tokens -> [words, (ids)] after byte mapping and BPE merges."""
        chars = tf.strings.bytes_split(words)
        byte_values = tf.reshape(tf.io.decode_raw(chars.flat_values, tf.uint8), [-1])
        symbols = tf.gather(self._byte_ids, tf.cast(byte_values, tf.int32))
        known = symbols >= 0  # bytes missing from the vocabulary are dropped, as in tokenizers
        symbols = tf.boolean_mask(symbols, known)
        rows = tf.boolean_mask(chars.value_rowids(), known)
        nwords = tf.size(words, out_type=tf.int64)

        def merge_round(symbols: tf.Tensor, rows: tf.Tensor, _: tf.Tensor
                        ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
            pair_rows = rows[:-1]
            same_word = tf.equal(pair_rows, rows[1:])
            ranks = self._ranks.lookup(symbols[:-1] * self._stride + symbols[1:])
            ranks = tf.where(same_word, ranks, self._no_merge)
            best = tf.math.unsorted_segment_min(ranks, pair_rows, nwords)
            candidate = (ranks < self._no_merge) & tf.equal(ranks, tf.gather(best, pair_rows))
            # A run of candidates ("a a a a" with merge "a a") merges left to right without
            # overlap: every other position from the run's start.
            index = tf.range(tf.size(candidate, out_type=tf.int64))
            run_start = candidate & ~tf.concat([[False], candidate[:-1]], axis=0)
            starts = tf.concat([[0], tf.boolean_mask(index, run_start)], axis=0)
            offset = index - tf.gather(starts, tf.cumsum(tf.cast(run_start, tf.int64)))
            merge = candidate & tf.equal(offset % 2, 0)
            merged = tf.gather(self._merged_ids, ranks)
            merge_at = tf.concat([merge, [False]], axis=0)
            symbols = tf.where(merge_at, tf.concat([merged, [0]], axis=0), symbols)
            keep = ~tf.concat([[False], merge], axis=0)
            return (tf.boolean_mask(symbols, keep), tf.boolean_mask(rows, keep),
                    tf.reduce_any(merge))

        symbols, rows, _ = tf.while_loop(
            lambda symbols, rows, merged: merged, merge_round,
            (symbols, rows, tf.size(symbols) > 1),
            shape_invariants=(tf.TensorShape([None]), tf.TensorShape([None]),
                              tf.TensorShape([])))
        return tf.RaggedTensor.from_value_rowids(symbols, rows, nrows=nwords, validate=False)


def load(checkpoint_dir: str, model_type: str) -> ByteLevelBpeTokenizer:
    """The in-graph tokenizer of a local byte-level BPE checkpoint (model_type "roberta").

    Build it where it is used (inside a Transform preprocessing_fn, or as an attribute of
    the tf.Module being saved) so that its lookup table belongs to that graph.
    """
    if model_type != "roberta":
        raise ValueError(f"no byte-level BPE tokenizer for model_type {model_type!r}")
    return ByteLevelBpeTokenizer(load_spec(checkpoint_dir), name="byte_level_bpe")
