"""Warm start: what a version's weights fit, when a candidate may start from them, and the
weights' round trip through a version directory."""

import json
from pathlib import Path

import numpy as np
import pytest
import tf_keras as keras

from components.training import warm_start
from components.training.warm_start_component import decide
from fixtures.tiny_bert import make_tiny_checkpoint


@pytest.fixture(scope="module")
def identity(tmp_path_factory) -> dict:
    checkpoint = make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny-bert")
    return warm_start.model_identity(str(checkpoint), 64, "mean", "given")


def _serve(base: Path, version: int, record: dict | None) -> Path:
    """A complete version directory, with warm-start weights recorded as `record`."""
    version_dir = base / str(version)
    (version_dir / warm_start.WARM_START_DIR).mkdir(parents=True)
    (version_dir / "saved_model.pb").write_bytes(b"")
    if record is not None:
        (version_dir / warm_start.WARM_START_DIR / warm_start.IDENTITY_FILE).write_text(
            json.dumps(record))
    return version_dir


def test_the_identity_names_what_the_weights_fit(identity: dict):
    assert identity["model_type"] == "bert" and identity["max_seq_length"] == 64
    assert identity["encoder"]["hidden_size"] == 32
    assert identity["head"] == {"pooling": "mean", "pair_order": "given"}
    assert len(identity["vocabulary_sha256"]) == 64


def test_a_compatible_version_trained_on_older_spans_seeds_the_candidate(tmp_path, identity):
    version_dir = _serve(tmp_path, 1, {**identity, "train_spans": [1]})
    decision, weights = decide(str(tmp_path), "served", identity, [1, 2])
    assert decision == {"from": "served", "version": 1, "served_spans": [1]}
    assert weights == str(version_dir / warm_start.WARM_START_DIR / warm_start.WEIGHTS_FILE)


@pytest.mark.parametrize("mode, served, window, why", [
    ("checkpoint", {"train_spans": [1]}, [1, 2], "--warm-start checkpoint"),
    ("served", None, [1, 2], "version 1 has no warm-start weights"),
    ("served", {"max_seq_length": 128, "train_spans": [1]}, [1, 2],
     "version 1 is not compatible (different max_seq_length)"),
    ("served", {"train_spans": [1, 2]}, [1, 2],
     "the window (spans [1, 2]) holds no span newer than those version 1 was trained on"),
    ("served", {"train_spans": [0]}, [0], "holds no span newer"),  # data not in spans
])
def test_otherwise_the_candidate_starts_from_the_checkpoint_and_says_why(
        tmp_path, identity, mode, served, window, why):
    _serve(tmp_path, 1, None if served is None else {**identity, **served})
    decision, weights = decide(str(tmp_path), mode, identity, window)
    assert decision["from"] == "checkpoint" and why in decision["why"], decision
    assert weights is None


def test_nothing_served_starts_from_the_checkpoint(tmp_path, identity):
    assert decide(str(tmp_path / "none"), "served", identity, [1])[0] == {
        "from": "checkpoint", "why": "no model is served yet"}


def test_weights_round_trip_through_a_version_directory(tmp_path: Path):
    def model() -> keras.Model:
        inputs = keras.Input([3])
        return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(4)(inputs)))

    trained, fresh = model(), model()
    warm_start.save_for_warm_start(trained, str(tmp_path / "export"), {"train_spans": [1]})
    served = tmp_path / "export" / warm_start.WARM_START_DIR
    assert json.loads((served / warm_start.IDENTITY_FILE).read_text()) == {"train_spans": [1]}
    assert warm_start.weights_sha256(fresh.get_weights()) != warm_start.weights_sha256(
        trained.get_weights())
    warm_start.load_served_weights(fresh, str(served))
    for mine, theirs in zip(fresh.get_weights(), trained.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    assert warm_start.weights_sha256(fresh.get_weights()) == warm_start.weights_sha256(
        trained.get_weights())


@pytest.mark.parametrize("warm_start_epochs, epochs, steps", [(0.5, 1, 375), (1.5, 1, 1125),
                                                               (2.0, 2, 750)])
def test_a_warm_start_trains_its_own_schedule(warm_start_epochs, epochs, steps):
    from components.training.hyperparameters import Hyperparameters  # pylint: disable=C0415
    from components.training.trainer import schedule  # pylint: disable=import-outside-toplevel

    hparams = Hyperparameters(epochs=3, learning_rate=5e-5, batch_size=32,
                              warm_start_epochs=warm_start_epochs, warm_start_learning_rate=2e-5)
    warm, steps_per_epoch = schedule(hparams, 24_000, warm=True)
    assert (warm.epochs, steps_per_epoch, warm.learning_rate) == (epochs, steps, 2e-5)
    assert schedule(hparams, 24_000, warm=False) == (hparams, 750)
