"""Serving speed of the exported model for each sub-batch size, in float32 and in bf16.

    python benchmarks/serving_sub_batches.py --tsv FILE --transform-graph DIR
        [--sizes 8 16 32 64] [--pairs 1024]

Exports the Trainer's classifier (the checkpoint's encoder; the head's weights do
not change the speed) with each sub-batch size (components.export.signatures), using a
Transform output of a pipeline run (`<pipeline root>/Transform/transform_graph/<id>`),
and times `predict_text` at batch 64 on the first N pairs of FILE, float32 and
with the bf16 rewrite (components.precision.scoring), like benchmarks/throughput.py.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tensorflow_text  # noqa: E402,F401  (the transform graph's tokenizer ops)
import tensorflow_transform as tft  # noqa: E402

from benchmarks.throughput import bf16_flags, cpu_name, first_pairs, serve_pairs_per_second  # noqa: E402
from components.export.signatures import export_serving_model  # noqa: E402
from components.families.checkpoint import DEFAULT_CHECKPOINT, resolve_checkpoint  # noqa: E402
from components.families.encoders import load_encoder  # noqa: E402
from components.model.classifier import build_classifier  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tsv", required=True)
    parser.add_argument("--transform-graph", required=True)
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--pairs", type=int, default=1024)
    parser.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT)
    args = parser.parse_args()

    pairs = first_pairs(args.tsv, args.pairs)
    tft_output = tft.TFTransformOutput(args.transform_graph)
    print(f"cpu: {cpu_name()}; bf16 flags: {', '.join(bf16_flags()) or 'none'}")
    print(f"{'sub-batch':>10}{'float32':>10}{'bf16':>10}  pairs/s, predict_text batch 64")
    with tempfile.TemporaryDirectory() as workdir:
        for size in args.sizes:
            model = build_classifier(load_encoder(resolve_checkpoint(args.checkpoint)))
            export_dir = os.path.join(workdir, str(size))
            export_serving_model(model, tft_output, export_dir, sub_batch_size=size)
            figures = [serve_pairs_per_second(export_dir, pairs, 64, precision)
                       for precision in ("float32", "bfloat16")]
            print(f"{size:>10}{figures[0]:>10.1f}{figures[1]:>10.1f}", flush=True)


if __name__ == "__main__":
    main()
