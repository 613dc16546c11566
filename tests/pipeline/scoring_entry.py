"""Test-only `qqp-tfx` entry point with a small chunk size and a fake, model-free scorer.

    python -m tests.pipeline.scoring_entry CHUNK_SIZE STALL_AFTER QQP_TFX_ARGS...

Runs `pipeline.cli.main(QQP_TFX_ARGS)` with `scoring.CHUNK_SIZE = CHUNK_SIZE`
and `scoring.load_scorer` replaced by `fake_scorer`, which scores STALL_AFTER
chunks (0: all of them) and then hangs, so a test can kill the process midway.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, Sequence

import numpy as np

from components.data.records import QqpPair
from pipeline import cli
from pipeline.cli import scoring


def fake_probability(pair: QqpPair) -> float:
    """A probability that depends on the pair only (its first question's share of the text)."""
    return (len(pair.question1) + 1) / (len(pair.question1) + len(pair.question2) + 2)


def fake_scorer(stall_after: int = 0, seen: list[list[int]] | None = None
                ) -> Callable[..., scoring.Scorer]:
    """A stand-in for `scoring.load_scorer`: its scorer records each chunk's ids in `seen`
    and hangs from chunk `stall_after` + 1 on (0: never)."""
    chunks = [] if seen is None else seen

    def load(model_dir: str, batch_size: int, precision: str) -> scoring.Scorer:
        del model_dir, batch_size, precision

        def score(pairs: Sequence[QqpPair], on_batch: scoring.Progress | None) -> np.ndarray:
            if stall_after and len(chunks) >= stall_after:
                time.sleep(600)
            chunks.append([pair.id for pair in pairs])
            if on_batch is not None:
                on_batch(len(pairs))
            return np.array([fake_probability(pair) for pair in pairs], dtype=np.float32)
        return score
    return load


if __name__ == "__main__":
    scoring.CHUNK_SIZE = int(sys.argv[1])
    scoring.load_scorer = fake_scorer(int(sys.argv[2]))
    sys.exit(cli.main(sys.argv[3:]))
