"""Where one training step's time goes, on real QQP pairs (the Trainer's model and optimizer).

    python benchmarks/training_profile.py --tsv FILE [--pairs 1024] [--precision auto]

Times, per step of batch 32 and median over the batches after a warm-up pass:
- input: the bucketed tf.data pipeline alone (`bucketed_batches`);
- forward: the model and the loss, training=True (dropout on);
- forward + backward: the gradients too;
- forward + backward without dropout: the same, every dropout rate 0;
- optimizer: AdamW's update of every weight from given gradients;
- train step: forward, backward and update in one tf.function;
- Keras fit: `model.fit`'s own step (what the Trainer runs), per step.
Also the matrix-product FLOPs of the forward pass from the batch shapes, and the
rate they imply for the forward + backward step (3x the forward FLOPs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from benchmarks.throughput import bf16_flags, cpu_name, first_pairs, tokenized_dataset  # noqa: E402
from components.families.checkpoint import DEFAULT_CHECKPOINT, resolve_checkpoint  # noqa: E402
from components.families.encoders import load_encoder  # noqa: E402
from components.kernels.training import fused_training_kernels  # noqa: E402
from components.model.classifier import build_classifier  # noqa: E402
from components.precision.choices import MIXED_PRECISION_POLICIES  # noqa: E402
from components.precision.keras_policy import resolve_policy  # noqa: E402
from components.training.hyperparameters import Hyperparameters  # noqa: E402
from components.training.inputs import bucketed_batches  # noqa: E402
from components.training.trainer import compile_classifier, keras_policy  # noqa: E402

Batch = tuple[dict[str, tf.Tensor], tf.Tensor]


def median_ms(batches: list[Batch], step: Callable[[Batch], object]) -> float:
    """Median milliseconds of `step` over the batches, after one untimed pass."""
    for batch in batches:
        step(batch)
    times = []
    for batch in batches:
        started = time.perf_counter()
        result = step(batch)
        if isinstance(result, (tf.Tensor, list, tuple)):
            tf.nest.map_structure(lambda value: value.numpy() if hasattr(value, "numpy")
                                  else value, result)
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def forward_flops(batch: Batch, config) -> float:
    """Matrix-product FLOPs of the encoder's forward pass on one padded batch."""
    size, length = batch[0]["input_ids"].shape
    hidden, inner, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    tokens = size * length
    per_layer = 2 * tokens * (4 * hidden * hidden + 2 * hidden * inner) \
        + 2 * 2 * size * length * length * hidden  # QK^T and attention x V
    return layers * per_layer


def without_dropout(model: keras.Model) -> None:
    """Sets every dropout rate of the model (encoder included) to 0."""
    for layer in model.submodules:
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tsv", required=True)
    parser.add_argument("--pairs", type=int, default=1024)
    parser.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT)
    parser.add_argument("--precision", default="auto", choices=MIXED_PRECISION_POLICIES)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    checkpoint_dir = resolve_checkpoint(args.checkpoint)
    pairs = first_pairs(args.tsv, args.pairs)
    steps = len(pairs) // args.batch_size
    dataset = bucketed_batches(tokenized_dataset(pairs, checkpoint_dir, 128),
                               args.batch_size, seed=0)
    iterator = iter(dataset)
    batches = [next(iterator) for _ in range(steps)]
    policy = resolve_policy(args.precision)
    with keras_policy(policy):
        model = build_classifier(load_encoder(checkpoint_dir))
        compile_classifier(model, Hyperparameters(batch_size=args.batch_size), 10 * steps)
    loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)
    optimizer = model.optimizer
    signature = [({name: tf.TensorSpec([None, None], tf.int32) for name in batches[0][0]},
                  tf.TensorSpec([None], tf.float32))]

    @tf.function(input_signature=signature)
    def forward(batch):
        features, labels = batch
        return loss_fn(labels, model(features, training=True))

    @tf.function(input_signature=signature)
    def gradients(batch):
        features, labels = batch
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(features, training=True))
        return tape.gradient(loss, model.trainable_variables)

    @tf.function(input_signature=signature)
    def train_step(batch):
        optimizer.apply_gradients(zip(gradients(batch), model.trainable_variables))

    @tf.function
    def apply(fixed_gradients) -> None:
        optimizer.apply_gradients(zip(fixed_gradients, model.trainable_variables))

    def keras_fit_ms() -> float:
        model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)  # warm-up
        started = time.perf_counter()
        model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
        return 1000 * (time.perf_counter() - started) / steps

    with fused_training_kernels(model):  # every step traced as the Trainer's is
        fixed_gradients = gradients(batches[0])
        figures = {
            "input": median_ms(batches, lambda _: next(iterator)),
            "forward": median_ms(batches, forward),
            "forward_backward": median_ms(batches, gradients),
            "optimizer": median_ms(batches[:10], lambda _: apply(fixed_gradients)),
            "train_step": median_ms(batches, train_step),
            "keras_fit": keras_fit_ms(),
        }
        without_dropout(model)
        gradients_no_dropout = tf.function(gradients.python_function, input_signature=signature)
        figures["forward_backward_no_dropout"] = median_ms(batches, gradients_no_dropout)
    encoder_config = next(layer.config for layer in model.layers
                          if hasattr(getattr(layer, "config", None), "hidden_size"))
    flops = statistics.median(forward_flops(batch, encoder_config) for batch in batches)
    lengths = [int(batch[0]["input_ids"].shape[1]) for batch in batches]
    print(f"cpu: {cpu_name()}; bf16 flags: {', '.join(bf16_flags()) or 'none'}; "
          f"precision {policy}; {steps} batches of {args.batch_size}, padded length median "
          f"{statistics.median(lengths)}")
    for name, value in figures.items():
        print(f"  {name:<30}{value:9.1f} ms")
    rate = 3 * flops / (figures["forward_backward"] / 1000) / 1e9
    print(f"  matmul FLOPs per forward pass (median batch): {flops / 1e9:.1f} G; "
          f"forward + backward at {rate:.0f} GFLOP/s")
    print(json.dumps({**{name: round(value, 2) for name, value in figures.items()},
                      "forward_gflops": round(flops / 1e9, 2), "precision": policy,
                      "cpu": cpu_name(), "bf16_flags": bf16_flags()}))


if __name__ == "__main__":
    main()
