"""A SentencePiece Unigram checkpoint read for the in-graph tokenizer: the model proto, the
fast tokenizer's definition (tokenizer.json, or the transformers converter defaults
without one), and the proto rewritten for tensorflow_text (identity normalizer, the fast
tokenizer's pieces and scores on an exact float32 grid).
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
import os
import struct

import numpy as np
import tensorflow as tf

MODEL_FILES = ("spiece.model", "spm.model")
REPLACEMENT = "\u2581"
_EXACT_PIECES = 8  # float32 path sums of words up to about this many pieces are exact
PRECOMPILED_MAX_BYTES = 6  # tokenizers: graphemes of fewer bytes are transformed whole


@functools.lru_cache(maxsize=8)
def charsmap_entries(charsmap: bytes) -> tuple[tuple[str, str], ...]:
    """All (key, replacement) pairs of a SentencePiece precompiled charsmap.

    The charsmap is a little-endian uint32 trie size, a darts-clone double array and the
    NUL-terminated replacement strings; the trie is walked breadth first. Only keys of
    fewer than 6 bytes are listed: longer ones never match in tokenizers' Precompiled.
    """
    (trie_size,) = struct.unpack("<I", charsmap[:4])
    units = np.frombuffer(charsmap[4:4 + trie_size], dtype="<u4").astype(np.int64)
    strings = charsmap[4 + trie_size:]
    offsets = (units >> 10) << ((units & (1 << 9)) >> 6)
    labels = units & ((1 << 31) | 0xFF)
    has_leaf = (units >> 8) & 1
    values = units & ((1 << 31) - 1)
    labels_to_try = np.arange(1, 256, dtype=np.int64)
    entries = {}
    frontier = [(int(offsets[0]), b"")]
    for _ in range(PRECOMPILED_MAX_BYTES - 1):
        positions = np.array([p for p, _ in frontier], dtype=np.int64)
        children = positions[:, None] ^ labels_to_try[None, :]
        inside = children < len(units)
        children = np.where(inside, children, 0)
        found = inside & (labels[children] == labels_to_try[None, :])
        next_frontier = []
        for i, j in zip(*np.nonzero(found)):
            child = int(children[i, j])
            key = frontier[i][1] + bytes([int(labels_to_try[j])])
            node = child ^ int(offsets[child])
            if has_leaf[child]:
                start = int(values[node])
                entries[key] = strings[start:strings.index(b"\0", start)]
            next_frontier.append((node, key))
        frontier = next_frontier
        if not frontier:
            break
    pairs = []
    for key, value in sorted(entries.items()):
        try:
            pairs.append((key.decode("utf-8"), value.decode("utf-8")))
        except UnicodeDecodeError:
            continue
    return tuple(pairs)


def _check_number_comma(piece: str) -> bool:
    return len(piece) < 2 or piece[-1] != "," or not piece[-2].isdigit()


def model_file(checkpoint_dir: str) -> str:
    for name in MODEL_FILES:
        path = os.path.join(checkpoint_dir, name)
        if tf.io.gfile.exists(path):
            return path
    raise FileNotFoundError(f"no SentencePiece model ({' or '.join(MODEL_FILES)}) in "
                            f"{checkpoint_dir}")


def _read_json(path: str) -> dict | None:
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path, "r") as f:
        return json.load(f)


def _model_proto_class():
    try:
        from sentencepiece import sentencepiece_model_pb2
    except ImportError:  # pragma: no cover
        from transformers.utils import sentencepiece_model_pb2
    return sentencepiece_model_pb2.ModelProto


def _token_content(value) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return value.get("content")
    return None


def _default_definition(proto, config: dict, model_type: str) -> dict:
    """A tokenizer.json-like definition from the slow tokenizer's converter defaults."""
    charsmap = base64.b64encode(proto.normalizer_spec.precompiled_charsmap).decode()
    precompiled = ([{"type": "Precompiled", "precompiled_charsmap": charsmap}]
                   if proto.normalizer_spec.precompiled_charsmap else [])
    collapse = {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}
    metaspace = {"type": "Metaspace", "replacement": REPLACEMENT, "prepend_scheme": "always",
                 "split": True}
    if model_type == "albert":
        steps = [{"type": "Replace", "pattern": {"String": "``"}, "content": '"'},
                 {"type": "Replace", "pattern": {"String": "''"}, "content": '"'}]
        if not config.get("keep_accents", False):
            steps += [{"type": "NFKD"}, {"type": "StripAccents"}]
        if config.get("do_lower_case", True):
            steps.append({"type": "Lowercase"})
        steps += precompiled + [collapse]
        pre = [metaspace]
        vocab = [[p.piece, p.score if _check_number_comma(p.piece) else p.score - 100]
                 for p in proto.pieces]
    else:
        steps = [{"type": "Lowercase"}] if config.get("do_lower_case", False) else []
        steps += [{"type": "Strip", "strip_left": True, "strip_right": True}]
        steps += precompiled + [collapse]
        pre = ([{"type": "Punctuation", "behavior": "Isolated"}]
               if config.get("split_by_punct", False) else []) + [metaspace]
        vocab = [[p.piece, p.score] for p in proto.pieces]
    # Pieces of type CONTROL (3) and USER_DEFINED (4) are added tokens, not normalized.
    added = {i: {"id": i, "content": p.piece, "lstrip": False, "rstrip": False,
                 "normalized": False, "single_word": False}
             for i, p in enumerate(proto.pieces) if p.type in (3, 4)}
    for key, token in (config.get("added_tokens_decoder") or {}).items():
        added[int(key)] = dict(token, id=int(key))
    ids = {p[0]: i for i, p in enumerate(vocab)}
    ids.update({t["content"]: i for i, t in added.items()})
    for name in ("unk_token", "pad_token", "cls_token", "sep_token", "mask_token"):
        content = _token_content(config.get(name))
        if content is None:
            continue
        if content not in ids:  # DeBERTa's [MASK]: appended after the model's pieces
            ids[content] = len(ids)
        if ids[content] not in added:
            added[ids[content]] = {"id": ids[content], "content": content,
                                   "lstrip": model_type == "albert" and name == "mask_token",
                                   "rstrip": False, "normalized": False, "single_word": False}
    cls, sep = _token_content(config.get("cls_token", "[CLS]")), _token_content(
        config.get("sep_token", "[SEP]"))
    template = {"type": "TemplateProcessing",
                "pair": [{"SpecialToken": {"id": cls, "type_id": 0}},
                         {"Sequence": {"id": "A", "type_id": 0}},
                         {"SpecialToken": {"id": sep, "type_id": 0}},
                         {"Sequence": {"id": "B", "type_id": 1}},
                         {"SpecialToken": {"id": sep, "type_id": 1}}],
                "special_tokens": {cls: {"id": cls, "ids": [ids[cls]]},
                                   sep: {"id": sep, "ids": [ids[sep]]}}}
    return {"added_tokens": sorted(added.values(), key=lambda t: t["id"]),
            "normalizer": {"type": "Sequence", "normalizers": steps},
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": pre},
            "post_processor": template,
            "model": {"type": "Unigram", "unk_id": proto.trainer_spec.unk_id, "vocab": vocab,
                      "byte_fallback": False}}


def _score_scale(scores: list[float]) -> float:
    """A power of two such that scores rounded to multiples of 1/scale add up exactly in float32.

    `tokenizers` sums path scores in float64, where the few float32 scores of a word add
    up exactly, so equal-score segmentations (e.g. "zz"+"z" vs "z"+"zz") tie exactly and
    its tie rule decides; SentencePiece sums in float32, where rounding would decide.
    On this grid, sums of up to _EXACT_PIECES pieces (and unknown chars) stay exact.
    """
    largest = max([abs(s) for s in scores] + [1.0]) + 10.0  # + the unknown-char penalty
    bits = int(np.ceil(np.log2(largest * _EXACT_PIECES)))
    return float(2 ** (24 - bits))


def identity_proto(model_proto: bytes, model: dict) -> bytes:
    """The model proto with the fast tokenizer's pieces/scores and no own normalization."""
    proto = _model_proto_class()()
    proto.ParseFromString(model_proto)
    if proto.trainer_spec.model_type != 1:
        raise ValueError("not a SentencePiece Unigram model")
    unk_id = int(model["unk_id"])
    scale = _score_scale([score for _, score in model["vocab"]])
    del proto.pieces[:]
    for i, (piece, score) in enumerate(model["vocab"]):
        proto.pieces.add(piece=piece, score=round(score * scale) / scale,
                         type=2 if i == unk_id else 1)
    proto.trainer_spec.unk_id = unk_id
    proto.trainer_spec.unk_piece = model["vocab"][unk_id][0]
    proto.trainer_spec.bos_id = proto.trainer_spec.eos_id = proto.trainer_spec.pad_id = -1
    proto.trainer_spec.byte_fallback = False
    spec = proto.normalizer_spec
    spec.name = "identity"
    spec.precompiled_charsmap = b""
    spec.add_dummy_prefix = False
    spec.remove_extra_whitespaces = False
    spec.escape_whitespaces = False
    proto.ClearField("denormalizer_spec")
    return proto.SerializeToString()


@dataclasses.dataclass(frozen=True)
class SentencePieceModel:
    """What the tokenizer is built from."""

    model_proto: bytes  # the checkpoint's serialized ModelProto
    definition: dict  # tokenizer.json-like: added_tokens, normalizer, ..., model.vocab
    pad_id: int


def read_model(checkpoint_dir: str, model_type: str) -> SentencePieceModel:
    """Reads spiece.model or spm.model, tokenizer_config.json and, when present,
    tokenizer.json (the fast tokenizer's definition, which wins over the converter
    defaults) of a checkpoint directory of `model_type` ("albert" or "deberta-v2")."""
    checkpoint_dir = os.fspath(checkpoint_dir)
    with tf.io.gfile.GFile(model_file(checkpoint_dir), "rb") as f:
        model_proto = f.read()
    config = _read_json(os.path.join(checkpoint_dir, "tokenizer_config.json")) or {}
    definition = _read_json(os.path.join(checkpoint_dir, "tokenizer.json"))
    if definition is None:
        proto = _model_proto_class()()
        proto.ParseFromString(model_proto)
        definition = _default_definition(proto, config, model_type)
    ids = {piece: i for i, (piece, _) in enumerate(definition["model"]["vocab"])}
    ids.update({t["content"]: t["id"] for t in definition.get("added_tokens", [])})
    pad = _token_content(config.get("pad_token")) or ("<pad>" if model_type == "albert"
                                                      else "[PAD]")
    return SentencePieceModel(model_proto, definition, pad_id=ids.get(pad, 0))
