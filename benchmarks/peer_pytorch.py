"""The Hugging Face PyTorch peer that benchmarks/throughput.py is compared with.

    python benchmarks/peer_pytorch.py --tsv FILE --checkpoint DIR [--pairs N]

Run it in a separate environment with `torch` (CPU) and `transformers` 5; the
project does not depend on either. Same checkpoint, same pairs:
(a) training: `BertForSequenceClassification`, batch 32, AdamW, tokenizer
    padding="longest" (per batch), max_length 128, tokenization included,
    after untimed warm-up steps;
(b) inference: batch 64 under `torch.inference_mode()`, tokenization included.
Prints one JSON object: {"train_pairs_per_s", "serve_pairs_per_s_batch64", "torch"}.
"""

from __future__ import annotations

import argparse
import csv
import json
import time

import torch
from transformers import AutoTokenizer, BertForSequenceClassification

WARMUP_STEPS = 10


def read_pairs(path: str, count: int) -> list[tuple[str, str, int]]:
    """(question1, question2, label) of the first `count` rows (GLUE TSV: no quoting)."""
    with open(path, encoding="utf-8", newline="") as stream:
        rows = list(csv.reader(stream, delimiter="\t", quoting=csv.QUOTE_NONE))
    header = rows[0]
    q1, q2, label = (header.index(name) for name in ("question1", "question2", "is_duplicate"))
    return [(row[q1], row[q2], int(row[label])) for row in rows[1:count + 1]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tsv", required=True)
    parser.add_argument("--checkpoint", required=True, help="local HF checkpoint directory")
    parser.add_argument("--pairs", type=int, default=1024)
    args = parser.parse_args()

    pairs = read_pairs(args.tsv, args.pairs)
    tokenizer = AutoTokenizer.from_pretrained(args.checkpoint)
    model = BertForSequenceClassification.from_pretrained(args.checkpoint, num_labels=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)

    def train_step(batch: list[tuple[str, str, int]]) -> None:
        inputs = tokenizer([p[0] for p in batch], [p[1] for p in batch], padding="longest",
                           truncation=True, max_length=128, return_tensors="pt")
        loss = model(**inputs, labels=torch.tensor([p[2] for p in batch])).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    model.train()
    batches = [pairs[start:start + 32] for start in range(0, len(pairs), 32)]
    for batch in batches[:WARMUP_STEPS]:
        train_step(batch)
    started = time.perf_counter()
    for batch in batches:
        train_step(batch)
    train = len(pairs) / (time.perf_counter() - started)

    model.eval()
    started = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, len(pairs), 64):
            batch = pairs[start:start + 64]
            inputs = tokenizer([p[0] for p in batch], [p[1] for p in batch], padding="longest",
                               truncation=True, max_length=128, return_tensors="pt")
            torch.softmax(model(**inputs).logits, dim=-1)
    serve = len(pairs) / (time.perf_counter() - started)
    print(json.dumps({"train_pairs_per_s": round(train, 2),
                      "serve_pairs_per_s_batch64": round(serve, 2),
                      "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
