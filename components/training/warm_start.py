"""Warm start: a candidate trained on new spans starts from the served version's weights.

The exported model keeps its weights as graph constants, which nothing can train
again. So every candidate also writes its classifier's weights and what they fit
(`model.json`: family, vocabulary digest, encoder shape, max sequence length,
head, the spans it was trained on) under `assets.extra/warm_start/` of its
SavedModel. The Pusher copies that directory with the model, so the weights
travel with each version to any filesystem, and TF Serving ignores them.

The `WarmStart` component (`components.training.warm_start_component`) decides,
before the Trainer, where the candidate starts. From the served version (the newest
complete one) when `warm_start` is "served", that version was written with warm-
start weights, it is compatible (the same `model.json` identity) and the training
window holds a span newer than those it was trained on. Otherwise from the
checkpoint, saying why. Its Model artifact (the Trainer's `base_model`) holds the
decision (`warm_start.json`) and, for a warm start, a copy of the served weights, so
the Trainer reads nothing outside its inputs. Like the window, the decision is made
once per window and cached with it.
"""

from __future__ import annotations

import hashlib
import json
import os

import tempfile

from tfx.dsl.io import fileio

from components.families.checkpoint import resolve_checkpoint
from components.families.table import read_model_type

WARM_START_DIR = os.path.join("assets.extra", "warm_start")  # inside a SavedModel
WEIGHTS_FILE = "weights.h5"
IDENTITY_FILE = "model.json"
DECISION_FILE = "warm_start.json"
SERVING_SUBDIR = "Format-Serving"  # where the Trainer's `base_model` path points
# Files that define a checkpoint's vocabulary, whatever its family.
VOCABULARY_FILES = ("vocab.txt", "vocab.json", "merges.txt", "spiece.model", "spm.model",
                    "tokenizer.json", "special_tokens_map.json", "added_tokens.json")
ENCODER_SHAPE_KEYS = ("hidden_size", "num_hidden_layers", "num_attention_heads",
                      "intermediate_size", "embedding_size", "vocab_size")


def model_identity(checkpoint: str, max_seq_length: int, pooling: str, pair_order: str
                   ) -> dict:
    """What a model's weights fit: a served version can seed a candidate with the same."""
    checkpoint_dir = resolve_checkpoint(checkpoint)
    vocabulary = hashlib.sha256()
    for name in VOCABULARY_FILES:
        path = os.path.join(checkpoint_dir, name)
        if os.path.exists(path):
            with open(path, "rb") as stream:
                vocabulary.update(name.encode() + b"\0" + stream.read())
    with open(os.path.join(checkpoint_dir, "config.json"), encoding="utf-8") as stream:
        config = json.load(stream)
    return {"model_type": read_model_type(checkpoint_dir),
            "vocabulary_sha256": vocabulary.hexdigest(),
            "encoder": {key: config[key] for key in ENCODER_SHAPE_KEYS if key in config},
            "max_seq_length": max_seq_length,
            "head": {"pooling": pooling, "pair_order": pair_order}}


def read_json(path: str) -> dict | None:
    if not fileio.exists(path):
        return None
    with fileio.open(path) as stream:
        return json.loads(stream.read())


def read_decision(base_model: str | None) -> dict:
    """The decision a WarmStart artifact holds (`fn_args.base_model`); {} without one."""
    return (read_json(os.path.join(base_model, DECISION_FILE)) or {}) if base_model else {}


def weights_sha256(weights: list) -> str:
    """A digest of a model's weights (`model.get_weights()`), to show what it started from."""
    digest = hashlib.sha256()
    for array in weights:
        digest.update(array.tobytes())
    return digest.hexdigest()


def load_served_weights(model, base_model: str) -> None:
    """Loads the served weights a WarmStart artifact copied into a built classifier."""
    with tempfile.TemporaryDirectory(prefix="warm-start-") as local:
        path = os.path.join(local, WEIGHTS_FILE)
        fileio.copy(os.path.join(base_model, WEIGHTS_FILE), path)  # any filesystem
        model.load_weights(path)


def save_for_warm_start(model, export_dir: str, identity: dict) -> None:
    """Writes the float32 classifier's weights and `identity` (what they fit, the spans
    they were trained on) under the export's `assets.extra/warm_start/`."""
    target = os.path.join(export_dir, WARM_START_DIR)
    fileio.makedirs(target)
    with tempfile.TemporaryDirectory(prefix="warm-start-") as local:
        path = os.path.join(local, WEIGHTS_FILE)
        model.save_weights(path)
        fileio.copy(path, os.path.join(target, WEIGHTS_FILE), overwrite=True)
    with fileio.open(os.path.join(target, IDENTITY_FILE), "w") as stream:
        stream.write(json.dumps(identity, indent=1, sort_keys=True))
