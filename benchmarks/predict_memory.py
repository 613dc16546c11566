"""Peak memory of `qqp-tfx predict` on a small and a large TSV: it must not grow with the input.

    python benchmarks/predict_memory.py [--model artifacts/serving/qqp] [--sizes 5000 40000]
        [--source ../shared/data/qqp/dev.tsv] [--workdir DIR]

Writes N pairs (the source's rows repeated with fresh ids; the bundled sample's
dev.tsv when the source is missing), runs `qqp-tfx predict --model M --input F
--output O` in a separate child process for each N, and prints each child's peak
RSS (`ru_maxrss` of that child alone), its wall time, and the ratio of the
largest N's peak to the smallest's (target: within 1.2) and their difference.
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO_ROOT.parent / "shared" / "data" / "qqp" / "dev.tsv"
BUNDLED_SOURCE = REPO_ROOT / "data" / "qqp_sample" / "dev.tsv"


def write_pairs(source: Path, count: int, output: Path) -> Path:
    """Writes `count` data rows of `source` (repeated as needed, ids 1..count) to `output`."""
    lines = source.read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], [line.split("\t", 1)[1] for line in lines[1:] if line]
    with output.open("w", encoding="utf-8") as stream:
        stream.write(header + "\n")
        for pair_id, row in zip(range(1, count + 1), itertools.cycle(rows)):
            stream.write(f"{pair_id}\t{row}\n")
    return output


def peak_rss_mib(command: list[str]) -> tuple[float, float]:
    """Runs `command` in a child that reports its own peak RSS; returns (MiB, seconds).

    A wrapper child runs the command and reads RUSAGE_CHILDREN, so each measure
    covers that one command only, not earlier ones of this process.
    """
    wrapper = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
               "stdout=subprocess.DEVNULL); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", wrapper, *command], check=True,
                            capture_output=True, text=True)
    return int(result.stdout.split()[-1]) / 1024, time.monotonic() - started


def main() -> None:
    """Measures each size and prints the figures and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--model", default=str(REPO_ROOT / "artifacts" / "serving" / "qqp"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 40000])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the TSV files go [default: a temporary directory]")
    args = parser.parse_args()
    source = args.source if args.source.exists() else BUNDLED_SOURCE
    qqp_tfx = str(Path(sys.executable).with_name("qqp-tfx"))
    with tempfile.TemporaryDirectory() as temporary:
        workdir = args.workdir or Path(temporary)
        workdir.mkdir(parents=True, exist_ok=True)
        peaks = {}
        for size in sorted(args.sizes):
            tsv = write_pairs(source, size, workdir / f"pairs_{size}.tsv")
            peaks[size], seconds = peak_rss_mib(
                [qqp_tfx, "predict", "--model", args.model, "--input", str(tsv),
                 "--output", str(workdir / f"scores_{size}.tsv")])
            print(f"N={size:>7,}  peak RSS {peaks[size]:8.1f} MiB  {seconds:7.1f} s  "
                  f"(source {source.name})", flush=True)
    smallest, largest = min(peaks), max(peaks)
    print(f"peak RSS ratio N={largest:,} / N={smallest:,}: "
          f"{peaks[largest] / peaks[smallest]:.3f} (target <= 1.2), "
          f"{peaks[largest] - peaks[smallest]:+.1f} MiB")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
