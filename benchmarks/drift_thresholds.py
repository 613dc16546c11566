"""Measures the drift divergences that components.drift.metrics.DEFAULT_THRESHOLDS are set from.

    python benchmarks/drift_thresholds.py --tsv /work/shared/data/qqp/train.tsv
        [--checkpoint DIR] [--max-seq-length 128] [--size 12000] [--small 300]
        [--seeds 20] [--source QUANTILES] [--buckets 10] [--numeric-tokens]

Prints one row per feature of TFDV's Jensen-Shannon divergence for (column names):
  (a) resample: two disjoint random samples of --size pairs;
  (b) max: two disjoint samples of --small pairs, the max over --seeds seeds;
  the current sample of (a) shifted (the same with a --small suffix for --small pairs):
      append: every question2 with the same sentence appended; x3: every question
      repeated 3 times; dups: only duplicates kept; unk: a character the vocabulary
      lacks appended to every question2.
Also prints the time of pair_features on --size pairs. --source and --buckets set the
TFDV histogram the numeric features are compared by, and --numeric-tokens compares
tokens_per_question by that histogram too (to compare the choices).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.drift import metrics  # noqa: E402
from components.families.checkpoint import DEFAULT_CHECKPOINT, resolve_checkpoint  # noqa: E402

APPENDED = " Please answer as soon as possible, thank you very much for your help."
UNKNOWN = " \u2603"  # a snowman: not in the uncased WordPiece vocabulary
Pair = tuple[str, str, int]


def read_pairs(tsv: str) -> list[Pair]:
    """(question1, question2, is_duplicate) of a GLUE QQP TSV; malformed lines skipped."""
    pairs = []
    with open(tsv, encoding="utf-8") as stream:
        next(stream)
        for line in stream:
            fields = line.rstrip("\n").split("\t")
            if len(fields) == 6 and fields[5] in ("0", "1"):
                pairs.append((fields[3], fields[4], int(fields[5])))
    return pairs


def shifts(pairs: list[Pair], pool: list[Pair], size: int) -> dict[str, list[Pair]]:
    """The shifted versions of a current sample (duplicates drawn from `pool`)."""
    duplicates = [pair for pair in pool if pair[2] == 1][:size]
    return {
        "append": [(q1, q2 + APPENDED, label) for q1, q2, label in pairs],
        "x3": [(" ".join([q1] * 3), " ".join([q2] * 3), label) for q1, q2, label in pairs],
        "dups": duplicates,
        "unk": [(q1, q2 + UNKNOWN, label) for q1, q2, label in pairs],
    }


def measure(args: argparse.Namespace) -> tuple[dict[str, dict[str, float]], float]:
    """Divergence per column ((a), (b) max, (c) per shift and size) and feature, and the
    seconds pair_features takes on --size pairs."""
    checkpoint = args.checkpoint or resolve_checkpoint(DEFAULT_CHECKPOINT)
    pairs = read_pairs(args.tsv)

    def features(sample: list[Pair]) -> dict:
        return metrics.pair_features(sample, checkpoint, args.max_seq_length)

    def divergences(previous: dict, current: dict) -> dict[str, float]:
        return {name: drift.divergence
                for name, drift in metrics.compare(previous, current).items()}

    def split(seed: int, size: int) -> tuple[list[Pair], list[Pair], list[Pair]]:
        order = np.random.default_rng(seed).permutation(len(pairs))
        return ([pairs[i] for i in order[:size]], [pairs[i] for i in order[size:2 * size]],
                [pairs[i] for i in order[2 * size:]])

    columns: dict[str, dict[str, float]] = {}
    previous, current, _ = split(0, args.size)
    started = time.perf_counter()
    previous_features = features(previous)
    seconds = time.perf_counter() - started
    columns["(a)"] = divergences(previous_features, features(current))
    small = [divergences(*(features(sample) for sample in split(seed, args.small)[:2]))
             for seed in range(1, args.seeds + 1)]
    columns["(b) max"] = {name: max(row[name] for row in small) for name in metrics.FEATURES}
    for size in (args.size, args.small):
        previous, current, pool = split(0, size)
        previous_features = features(previous)
        suffix = "" if size == args.size else f" {size}"
        for name, shifted in shifts(current, pool, size).items():
            columns[name + suffix] = divergences(previous_features, features(shifted))
    return columns, seconds


def main() -> None:
    """Parses the arguments, measures and prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tsv", required=True)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--size", type=int, default=12000)
    parser.add_argument("--small", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--source", default=metrics.HISTOGRAM_SOURCE,
                        choices=("DEFAULT", "QUANTILES", "STANDARD"))
    parser.add_argument("--buckets", type=int, default=metrics.HISTOGRAM_BUCKETS)
    parser.add_argument("--numeric-tokens", action="store_true",
                        help="compare tokens_per_question by its histogram, not as categories")
    args = parser.parse_args()
    metrics.HISTOGRAM_SOURCE, metrics.HISTOGRAM_BUCKETS = args.source, args.buckets
    if args.numeric_tokens:
        metrics.CATEGORICAL = metrics.CATEGORICAL - {"tokens_per_question"}

    columns, seconds = measure(args)
    print(f"histogram {args.source}, {args.buckets} buckets; pair_features on {args.size} "
          f"pairs: {seconds:.2f} s")
    print(f"{'feature':<20}" + "".join(f"{name:>11}" for name in columns) + f"{'threshold':>11}")
    for feature in metrics.FEATURES:
        print(f"{feature:<20}" + "".join(f"{columns[name][feature]:>11.4f}" for name in columns)
              + f"{metrics.DEFAULT_THRESHOLDS[feature]:>11.3f}")


if __name__ == "__main__":
    main()
