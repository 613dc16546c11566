"""Checkpoints: the default one loads every weight from safetensors; broken ones are refused."""

import json
import os
from pathlib import Path

import pytest
import tensorflow as tf

from components.families.check import check_checkpoint
from components.families.checkpoint import DEFAULT_CHECKPOINT, CheckpointError, resolve_checkpoint
from components.families.encoders import load_encoder
from components.model.classifier import CosineSimilarity, MaskedMeanPooling
from components.text.tokenization import load_tokenizer
from components.text.tokenization.base import assemble_single

DEFAULT_DIR = Path(resolve_checkpoint(DEFAULT_CHECKPOINT))


def _embed(model, texts: list[str]) -> tf.Tensor:
    tokenizer = load_tokenizer(str(DEFAULT_DIR))
    question = assemble_single(tokenizer.tokenize(tf.constant(texts)), tokenizer.template, 128)
    ids, mask = (tf.cast(question[name].to_tensor(), tf.int32)
                 for name in ("input_ids", "attention_mask"))
    states = model(input_ids=ids, attention_mask=mask).last_hidden_state
    return MaskedMeanPooling()(states, mask)


def test_default_checkpoint_loads_every_weight_from_safetensors():
    assert (DEFAULT_DIR / "model.safetensors").is_file()
    assert not (DEFAULT_DIR / "tf_model.h5").exists()  # so this is the safetensors route
    model = load_encoder(str(DEFAULT_DIR))
    embeddings = _embed(model, ["How do I learn Python?",
                                "What is the best way to learn Python?",
                                "Why is the sky blue?"])
    paraphrase = float(CosineSimilarity()(embeddings[0:1], embeddings[1:2])[0])
    unrelated = float(CosineSimilarity()(embeddings[0:1], embeddings[2:3])[0])
    # Pretrained sentence embeddings tell these apart by a wide margin; random ones do not.
    assert paraphrase > 0.7 and unrelated < 0.3, (paraphrase, unrelated)


def _copy_of_default(tmp_path: Path, **config_changes) -> Path:
    directory = tmp_path / "checkpoint"
    directory.mkdir()
    for name in os.listdir(DEFAULT_DIR):
        if name != "config.json" and (DEFAULT_DIR / name).is_file():
            (directory / name).symlink_to(DEFAULT_DIR / name)
    config = json.loads((DEFAULT_DIR / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**config, **config_changes}))
    return directory


@pytest.mark.parametrize("changes", [{"num_hidden_layers": 8}, {"hidden_size": 768}])
def test_weights_that_do_not_match_the_config_are_an_error(tmp_path: Path, changes):
    with pytest.raises(CheckpointError, match="weights do not match config.json"):
        load_encoder(str(_copy_of_default(tmp_path, **changes)))


def test_a_checkpoint_without_vocabulary_is_an_error(tmp_path: Path):
    directory = _copy_of_default(tmp_path)
    (directory / "vocab.txt").unlink()
    with pytest.raises(CheckpointError, match="lacks vocab.txt"):
        check_checkpoint(str(directory))


def test_check_reports_the_checkpoint_config():
    assert check_checkpoint(DEFAULT_CHECKPOINT).max_position_embeddings == 512


def test_a_checkpoint_at_a_uri_is_copied_to_a_local_directory():
    import uuid  # pylint: disable=import-outside-toplevel

    from tfx.dsl.io import fileio  # pylint: disable=import-outside-toplevel

    uri = f"ram://checkpoint-{uuid.uuid4().hex}"
    for name in ("config.json", "vocab.txt", "sub/extra.txt"):
        fileio.makedirs(os.path.dirname(f"{uri}/{name}"))
        with fileio.open(f"{uri}/{name}", "w") as stream:
            stream.write(name)
    local = resolve_checkpoint(uri)
    assert "://" not in local
    assert sorted(os.path.relpath(os.path.join(directory, name), local)
                  for directory, _, names in os.walk(local) for name in names) == [
        "config.json", "sub/extra.txt", "vocab.txt"]
    assert resolve_checkpoint(uri) == local  # copied once
