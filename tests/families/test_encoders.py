"""Every family's encoder: strict loading, the two models on top, mixed precision, padding."""

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from safetensors.numpy import load_file, save_file

from components.families.check import check_checkpoint
from components.families.checkpoint import CheckpointError
from components.families.encoders import load_encoder, new_encoder, usable_positions
from components.families.table import FAMILIES, UnsupportedModelError, with_pooler
from components.model.classifier import (build_classifier, build_cosine_scorer, encode,
                                         takes_token_types)
from components.precision.keras_policy import resolve_policy
from fixtures.families.weights import (pytorch_state_dict, tiny_model, write_tiny_encoder,
                                       write_tiny_encoder_safetensors)

VOCAB_SIZE = 1000
MODEL_TYPES = tuple(FAMILIES)


def _pad_id(model_type: str) -> int:
    return 1 if model_type in ("roberta", "mpnet") else 0


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """A tiny tf_model.h5 checkpoint of every family."""
    root = tmp_path_factory.mktemp("encoders")
    return {model_type: write_tiny_encoder(root / model_type, model_type, VOCAB_SIZE,
                                           _pad_id(model_type))
            for model_type in MODEL_TYPES}


@pytest.fixture
def mixed_precision():
    """The trainer's default policy (`auto`: mixed_bfloat16 where bf16 is native)."""
    previous = keras.mixed_precision.global_policy()
    policy = resolve_policy("auto")
    keras.mixed_precision.set_global_policy(policy)
    yield policy
    keras.mixed_precision.set_global_policy(previous)


def _quickly(build, model_type: str):
    """`build` without AutoGraph converting the encoder's call for the Keras graph: that
    conversion (what a run does) takes 5-20 s per family; the slow test below keeps it.
    DeBERTa-v2's call needs it (Python conditions on tensors), so it keeps it here too."""
    if model_type == "deberta-v2":
        return build
    return tf.autograph.experimental.do_not_convert(build)


def _pair_batch(pad_id: int, batch: int = 6, length: int = 14, seed: int = 0) -> dict:
    """Random pairs padded to `length` (ids 3.. so no real token is a special one)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, length + 1, batch)
    lengths[0] = length  # one unpadded row
    mask = (np.arange(length)[np.newaxis] < lengths[:, np.newaxis]).astype(np.int32)
    ids = np.where(mask == 1, rng.integers(3, VOCAB_SIZE, (batch, length)), pad_id)
    second = (np.arange(length)[np.newaxis] >= (lengths // 2)[:, np.newaxis]) & (mask == 1)
    return {"input_ids": ids.astype(np.int32), "attention_mask": mask,
            "token_type_ids": second.astype(np.int32)}


def _weights_by_name(model) -> dict[str, np.ndarray]:
    """The weights by name without the model's own (tf_bert_model, tf_bert_model_1, ...)."""
    return {weight.name.split("/", 1)[1]: weight.numpy() for weight in model.weights}


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_every_weight_loads_from_tf_model_h5(checkpoints, model_type):
    encoder = load_encoder(str(checkpoints[model_type]))
    assert type(encoder).__name__ == FAMILIES[model_type].encoder_class
    expected = _weights_by_name(tiny_model(model_type, VOCAB_SIZE, _pad_id(model_type)))
    loaded = _weights_by_name(encoder)
    assert loaded.keys() == expected.keys()
    for name, value in expected.items():
        np.testing.assert_array_equal(loaded[name], value, err_msg=name)
    fresh = new_encoder(str(checkpoints[model_type]))
    assert type(fresh) is type(encoder)
    settings = [{key: value for key, value in model.config.to_dict().items()
                 if key != "_name_or_path"} for model in (fresh, encoder)]
    assert settings[0] == settings[1]


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_every_weight_loads_from_pytorch_safetensors(tmp_path, model_type):
    directory = write_tiny_encoder_safetensors(tmp_path, model_type, VOCAB_SIZE,
                                               _pad_id(model_type))
    assert not (directory / "tf_model.h5").exists()
    encoder = load_encoder(str(directory))
    expected = _weights_by_name(tiny_model(model_type, VOCAB_SIZE, _pad_id(model_type)))
    for name, value in _weights_by_name(encoder).items():
        np.testing.assert_array_equal(value, expected[name], err_msg=name)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_a_missing_or_misshapen_h5_weight_is_named(tmp_path, checkpoints, model_type):
    with h5py.File(checkpoints[model_type] / "tf_model.h5", "r") as h5:
        shapes = {}
        h5.visititems(lambda name, item: shapes.update({name: item.shape})
                      if isinstance(item, h5py.Dataset) else None)
    # A feed-forward kernel (hidden 32 x intermediate 64: the same size transposed).
    kernel = next(name for name, shape in shapes.items()
                  if name.endswith("kernel:0") and shape == (32, 64))
    named = kernel.split("/", 2)[2]  # without the layer and model names
    for change, problem in (("missing", "missing_keys"), ("transposed", "mismatched_keys")):
        directory = tmp_path / change
        directory.mkdir()
        (directory / "config.json").symlink_to(checkpoints[model_type] / "config.json")
        shutil.copy(checkpoints[model_type] / "tf_model.h5", directory / "tf_model.h5")
        with h5py.File(directory / "tf_model.h5", "r+") as h5:
            value = h5[kernel][...]
            del h5[kernel]
            if change == "missing":
                layer = h5[kernel.split("/")[0]]
                layer.attrs["weight_names"] = [name for name in layer.attrs["weight_names"]
                                               if name != kernel.split("/", 1)[1]]
            else:
                h5[kernel] = value.T.copy()
        with pytest.raises(CheckpointError, match=problem) as error:
            load_encoder(str(directory))
        assert named in str(error.value), (change, str(error.value))


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_a_missing_or_misshapen_safetensors_weight_is_named(tmp_path, model_type):
    directory = write_tiny_encoder_safetensors(tmp_path, model_type, VOCAB_SIZE,
                                               _pad_id(model_type))
    state = load_file(directory / "model.safetensors")
    feed_forward = next(name for name in state if name.endswith(".weight")
                        and state[name].shape == (64, 32))
    for change, problem in (("missing", "missing_keys"), ("transposed", "mismatched_keys"),
                            ("short", "weights do not match config.json")):
        changed = dict(state)
        if change == "missing":
            del changed[feed_forward]
        elif change == "transposed":
            changed[feed_forward] = state[feed_forward].T.copy()
        else:
            changed[feed_forward] = state[feed_forward][:10]
        changed["lm_head.dense.weight"] = np.zeros((2, 2), np.float32)  # unexpected: ignored
        save_file(changed, str(directory / "model.safetensors"), metadata={"format": "pt"})
        with pytest.raises(CheckpointError, match=problem) as error:
            load_encoder(str(directory))
        assert feed_forward in str(error.value), (change, str(error.value))


def test_an_unsupported_model_type_names_the_supported_ones(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    for load in (load_encoder, new_encoder, check_checkpoint):
        with pytest.raises(UnsupportedModelError, match="'gpt2' is not supported; supported: "
                           + ", ".join(MODEL_TYPES)):
            load(str(tmp_path))


@pytest.mark.parametrize("model_type,files,missing", [
    ("bert", [], "vocab.txt"),
    ("bert", ["vocab.txt"], None),
    ("electra", ["vocab.txt"], None),
    ("albert", ["vocab.txt"], "spiece.model or spm.model or tokenizer.json"),
    ("albert", ["spiece.model"], None),
    ("deberta-v2", ["spm.model"], None),
    ("deberta-v2", ["tokenizer.json"], None),
    ("roberta", ["vocab.json"], "merges.txt or tokenizer.json"),
    ("roberta", ["vocab.json", "merges.txt"], None),
    ("roberta", ["tokenizer.json"], None),
    ("mpnet", [], "vocab.txt"),
    ("mpnet", ["vocab.txt"], None),
])
def test_check_requires_the_tokenizer_files_of_the_family(tmp_path, checkpoints, model_type,
                                                          files, missing):
    for name in ("config.json", "tf_model.h5"):
        (tmp_path / name).symlink_to(checkpoints[model_type] / name)
    for name in files:
        (tmp_path / name).write_text("")
    if missing:
        with pytest.raises(CheckpointError, match=f"lacks {missing}: a {model_type} checkpoint"):
            check_checkpoint(str(tmp_path))
    else:
        config = check_checkpoint(str(tmp_path))
        assert config.model_type == model_type
        assert usable_positions(config) == 512  # RoBERTa, MPNet: 514 - padding_idx 1 - 1


@pytest.mark.slow  # test_families.py trains and scores every family in make test
@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_the_classifier_trains_under_mixed_precision(checkpoints, mixed_precision, model_type):
    family = FAMILIES[model_type]
    features = _pair_batch(_pad_id(model_type))
    labels = np.array([0, 1, 1, 0, 1, 0], np.float32)
    encoder = load_encoder(str(checkpoints[model_type]))
    assert encoder.compute_dtype == keras.mixed_precision.Policy(mixed_precision).compute_dtype
    if not family.has_pooler:
        with pytest.raises(ValueError, match=f"pooling 'pooler' needs an encoder with a pooler "
                           f"\\({', '.join(with_pooler())}\\); {model_type} has none"):
            _quickly(build_classifier, model_type)(encoder, pooling="pooler")
    for pooling in ("mean", "cls", "pooler") if family.has_pooler else ("mean", "cls"):
        model = _quickly(build_classifier, model_type)(encoder, pooling=pooling, dropout=0.0)
        logits = model(features, training=False)
        assert logits.dtype == tf.float32 and logits.shape == (6,)
        assert np.all(np.isfinite(logits.numpy())), (pooling, logits)
        if pooling != "mean":  # tests/families/test_families.py trains the default pooling too
            continue
        before = [weight.numpy() for weight in model.trainable_weights]
        # Eagerly: tracing a transformers model for a compiled step takes tens of seconds.
        model.compile(optimizer=keras.optimizers.Adam(1e-3),
                      loss=keras.losses.BinaryCrossentropy(from_logits=True), run_eagerly=True)
        losses = model.fit(features, labels, epochs=2, batch_size=6, verbose=0).history["loss"]
        assert np.all(np.isfinite(losses)), (pooling, losses)
        after = model.trainable_weights
        assert all(np.all(np.isfinite(weight.numpy())) for weight in after)
        assert not np.array_equal(before[0], after[0].numpy())  # the encoder's embeddings


@pytest.mark.slow  # test_families.py trains and scores every family in make test
@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_token_types_and_the_cosine_scorer(checkpoints, model_type):
    encoder = load_encoder(str(checkpoints[model_type]))
    pairs = _pair_batch(_pad_id(model_type))
    states = [encode(encoder, **features).last_hidden_state.numpy() for features in (
        pairs, dict(pairs, token_type_ids=np.zeros_like(pairs["token_type_ids"])))]
    # Token types reach only the families with token type embeddings (not RoBERTa: one
    # type; not DeBERTa-v3: none; not DistilBERT nor MPNet, whose call does not take them).
    changed = not np.allclose(states[0], states[1], atol=1e-6)
    assert takes_token_types(encoder) == changed == (model_type in ("bert", "electra", "albert"))

    scorer, cosine = _quickly(build_cosine_scorer, model_type)(encoder)
    assert not encoder.trainable
    first = _pair_batch(_pad_id(model_type), seed=1)
    second = _pair_batch(_pad_id(model_type), length=9, seed=2)
    features = {"question1_input_ids": first["input_ids"],
                "question1_attention_mask": first["attention_mask"],
                "question2_input_ids": second["input_ids"],
                "question2_attention_mask": second["attention_mask"]}
    values = cosine(features).numpy()
    assert values.shape == (6,) and np.all(np.abs(values) <= 1 + 1e-5)
    assert np.all(np.isfinite(scorer(features).numpy()))
    same = dict(features, question2_input_ids=first["input_ids"],
                question2_attention_mask=first["attention_mask"])
    np.testing.assert_allclose(cosine(same).numpy(), 1.0, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_the_compiled_training_step_works_under_mixed_precision(checkpoints, mixed_precision,
                                                                model_type):
    """As the trainer builds and fits: AutoGraph-converted and compiled (slow: tracing)."""
    model = build_classifier(load_encoder(str(checkpoints[model_type])))
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True))
    losses = model.fit(_pair_batch(_pad_id(model_type)), np.array([0, 1, 1, 0, 1, 0], np.float32),
                       epochs=2, batch_size=3, verbose=0).history["loss"]
    assert np.all(np.isfinite(losses)), losses


def test_roberta_states_do_not_depend_on_the_padding_id(checkpoints):
    """The serving code pads ragged features with 0, RoBERTa's tokenizer with 1 (padding_idx):
    the real tokens' states are the same (position ids count only up to each token)."""
    encoder = load_encoder(str(checkpoints["roberta"]))
    padded_with_one = _pair_batch(pad_id=1, length=20)
    mask = padded_with_one["attention_mask"]
    padded_with_zero = dict(padded_with_one,
                            input_ids=np.where(mask == 1, padded_with_one["input_ids"], 0))
    states = [encode(encoder, **features).last_hidden_state.numpy()
              for features in (padded_with_one, padded_with_zero)]
    real = mask.astype(bool)
    np.testing.assert_allclose(states[0][real], states[1][real], atol=1e-5)
    # And both equal each row encoded alone, unpadded.
    for row in range(len(mask)):
        length = int(mask[row].sum())
        alone = encode(encoder, padded_with_one["input_ids"][row:row + 1, :length],
                       mask[row:row + 1, :length]).last_hidden_state.numpy()[0]
        np.testing.assert_allclose(states[1][row, :length], alone, atol=1e-5)


def test_the_pytorch_names_are_those_of_a_base_model():
    names = pytorch_state_dict(tiny_model("roberta", VOCAB_SIZE, 1))
    assert "embeddings.word_embeddings.weight" in names
    assert "encoder.layer.0.attention.self.query.weight" in names
    assert "pooler.dense.weight" in names
