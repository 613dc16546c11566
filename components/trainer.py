"""The Trainer's `run_fn`: Keras (tf_keras) fine-tuning of a Hugging Face BERT checkpoint.

Hyperparameters come from the Trainer's `custom_config` (see
`components.hyperparameters.Hyperparameters`). With `fine_tune_encoder: false`
the same code fits only the head on a frozen encoder: the not-fine-tuned baseline.
"""

from __future__ import annotations

import math

import tensorflow_transform as tft
import tf_keras as keras
from absl import logging
from tfx import v1 as tfx
from transformers import create_optimizer

from components import datasets
from components.checkpoint import load_tf_bert, resolve_checkpoint
from components.export import export_serving_model
from components.hyperparameters import Hyperparameters
from components.model import build_classifier


def compile_classifier(model: keras.Model, hparams: Hyperparameters, total_steps: int) -> None:
    """AdamW with linear warm-up and linear decay to zero; loss on the logit."""
    optimizer, _ = create_optimizer(
        init_lr=hparams.learning_rate, num_train_steps=total_steps,
        num_warmup_steps=int(hparams.warmup_ratio * total_steps),
        weight_decay_rate=hparams.weight_decay)
    model.compile(optimizer=optimizer,
                  loss=keras.losses.BinaryCrossentropy(from_logits=True),
                  metrics=[keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0),
                           keras.metrics.AUC(name="auc", from_logits=True)])


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """Trains the classifier on the transformed train split and exports it."""
    hparams = Hyperparameters.from_custom_config(fn_args.custom_config)
    keras.utils.set_random_seed(hparams.seed)
    tft_output = tft.TFTransformOutput(fn_args.transform_output)

    train_examples = datasets.count_examples(fn_args.train_files)
    if hparams.max_train_examples:
        train_examples = min(train_examples, hparams.max_train_examples)
    steps_per_epoch = math.ceil(train_examples / hparams.batch_size)
    logging.info("Training on %d examples: %d epochs of %d steps, %s", train_examples,
                 hparams.epochs, steps_per_epoch, hparams)

    model = build_classifier(load_tf_bert(resolve_checkpoint(hparams.checkpoint)),
                             pooling=hparams.pooling,
                             fine_tune_encoder=hparams.fine_tune_encoder)
    compile_classifier(model, hparams, steps_per_epoch * hparams.epochs)
    model.fit(
        datasets.training_batches(fn_args.train_files, tft_output, hparams.batch_size,
                                  hparams.seed, hparams.max_train_examples),
        epochs=hparams.epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=datasets.evaluation_batches(fn_args.eval_files, tft_output,
                                                    hparams.eval_batch_size),
        callbacks=[keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir)],
        verbose=1)
    export_serving_model(model, tft_output, fn_args.serving_model_dir)
