"""Training and serving throughput of this project's model on real QQP pairs.

    python benchmarks/throughput.py --tsv FILE [--model SAVED_MODEL_DIR] [--pairs N]
        [--checkpoint ID|DIR] [--precision auto|none|mixed_bfloat16|...] [--batch-size 32]

(a) Training: pairs/s of the Trainer's own model (`build_classifier` on the
    checkpoint), optimizer (`compile_classifier`), precision policy and bucketed
    input pipeline (`bucketed_batches`), on N pairs of FILE tokenized in-graph as
    Transform does, after an untimed warm-up pass (so no timed step traces a graph).
(b) Serving (with --model): pairs/s of the SavedModel's `predict_text` signature,
    raw text in (tokenization included), at batch 64 and at batch 1, in file order.
Prints a table, then as its last line one JSON object:
{"train_pairs_per_s", "serve_pairs_per_s_batch64", "serve_pairs_per_s_batch1",
 "precision", "cpu"}.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tensorflow as tf  # noqa: E402

from components.checkpoint import DEFAULT_CHECKPOINT, load_encoder, resolve_checkpoint  # noqa: E402
from components.hyperparameters import MIXED_PRECISION_POLICIES, Hyperparameters  # noqa: E402
from components.model import build_classifier  # noqa: E402
from components.precision import resolve_policy  # noqa: E402
from components.qqp_records import QqpPair, read_tsv_pairs  # noqa: E402
from components.tokenization import load_tokenizer_spec, tokenize_pairs  # noqa: E402
from components.trainer import compile_classifier, keras_policy  # noqa: E402
from components.training_inputs import bucketed_batches  # noqa: E402

WARMUP_STEPS = 10


def cpu_name() -> str:
    """The CPU model name from /proc/cpuinfo, with the number of logical CPUs."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as stream:
            name = next((line.split(":", 1)[1].strip() for line in stream
                         if line.startswith("model name")), "unknown")
    except OSError:
        name = "unknown"
    return f"{name} x{os.cpu_count()}"


def read_pairs(path: str, count: int) -> list[QqpPair]:
    """The first `count` pairs of a GLUE TSV file."""
    with open(path, "rb") as stream:
        pairs = list(read_tsv_pairs(stream, path, require_label=True))
    return pairs[:count]


def tokenized_dataset(pairs: list[QqpPair], checkpoint_dir: str, max_length: int
                      ) -> tf.data.Dataset:
    """(features, label) examples tokenized in-graph, as Transform feeds the Trainer."""
    spec = load_tokenizer_spec(checkpoint_dir)
    features = tokenize_pairs(tf.constant([pair.question1 for pair in pairs]),
                              tf.constant([pair.question2 for pair in pairs]), spec, max_length)
    labels = tf.constant([float(pair.is_duplicate) for pair in pairs])
    return tf.data.Dataset.from_tensor_slices((features, labels)).map(
        lambda example, label: ({name: tf.cast(value, tf.int32)
                                 for name, value in example.items()}, label))


def train_pairs_per_second(pairs: list[QqpPair], checkpoint: str, policy: str,
                           batch_size: int, max_length: int) -> float:
    """Pairs/s of Keras fit steps over the pairs, after an untimed pass over them."""
    checkpoint_dir = resolve_checkpoint(checkpoint)
    steps = max(1, math.ceil(len(pairs) / batch_size))
    hparams = Hyperparameters(checkpoint=checkpoint, batch_size=batch_size)
    with keras_policy(policy):
        model = build_classifier(load_encoder(checkpoint_dir))
        compile_classifier(model, hparams, WARMUP_STEPS + 2 * steps)
    batches = iter(bucketed_batches(tokenized_dataset(pairs, checkpoint_dir, max_length),
                                    batch_size, seed=0))
    # Warm-up: one untimed pass, so every length bucket's step is traced before timing.
    model.fit(batches, steps_per_epoch=WARMUP_STEPS + steps, epochs=1, verbose=0)
    started = time.perf_counter()
    model.fit(batches, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch_size / (time.perf_counter() - started)


def serve_pairs_per_second(model_dir: str, pairs: list[QqpPair], batch_size: int) -> float:
    """Pairs/s of predict_text on raw text, in file order, after one untimed batch."""
    import tensorflow_text  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import

    predict_text = tf.saved_model.load(model_dir).signatures["predict_text"]

    def run(batch: list[QqpPair]) -> None:
        predict_text(question1=tf.constant([pair.question1 for pair in batch]),
                     question2=tf.constant([pair.question2 for pair in batch]))

    run(pairs[:batch_size])
    started = time.perf_counter()
    for start in range(0, len(pairs), batch_size):
        run(pairs[start:start + batch_size])
    return len(pairs) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tsv", required=True, help="GLUE-format QQP TSV with labels")
    parser.add_argument("--model", help="SavedModel directory to measure predict_text on")
    parser.add_argument("--pairs", type=int, default=1024,
                        help="pairs to time (training and batch-64 serving) [default: 1024]")
    parser.add_argument("--batch1-pairs", type=int, default=200,
                        help="pairs to time one by one [default: 200]")
    parser.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT)
    parser.add_argument("--precision", default="auto", choices=MIXED_PRECISION_POLICIES)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()

    pairs = read_pairs(args.tsv, args.pairs)
    policy = resolve_policy(args.precision)
    result = {"train_pairs_per_s": None, "serve_pairs_per_s_batch64": None,
              "serve_pairs_per_s_batch1": None, "precision": policy, "cpu": cpu_name()}
    if not args.skip_training:
        result["train_pairs_per_s"] = train_pairs_per_second(
            pairs, args.checkpoint, policy, args.batch_size, args.max_seq_length)
    if args.model:
        result["serve_pairs_per_s_batch64"] = serve_pairs_per_second(args.model, pairs, 64)
        result["serve_pairs_per_s_batch1"] = serve_pairs_per_second(
            args.model, pairs[:args.batch1_pairs], 1)
    print(f"pairs: {len(pairs)} from {args.tsv}; cpu: {result['cpu']}")
    for key, title in (("train_pairs_per_s", f"training ({policy}, batch {args.batch_size})"),
                       ("serve_pairs_per_s_batch64", "serving predict_text, batch 64"),
                       ("serve_pairs_per_s_batch1", "serving predict_text, batch 1")):
        value = result[key]
        print(f"  {title:<40} {'-' if value is None else f'{value:8.1f} pairs/s'}")
    print(json.dumps({key: round(value, 2) if isinstance(value, float) else value
                      for key, value in result.items()}))


if __name__ == "__main__":
    main()
