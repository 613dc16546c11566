"""The Trainer's `run_fn`: Keras (tf_keras) fine-tuning of a Hugging Face encoder checkpoint.

Hyperparameters come from the Trainer's `custom_config` (see
`components.training.hyperparameters.Hyperparameters`). `mixed_precision: auto` trains
in bf16 where the hardware has it; the classifier logit and the loss stay
float32, and the exported model always computes in float32, so it serves on
any machine. `pair_order: both` trains on each pair in a random order and
exports the mean of both orders (`components.model.pair_order`).
`distribution_strategy` scales training beyond one device. No Keras
validation pass runs: TFMA evaluates the eval split.

A candidate whose WarmStart artifact (`fn_args.base_model`) says "served" starts
from the served version's weights and trains `warm_start_epochs` over the window
at `warm_start_learning_rate` (`components.training.warm_start`). Every candidate
writes its weights with the export, for the next one to start from.

Every completed epoch is backed up (`components.training.backup`) and the
backup is kept until the export has succeeded: a re-run after a kill resumes
after the last completed epoch, or, when all epochs were done, only exports.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import time
import shutil
import tempfile
from typing import TYPE_CHECKING, Callable, Iterator

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from absl import logging

from components.export.signatures import export_serving_model
from components.families.checkpoint import resolve_checkpoint
from components.families.encoders import load_encoder, new_encoder
from components.families.table import family_of
from components.kernels.training import fused_training_kernels
from components.model.classifier import build_classifier
from components.model.pair_order import order_averaged
from components.precision.keras_policy import resolve_policy
from components.training import inputs
from components.training.backup import epochs_done, remove_backups, restore_weights
from components.training.hyperparameters import Hyperparameters
from components.training.optimizer import create_adamw
from components.training.progress import TrainingEta
from components.training.warm_start import (load_served_weights, model_identity, read_decision,
                                            save_for_warm_start, weights_sha256)

if TYPE_CHECKING:  # importing TFX takes seconds; run_fn needs only its FnArgs' fields
    from tfx import v1 as tfx


def compile_classifier(model: keras.Model, hparams: Hyperparameters, total_steps: int) -> None:
    """AdamW with linear warm-up and linear decay to zero; loss on the logit."""
    optimizer = create_adamw(hparams.learning_rate, total_steps,
                             int(hparams.warmup_ratio * total_steps), hparams.weight_decay)
    model.compile(optimizer=optimizer,
                  loss=keras.losses.BinaryCrossentropy(from_logits=True),
                  metrics=[keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0),
                           keras.metrics.AUC(name="auc", from_logits=True)])


def make_strategy(name: str) -> tf.distribute.Strategy | None:
    """The tf.distribute strategy called `name`; None for "none" (TF's default strategy)."""
    if name == "mirrored":  # every GPU of this machine (or its CPU)
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker_mirrored":  # the workers listed in TF_CONFIG (else this one)
        return tf.distribute.MultiWorkerMirroredStrategy()
    return None


@contextlib.contextmanager
def keras_policy(policy: str) -> Iterator[None]:
    """Sets the global Keras mixed-precision policy, restoring the previous one after."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _is_chief(strategy: tf.distribute.Strategy | None) -> bool:
    """Only the chief of a multi-worker job keeps its model and logs."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict())


def float32_copy(model: keras.Model, build: Callable[[], keras.Model]) -> keras.Model:
    """The same model computing in float32 (weights are float32 under mixed precision too)."""
    with keras_policy("float32"):
        copy = build()
    copy.set_weights(model.get_weights())
    return copy


def resume_dir(fn_args: tfx.components.FnArgs) -> str:
    """Where epochs are backed up, the same for every execution with the same inputs.

    TFX gives each execution new output directories, so the backup lives next to
    them (`<pipeline root>/Trainer/resume/<key>`), keyed by the training files
    and the whole `custom_config`: a re-run after a kill resumes from the last
    completed epoch only when nothing it trains on changed.
    """
    key = hashlib.sha256(json.dumps({"train": sorted(fn_args.train_files),
                                     "config": fn_args.custom_config,
                                     "start": fn_args.base_model},
                                    sort_keys=True, default=str).encode()).hexdigest()[:16]
    trainer_dir = os.path.dirname(os.path.dirname(fn_args.model_run_dir.rstrip("/")))
    return os.path.join(trainer_dir, "resume", key)


def schedule(hparams: Hyperparameters, train_examples: int, warm: bool
             ) -> tuple[Hyperparameters, int]:
    """The hyperparameters to train with and the steps per epoch: a warm start trains
    `warm_start_epochs` (a fraction is one shorter epoch) at its own learning rate."""
    if not warm:
        return hparams, math.ceil(train_examples / hparams.batch_size)
    epochs = max(1, math.floor(hparams.warm_start_epochs))
    steps = math.ceil(train_examples * hparams.warm_start_epochs / epochs / hparams.batch_size)
    return dataclasses.replace(hparams, epochs=epochs,
                               learning_rate=hparams.warm_start_learning_rate), steps


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """Fine-tunes the classifier on the transformed train split and exports it."""
    hparams = Hyperparameters.from_custom_config(fn_args.custom_config)
    keras.utils.set_random_seed(hparams.seed)
    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    checkpoint_dir = resolve_checkpoint(hparams.checkpoint)
    policy = resolve_policy(hparams.mixed_precision)
    start = read_decision(fn_args.base_model)
    warm = start.get("from") == "served"

    train_examples = inputs.count_examples(fn_args.train_files)
    if hparams.max_train_examples:
        train_examples = min(train_examples, hparams.max_train_examples)
    hparams, steps_per_epoch = schedule(hparams, train_examples, warm)
    logging.info("Training on %d examples: %d epochs of %d steps, precision %s, %s",
                 train_examples, hparams.epochs, steps_per_epoch, policy, hparams)

    strategy = make_strategy(hparams.distribution_strategy)
    both_orders = hparams.pair_order == "both"
    with keras_policy(policy), (strategy.scope() if strategy else contextlib.nullcontext()):
        model = build_classifier(load_encoder(checkpoint_dir), pooling=hparams.pooling,
                                 random_pair_order=both_orders)
        compile_classifier(model, hparams, steps_per_epoch * hparams.epochs)
        if warm:
            load_served_weights(model, fn_args.base_model)
            logging.info("Warm start: the weights of served version %d", start["version"])
    start_sha256 = weights_sha256(model.get_weights())
    # Every worker of a multi-worker job trains and saves (saving is collective); only the
    # chief writes the Trainer's outputs, the other workers write to a scratch directory.
    scratch = None if _is_chief(strategy) else tempfile.mkdtemp(prefix="worker-")
    backup_dir = resume_dir(fn_args)
    done = epochs_done(backup_dir)
    if done >= hparams.epochs:
        logging.warning("All %d epochs were already trained (backup in %s, left by an "
                        "interrupted run): exporting without retraining", hparams.epochs,
                        backup_dir)
        restore_weights(model, backup_dir)
    else:
        if done:
            logging.warning("Resuming at epoch %d/%d: %d already trained (backup in %s, left "
                            "by an interrupted run)", done + 1, hparams.epochs, done, backup_dir)
        started = time.monotonic()
        with fused_training_kernels(model):
            model.fit(
                inputs.training_batches(fn_args.train_files, tft_output,
                                        hparams.batch_size, hparams.seed,
                                        hparams.max_train_examples,
                                        # spans come one after another: shuffle them all
                                        shuffle_buffer=(train_examples if len(
                                            start.get("train_spans", [])) > 1 else None)),
                epochs=hparams.epochs,
                steps_per_epoch=steps_per_epoch,
                callbacks=[keras.callbacks.TensorBoard(  # the loss about 20 times an epoch
                               log_dir=scratch or fn_args.model_run_dir,
                               update_freq=max(1, steps_per_epoch // 20)),
                           # Kept until the export has succeeded, then removed below.
                           keras.callbacks.BackupAndRestore(backup_dir, delete_checkpoint=False),
                           TrainingEta(hparams.epochs)],
                verbose=1)
        logging.info("Trained in %.1f s", time.monotonic() - started)
    started = time.monotonic()
    if policy != "float32":
        model = float32_copy(model, lambda: build_classifier(
            new_encoder(checkpoint_dir), pooling=hparams.pooling, random_pair_order=both_orders))
    classifier = model
    if both_orders:
        model = order_averaged(model, family_of(checkpoint_dir).pair_separators)
    logging.info("Float32 copy in %.1f s", time.monotonic() - started)
    export_serving_model(model, tft_output, scratch or fn_args.serving_model_dir)
    logging.info("Exported in %.1f s after training", time.monotonic() - started)
    if scratch:
        shutil.rmtree(scratch, ignore_errors=True)
        return
    save_for_warm_start(classifier, fn_args.serving_model_dir, {
        **model_identity(hparams.checkpoint, hparams.max_seq_length, hparams.pooling,
                         hparams.pair_order),
        "train_spans": start.get("train_spans", []),
        "started_from": {key: start[key] for key in ("from", "version") if key in start},
        "start_weights_sha256": start_sha256,
        "weights_sha256": weights_sha256(classifier.get_weights())})
    remove_backups(backup_dir)  # exported: nothing left to resume; bound older backups
