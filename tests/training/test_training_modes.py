"""bf16 and run_fn's MirroredStrategy really train (on CPU), and the export runs in float32."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import tensorflow as tf
import tf_keras as keras
from tfx import v1 as tfx
from transformers import BertConfig, TFBertModel

from components.model.classifier import build_classifier
from components.training import trainer
from components.training.hyperparameters import Hyperparameters
from components.training.trainer import compile_classifier, float32_copy, keras_policy

CONFIG = BertConfig(vocab_size=200, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=64)


def _batches():
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 200, size=(32, 10)).astype(np.int32)
    labels = (rng.random(32) < 0.5).astype(np.float32)
    ids[labels == 1, 1] = 3
    features = {"input_ids": ids, "attention_mask": np.ones_like(ids),
                "token_type_ids": np.zeros_like(ids)}
    return features, labels


def _encoder(model: keras.Model) -> TFBertModel:
    return next(layer for layer in model.layers if isinstance(layer, TFBertModel))


def _build() -> keras.Model:
    tf.random.set_seed(0)
    return build_classifier(TFBertModel(CONFIG))


def test_bf16_trains_with_a_float32_logit_and_exports_a_float32_copy():
    features, labels = _batches()
    with keras_policy("mixed_bfloat16"):
        model = _build()
        compile_classifier(model, Hyperparameters(learning_rate=1e-3, warmup_ratio=0.0), 20)
    assert _encoder(model).compute_dtype == "bfloat16"
    assert model.get_layer("classifier").compute_dtype == "float32"
    initial_loss = model.evaluate(features, labels, verbose=0)[0]
    model.fit(tf.data.Dataset.from_tensors((features, labels)).repeat(), steps_per_epoch=20,
              epochs=1, verbose=0)
    assert model.evaluate(features, labels, verbose=0)[0] < initial_loss
    assert model.output.dtype == tf.float32
    copy = float32_copy(model, _build)
    assert keras.mixed_precision.global_policy().name == "float32"
    assert _encoder(copy).compute_dtype == "float32"
    np.testing.assert_allclose(copy(features).numpy(), model(features).numpy(), atol=0.1)


def test_run_fn_builds_and_trains_the_model_under_the_mirrored_strategy(tmp_path: Path,
                                                                         monkeypatch):
    features, labels = _batches()
    built = []

    def build(*args, **kwargs) -> keras.Model:
        model = build_classifier(*args, **kwargs)
        built.append((tf.distribute.get_strategy(),
                      [weight.numpy().copy() for weight in model.trainable_weights]))
        return model

    exported = []
    monkeypatch.setattr(trainer, "build_classifier", build)
    monkeypatch.setattr(trainer, "resolve_checkpoint", lambda checkpoint: checkpoint)
    monkeypatch.setattr(trainer, "load_encoder", lambda checkpoint_dir: TFBertModel(CONFIG))
    monkeypatch.setattr(trainer, "tft", SimpleNamespace(TFTransformOutput=lambda path: None))
    monkeypatch.setattr(trainer, "inputs", SimpleNamespace(
        count_examples=lambda files: len(labels),
        training_batches=lambda *args, **kwargs: tf.data.Dataset.from_tensors((features, labels)).repeat()))
    monkeypatch.setattr(trainer, "export_serving_model",
                        lambda model, tft_output, export_dir: exported.append(model))
    hparams = Hyperparameters(distribution_strategy="mirrored", mixed_precision="none",
                              batch_size=4, learning_rate=1e-3, warmup_ratio=0.0)
    trainer_dir = tmp_path / "Trainer"
    trainer.run_fn(tfx.components.FnArgs(
        train_files=["unused"], transform_output="unused",
        model_run_dir=str(trainer_dir / "model_run" / "1"),
        serving_model_dir=str(trainer_dir / "model" / "1"),
        custom_config=hparams.to_custom_config()))

    [(strategy, before)] = built
    assert isinstance(strategy, tf.distribute.MirroredStrategy)  # built inside its scope
    [model] = exported
    assert model.distribute_strategy is strategy
    assert model.trainable_weights and all(
        isinstance(weight, tf.distribute.DistributedValues) for weight in model.trainable_weights)
    assert any(not np.array_equal(old, new.numpy())  # it trained
               for old, new in zip(before, model.trainable_weights))
