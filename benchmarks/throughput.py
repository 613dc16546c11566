"""Training and serving throughput of this project's model on real QQP pairs, beside the peer's.

    python benchmarks/throughput.py --tsv FILE [--model SAVED_MODEL_DIR] [--pairs N]
        [--checkpoint ID|DIR] [--precision auto|none|mixed_bfloat16|...] [--batch-size 32]
        [--peer-python /path/to/venv/bin/python]

(a) Training: pairs/s of the Trainer's own model (`build_classifier` on the
    checkpoint), optimizer (`compile_classifier`), precision policy and bucketed
    input pipeline (`bucketed_batches`), on N pairs of FILE tokenized in-graph as
    Transform does, after an untimed warm-up pass (so no timed step traces a graph).
(b) Serving (with --model): pairs/s of the SavedModel's `predict_text` signature,
    raw text in (tokenization included), at batch 64 and at batch 1, in file order,
    in float32 and at the scoring precision `qqp-tfx predict` uses (`auto`: grappler's
    bf16 rewrite where the CPU has avx512_bf16 or AMX, components.precision.scoring).
(c) With --peer-python: benchmarks/peer_pytorch.py run by that interpreter (a
    throwaway venv with torch and transformers 5) on the same pairs and checkpoint,
    float32 and bf16 autocast; ratios are ours over the faster of the two.
Prints a table, then as its last line one JSON object with every figure, the
CPU model and its bf16/AMX flags.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from components.data.records import QqpPair, read_pairs  # noqa: E402
from components.families.checkpoint import DEFAULT_CHECKPOINT, resolve_checkpoint  # noqa: E402
from components.families.encoders import load_encoder  # noqa: E402
from components.kernels.training import fused_training_kernels  # noqa: E402
from components.model.classifier import build_classifier  # noqa: E402
from components.precision.choices import MIXED_PRECISION_POLICIES  # noqa: E402
from components.precision.keras_policy import cpu_flags, resolve_policy  # noqa: E402
from components.precision.scoring import scoring_precision  # noqa: E402
from components.text.tokenization import load_tokenizer  # noqa: E402
from components.training.hyperparameters import Hyperparameters  # noqa: E402
from components.training.inputs import bucketed_batches  # noqa: E402
from components.training.trainer import compile_classifier, keras_policy  # noqa: E402

PEER_SCRIPT = Path(__file__).resolve().parent / "peer_pytorch.py"
BF16_FLAGS = ("avx512_bf16", "amx_bf16", "amx_tile")


def cpu_name() -> str:
    """The CPU model name from /proc/cpuinfo, with the number of logical CPUs."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as stream:
            name = next((line.split(":", 1)[1].strip() for line in stream
                         if line.startswith("model name")), "unknown")
    except OSError:
        name = "unknown"
    return f"{name} x{os.cpu_count()}"


def bf16_flags() -> list[str]:
    """The CPU's bf16 and AMX feature flags (none: no native bf16)."""
    return sorted(set(BF16_FLAGS) & cpu_flags())


def first_pairs(path: str, count: int) -> list[QqpPair]:
    """The first `count` pairs of a QQP file."""
    return list(itertools.islice(read_pairs(path), count))


def tokenized_dataset(pairs: list[QqpPair], checkpoint_dir: str, max_length: int
                      ) -> tf.data.Dataset:
    """(features, label) examples tokenized in-graph, as Transform feeds the Trainer."""
    features = load_tokenizer(checkpoint_dir).encode_pairs(
        tf.constant([pair.question1 for pair in pairs]),
        tf.constant([pair.question2 for pair in pairs]), max_length)
    labels = tf.constant([float(pair.is_duplicate) for pair in pairs])
    return tf.data.Dataset.from_tensor_slices((features, labels)).map(
        lambda example, label: ({name: tf.cast(value, tf.int32)
                                 for name, value in example.items()}, label))


class StepTimer(keras.callbacks.Callback):
    """Seconds from the start of step `first` to the end of training."""

    def __init__(self, first: int):
        super().__init__()
        self.first, self.started, self.seconds = first, 0.0, 0.0

    def on_train_batch_begin(self, batch: int, logs=None) -> None:
        if batch == self.first:
            self.started = time.perf_counter()

    def on_train_end(self, logs=None) -> None:
        self.seconds = time.perf_counter() - self.started


def train_pairs_per_second(pairs: list[QqpPair], checkpoint: str, policy: str,
                           batch_size: int, max_length: int) -> float:
    """Pairs/s of Keras fit steps, timed after two untimed passes over the pairs.

    One `fit`, as the Trainer runs it: each `fit` fills the shuffle buffer anew
    (10,000 examples) before its first step, a one-off cost per training run.
    The untimed passes trace the step and let oneDNN build its kernels for the
    batch shapes seen.
    """
    checkpoint_dir = resolve_checkpoint(checkpoint)
    steps = max(1, math.ceil(len(pairs) / batch_size))
    hparams = Hyperparameters(checkpoint=checkpoint, batch_size=batch_size)
    with keras_policy(policy):
        model = build_classifier(load_encoder(checkpoint_dir))
        compile_classifier(model, hparams, 3 * steps)
    batches = bucketed_batches(tokenized_dataset(pairs, checkpoint_dir, max_length),
                               batch_size, seed=0)
    timer = StepTimer(first=2 * steps)
    with fused_training_kernels(model):  # as the Trainer trains
        model.fit(batches, steps_per_epoch=3 * steps, epochs=1, verbose=0, callbacks=[timer])
    return steps * batch_size / timer.seconds


def serve_pairs_per_second(model_dir: str, pairs: list[QqpPair], batch_size: int,
                           precision: str) -> float:
    """Pairs/s of predict_text on raw text, in file order, after one untimed batch."""
    import tensorflow_text  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import

    predict_text = tf.saved_model.load(model_dir).signatures["predict_text"]

    def run(batch: list[QqpPair]) -> None:
        predict_text(question1=tf.constant([pair.question1 for pair in batch]),
                     question2=tf.constant([pair.question2 for pair in batch]))

    with scoring_precision(precision):
        run(pairs[:batch_size])
        started = time.perf_counter()
        for start in range(0, len(pairs), batch_size):
            run(pairs[start:start + batch_size])
    return len(pairs) / (time.perf_counter() - started)


def peer_figures(peer_python: str, tsv: str, checkpoint_dir: str, pairs: int,
                 batch1_pairs: int) -> dict[str, dict[str, float]]:
    """benchmarks/peer_pytorch.py's figures per precision, run by `peer_python`."""
    output = subprocess.run(
        [peer_python, str(PEER_SCRIPT), "--tsv", tsv, "--checkpoint", checkpoint_dir,
         "--pairs", str(pairs), "--batch1-pairs", str(batch1_pairs)],
        check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


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
    parser.add_argument("--peer-python",
                        help="python of a venv with torch and transformers 5: runs "
                             "benchmarks/peer_pytorch.py on the same pairs")
    args = parser.parse_args()

    pairs = first_pairs(args.tsv, args.pairs)
    policy = resolve_policy(args.precision)
    ours: dict[str, float | None] = dict.fromkeys(
        ("train_pairs_per_s", "serve_pairs_per_s_batch64", "serve_pairs_per_s_batch1",
         "serve_float32_pairs_per_s_batch64", "serve_float32_pairs_per_s_batch1"))
    if not args.skip_training:
        ours["train_pairs_per_s"] = train_pairs_per_second(
            pairs, args.checkpoint, policy, args.batch_size, args.max_seq_length)
    if args.model:
        for precision, prefix in (("float32", "serve_float32"), ("auto", "serve")):
            ours[f"{prefix}_pairs_per_s_batch64"] = serve_pairs_per_second(
                args.model, pairs, 64, precision)
            ours[f"{prefix}_pairs_per_s_batch1"] = serve_pairs_per_second(
                args.model, pairs[:args.batch1_pairs], 1, precision)
    peer = (peer_figures(args.peer_python, args.tsv, resolve_checkpoint(args.checkpoint),
                         args.pairs, args.batch1_pairs) if args.peer_python else {})
    print_table(ours, peer, policy)
    print(json.dumps({"ours": {key: None if value is None else round(value, 2)
                               for key, value in ours.items()},
                      "peer": peer, "training_precision": policy, "cpu": cpu_name(),
                      "bf16_flags": bf16_flags(), "pairs": len(pairs), "tsv": args.tsv}))


def print_table(ours: dict[str, float | None], peer: dict, policy: str) -> None:
    """Ours, peer float32, peer bf16 and ours over the faster peer, one row per measure."""
    print(f"cpu: {cpu_name()}; bf16 flags: {', '.join(bf16_flags()) or 'none'}")
    print(f"{'pairs/s':<44}{'ours':>9}{'peer f32':>10}{'peer bf16':>10}{'ratio':>8}")
    rows = (("train_pairs_per_s", "train_pairs_per_s", f"training ({policy}, batch 32)"),
            ("serve_pairs_per_s_batch64", "serve_pairs_per_s_batch64",
             "serving batch 64 (auto precision)"),
            ("serve_float32_pairs_per_s_batch64", "serve_pairs_per_s_batch64",
             "serving batch 64 (float32)"),
            ("serve_pairs_per_s_batch1", "serve_pairs_per_s_batch1",
             "serving batch 1 (auto precision)"),
            ("serve_float32_pairs_per_s_batch1", "serve_pairs_per_s_batch1",
             "serving batch 1 (float32)"))
    for key, peer_key, title in rows:
        value = ours[key]
        peers = [peer[precision][peer_key] for precision in ("float32", "bf16")
                 if precision in peer]
        cells = [f"{figure:10.1f}" for figure in peers] + [f"{'-':>10}"] * (2 - len(peers))
        ratio = f"{value / max(peers):7.2f}x" if value and peers else f"{'-':>8}"
        print(f"{title:<44}{'-' if value is None else f'{value:9.1f}':>9}{''.join(cells)}"
              f"{ratio}")


if __name__ == "__main__":
    main()
