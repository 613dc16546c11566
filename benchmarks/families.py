"""Every supported model family through the whole pipeline, then `qqp-tfx runs`.

    python benchmarks/families.py [--family F [F ...]] [--workdir DIR]
        [--train-pairs 400] [--eval-pairs 200] [--epochs 1]

For each family (default: all of components.families.table) it writes a tiny random
checkpoint whose tokenizer files are trained on the bundled QQP questions
(fixtures.families; no weights or vocabularies can be downloaded here), then runs
`qqp-tfx run` with it on a slice of the bundled sample: ExampleGen to Pusher on
the local runner, all runs in one metadata store. Ingestion is reused from the
cache after the first run. It ends with `qqp-tfx runs`: one row per run.
Exits 1 if a run fails. The models are random and tiny: the verdicts and
figures show that each family runs end to end, not how good it would be.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from components.families.table import FAMILIES  # noqa: E402
from fixtures import families  # noqa: E402

CLI = str(REPO / ".venv" / "bin" / "qqp-tfx")


def sample_slice(directory: Path, train_pairs: int, eval_pairs: int) -> Path:
    """train.tsv and dev.tsv holding the first pairs of the bundled sample."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, count in (("train.tsv", train_pairs), ("dev.tsv", eval_pairs)):
        lines = (families.SAMPLE_DIR / name).read_text(encoding="utf-8").splitlines()
        (directory / name).write_text("\n".join(lines[:count + 1]) + "\n", encoding="utf-8")
    return directory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--family", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--workdir", default=None, help="default: a new temporary directory")
    parser.add_argument("--train-pairs", type=int, default=400)
    parser.add_argument("--eval-pairs", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="qqp-families-"))
    data = sample_slice(work / "data", args.train_pairs, args.eval_pairs)
    texts = families.training_texts()
    common = ["--data", str(data), "--pipeline-root", str(work / "pipeline"),
              "--metadata", str(work / "metadata.sqlite"), "--serving-dir", str(work / "serving"),
              "--epochs", str(args.epochs), "--max-seq-length", "64", "--batch-size", "16",
              "--learning-rate", "1e-3", "--not-fine-tuned-examples", str(args.train_pairs)]
    failed = []
    for model_type in args.family:
        checkpoint = families.make_family_checkpoint(work / "checkpoints" / model_type,
                                                     model_type, texts)
        start = time.perf_counter()
        result = subprocess.run([CLI, "run", "--checkpoint", str(checkpoint), *common],
                                cwd=work, check=False)
        print(f"== {model_type}: exit {result.returncode} in {time.perf_counter() - start:.0f} s",
              flush=True)
        if result.returncode not in (0,):
            failed.append(model_type)
    subprocess.run([CLI, "runs", "--metadata", str(work / "metadata.sqlite")], check=False)
    print(f"work directory: {work}")
    if failed:
        print(f"FAILED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
