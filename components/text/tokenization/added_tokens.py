"""Added tokens of a Hugging Face fast tokenizer: tokens matched verbatim in the text.

`tokenizers` (AddedVocabulary) looks for the added tokens before anything else runs: it
splits the raw text on the tokens that are not `normalized` (leftmost-longest), normalizes
the other pieces, splits those on the `normalized` tokens (matched by their normalized
content, so BertNormalizer's lowercasing makes "<UNK>" match "<unk>"), and only then
pre-tokenizes what is left. A token with `lstrip` / `rstrip` also takes the whitespace
(Rust's char::is_whitespace) on its left / right.

`read_added_tokens` reads them as transformers loads them; `split_added_tokens` finds
them in a tf.string tensor with TensorFlow and tensorflow_text ops.
"""

from __future__ import annotations

import dataclasses
import json
import os

import tensorflow as tf
import tensorflow_text as tf_text

from components.text.tokenization.unicode_classes import char_class, literal

# Rust char::is_whitespace (Unicode White_Space): what lstrip and rstrip take.
_WHITESPACE_RE = char_class("9-D 20 85 A0 1680 2000-200A 2028-2029 202F 205F 3000")


@dataclasses.dataclass(frozen=True)
class AddedToken:
    """One entry of tokenizer.json's `added_tokens` (single_word ones are refused)."""

    content: str
    id: int
    normalized: bool = False  # matched in the normalized text, by its normalized content
    lstrip: bool = False
    rstrip: bool = False

    def pattern(self, content: str | None = None) -> str:
        """RE2 pattern of the content (or of `content`, its normalized form) with the
        whitespace the token strips."""
        strip = _WHITESPACE_RE + "*"
        return ((strip if self.lstrip else "") + literal(self.content if content is None
                                                         else content)
                + (strip if self.rstrip else ""))


def _read_json(path: str) -> dict | None:
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path, "r") as f:
        return json.load(f)


def _added_token(entry: dict, token_id: int, where: str) -> AddedToken:
    if entry.get("single_word"):
        raise ValueError(f"{where}: single_word added token {entry['content']!r} unsupported")
    return AddedToken(entry["content"], int(token_id), bool(entry.get("normalized", False)),
                      bool(entry.get("lstrip", False)), bool(entry.get("rstrip", False)))


def read_added_tokens(checkpoint_dir: str | os.PathLike) -> list[AddedToken]:
    """The added tokens transformers gives the checkpoint's fast tokenizer, in id order.

    tokenizer.json's `added_tokens`, then those of tokenizer_config.json's
    `added_tokens_decoder` whose content tokenizer.json lacks (transformers adds them at
    load; re-adding a present content changes what the tokenizer saves, not how
    `tokenizers` matches it); [] if neither file lists any.
    """
    checkpoint_dir = os.fspath(checkpoint_dir)
    definition = _read_json(os.path.join(checkpoint_dir, "tokenizer.json")) or {}
    config = _read_json(os.path.join(checkpoint_dir, "tokenizer_config.json")) or {}
    entries = [(entry, entry["id"]) for entry in definition.get("added_tokens", [])]
    entries += [(entry, token_id)
                for token_id, entry in (config.get("added_tokens_decoder") or {}).items()]
    tokens: dict[str, AddedToken] = {}
    for entry, token_id in entries:
        if entry["content"] and entry["content"] not in tokens:
            tokens[entry["content"]] = _added_token(entry, token_id, checkpoint_dir)
    return sorted(tokens.values(), key=lambda token: token.id)


def split_added_tokens(text: tf.Tensor, patterns: list[str]) -> tuple[tf.RaggedTensor,
                                                                       tf.RaggedTensor]:
    """[n] strings -> [n, (pieces)] pieces and each piece's index in `patterns` (-1: text).

    The pieces of a row join back to the row. A match starts as far left as possible and,
    at one position, the first pattern that matches wins: list them longest content first.
    """
    alternation = "|".join(patterns)
    pieces = tf_text.regex_split(text, alternation, alternation)

    def index_of(flat: tf.Tensor) -> tf.Tensor:
        index = tf.fill(tf.shape(flat), tf.constant(-1, tf.int64))
        for i in reversed(range(len(patterns))):
            index = tf.where(tf.strings.regex_full_match(flat, patterns[i]),
                             tf.constant(i, tf.int64), index)
        return index

    return pieces, tf.ragged.map_flat_values(index_of, pieces)
