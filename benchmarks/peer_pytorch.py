"""The Hugging Face PyTorch peer that benchmarks/throughput.py is compared with.

    python benchmarks/peer_pytorch.py --tsv FILE --checkpoint DIR [--pairs N]
        [--precision float32 bf16 ...]

Run it in a separate environment with `torch` (CPU) and `transformers` 5; the
project does not depend on either. Same checkpoint, same pairs, for each
precision: float32, and bf16 as Hugging Face `Trainer --bf16` runs on a CPU
(`torch.autocast("cpu", dtype=torch.bfloat16)` around the forward pass):
(a) training: `AutoModelForSequenceClassification`, batch 32, AdamW, tokenizer
    padding="longest" (per batch), max_length 128, tokenization included,
    timed on the third pass over the pairs (as benchmarks/throughput.py times ours);
(b) inference: batch 64 and batch 1 under `torch.inference_mode()`,
    tokenization included, after an untimed warm-up batch.
Prints one JSON object: {"float32": {...}, "bf16": {...}, "torch", "threads"},
each precision with "train_pairs_per_s", "serve_pairs_per_s_batch64",
"serve_pairs_per_s_batch1".
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import time
from typing import Callable

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

WARMUP_PASSES = 2  # untimed training passes over the pairs before the timed one
PRECISIONS = ("float32", "bf16")

Pair = tuple[str, str, int]


def read_pairs(path: str, count: int) -> list[Pair]:
    """(question1, question2, label) of the first `count` rows (GLUE TSV: no quoting)."""
    with open(path, encoding="utf-8", newline="") as stream:
        rows = list(csv.reader(stream, delimiter="\t", quoting=csv.QUOTE_NONE))
    header = rows[0]
    q1, q2, label = (header.index(name) for name in ("question1", "question2", "is_duplicate"))
    return [(row[q1], row[q2], int(row[label])) for row in rows[1:count + 1]]


def autocast(precision: str) -> contextlib.AbstractContextManager:
    """What `Trainer --bf16` wraps the forward pass in on a CPU; nothing for float32."""
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def pairs_per_second(batches: list[list[Pair]], step: Callable[[list[Pair]], None],
                     warmup: int) -> float:
    """Pairs/s of `step` over the batches, after `warmup` untimed steps (cycling)."""
    for index in range(warmup):
        step(batches[index % len(batches)])
    started = time.perf_counter()
    for batch in batches:
        step(batch)
    return sum(len(batch) for batch in batches) / (time.perf_counter() - started)


def measure(pairs: list[Pair], checkpoint: str, precision: str, batch1_pairs: int
            ) -> dict[str, float]:
    """Training and inference pairs/s of a fresh model at one precision."""
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint, num_labels=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)

    def tokenize(batch: list[Pair]) -> dict[str, torch.Tensor]:
        return tokenizer([p[0] for p in batch], [p[1] for p in batch], padding="longest",
                         truncation=True, max_length=128, return_tensors="pt")

    def train_step(batch: list[Pair]) -> None:
        with autocast(precision):
            loss = model(**tokenize(batch), labels=torch.tensor([p[2] for p in batch])).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    def serve_step(batch: list[Pair]) -> None:
        with torch.inference_mode(), autocast(precision):
            torch.softmax(model(**tokenize(batch)).logits.float(), dim=-1)

    def batches(size: int, count: int) -> list[list[Pair]]:
        return [pairs[start:start + size] for start in range(0, count, size)]

    model.train()
    training_batches = batches(32, len(pairs))
    train = pairs_per_second(training_batches, train_step,
                             WARMUP_PASSES * len(training_batches))
    model.eval()
    return {"train_pairs_per_s": round(train, 2),
            "serve_pairs_per_s_batch64": round(
                pairs_per_second(batches(64, len(pairs)), serve_step, 1), 2),
            "serve_pairs_per_s_batch1": round(
                pairs_per_second(batches(1, batch1_pairs), serve_step, 1), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tsv", required=True)
    parser.add_argument("--checkpoint", required=True, help="local HF checkpoint directory")
    parser.add_argument("--pairs", type=int, default=1024)
    parser.add_argument("--batch1-pairs", type=int, default=200)
    parser.add_argument("--precision", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    args = parser.parse_args()

    pairs = read_pairs(args.tsv, args.pairs)
    result: dict[str, object] = {precision: measure(pairs, args.checkpoint, precision,
                                                    args.batch1_pairs)
                                 for precision in args.precision}
    result.update(torch=torch.__version__, threads=torch.get_num_threads())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
