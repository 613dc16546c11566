"""Does bf16 scoring change decisions? The same model on the same pairs, float32 vs bf16.

    python benchmarks/bf16_quality.py --model artifacts/serving/qqp --tsv ../shared/data/qqp/dev.tsv

Scores every pair of a labeled GLUE TSV twice with `qqp-tfx evaluate`'s scorer
(pipeline.cli.scoring.load_scorer, batch 64): `--precision float32`, then
`bfloat16` (grappler's oneDNN bf16 rewrite, components.precision.scoring).
Prints both metric sets, their differences, the largest probability
difference and how many decisions flip, then one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks.throughput import bf16_flags, cpu_name  # noqa: E402
from components.features import DECISION_THRESHOLD  # noqa: E402
from pipeline.cli import scoring  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--tsv", required=True)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    model_dir = scoring.resolve_model_dir(args.model)
    pairs = list(scoring.open_pairs(args.tsv, require_label=True))
    labels = np.array([pair.is_duplicate for pair in pairs])
    probabilities = {precision: scoring.load_scorer(model_dir, args.batch_size, precision)(
                         pairs, None) for precision in ("float32", "bfloat16")}
    metrics = {precision: scoring.binary_metrics(labels, values)
               for precision, values in probabilities.items()}
    difference = np.abs(probabilities["bfloat16"] - probabilities["float32"])
    flips = int(np.sum((probabilities["bfloat16"] >= DECISION_THRESHOLD)
                       != (probabilities["float32"] >= DECISION_THRESHOLD)))
    print(f"cpu: {cpu_name()}; bf16 flags: {', '.join(bf16_flags()) or 'none'}; "
          f"{len(pairs):,} pairs of {args.tsv}; model {model_dir}")
    print(f"{'':<10}{'float32':>10}{'bfloat16':>10}{'bf16-f32':>10}")
    for name in ("accuracy", "f1", "precision", "recall", "roc_auc"):
        low, high = metrics["float32"][name], metrics["bfloat16"][name]
        print(f"{name:<10}{low:>10.4f}{high:>10.4f}{high - low:>+10.4f}")
    print(f"largest |P(bf16) - P(float32)|: {difference.max():.4f} (mean {difference.mean():.5f}); "
          f"decisions flipped: {flips} of {len(pairs):,}")
    print(json.dumps({"metrics": metrics, "max_probability_difference": float(difference.max()),
                      "mean_probability_difference": float(difference.mean()),
                      "flipped_decisions": flips, "pairs": len(pairs), "cpu": cpu_name(),
                      "bf16_flags": bf16_flags()}))


if __name__ == "__main__":
    main()
