"""The not-fine-tuned model's `run_fn`: the pretrained encoder used as its authors intended.

Each question is encoded alone by the checkpoint, mean-pooled and
L2-normalised; the score is the cosine of the two embeddings. Nothing of the
encoder is trained. The only fitted parameters map cosine to probability
(`components.training.calibration`), fitted on the first `max_train_examples` training
pairs. It exports with the same signatures as the fine-tuned model, so TFMA,
`qqp-tfx evaluate` and `qqp-tfx predict` treat both alike.
"""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from tfx import v1 as tfx

from components.export.signatures import export_serving_model
from components.families.checkpoint import CheckpointError, resolve_checkpoint
from components.families.encoders import load_encoder
from components.features import QUESTION_FEATURES
from components.model.classifier import COSINE_TO_LOGIT, build_cosine_scorer
from components.precision.scoring import default_precision, scoring_precision
from components.training import inputs
from components.training.calibration import (CosineCalibration, NonFiniteScoresError,
                                             fit_cosine_calibration)
from components.training.hyperparameters import Hyperparameters

CALIBRATION_FILE = "calibration.json"


def calibrate(cosines: np.ndarray, labels: np.ndarray, checkpoint: str) -> CosineCalibration:
    """The cosine -> probability map of `checkpoint`'s cosines; CheckpointError if any is NaN."""
    try:
        return fit_cosine_calibration(cosines, labels)
    except NonFiniteScoresError as error:
        raise CheckpointError(
            f"{checkpoint}: the pretrained encoder gives NaN or infinite cosines on the "
            f"training pairs ({error}); its weights are broken, so there is no not-fine-tuned "
            "model to compare with") from error


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """Fits the cosine -> probability map on training pairs and exports the scorer."""
    hparams = Hyperparameters.from_custom_config(fn_args.custom_config)
    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    scorer, cosine = build_cosine_scorer(load_encoder(resolve_checkpoint(hparams.checkpoint)))

    pairs = inputs.labeled_examples(fn_args.train_files, tft_output, QUESTION_FEATURES)
    if hparams.max_train_examples:
        pairs = pairs.take(hparams.max_train_examples)
    score = tf.function(lambda features: cosine(features, training=False), input_signature=[
        {name: tf.TensorSpec([None, None], tf.int32) for name in QUESTION_FEATURES}])
    cosines, labels = [], []
    with scoring_precision(default_precision()):
        for features, label in inputs.length_bucketed(pairs, hparams.eval_batch_size):
            cosines.append(score(features).numpy())
            labels.append(label.numpy())
    cosines, labels = np.concatenate(cosines), np.concatenate(labels)
    calibration = calibrate(cosines, labels, hparams.checkpoint)
    if not calibration.converged:
        logging.warning("The cosine -> probability slope did not converge (the cosine barely "
                        "separates the classes on these pairs); using slope %.4g",
                        calibration.slope)
    kernel, bias = calibration.kernel_and_bias
    scorer.get_layer(COSINE_TO_LOGIT).set_weights([np.array([[kernel]], np.float32),
                                                   np.array([bias], np.float32)])
    summary = {"pairs": int(len(labels)), "threshold": calibration.threshold,
               "slope": calibration.slope, "train_accuracy": calibration.train_accuracy,
               "converged": calibration.converged}
    logging.info("Not-fine-tuned model: cosine >= %.4f means duplicate (%s)",
                 calibration.threshold, summary)
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, CALIBRATION_FILE), "w") as stream:
        stream.write(json.dumps(summary, indent=2))
    export_serving_model(scorer, tft_output, fn_args.serving_model_dir)
