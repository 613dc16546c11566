"""The gate scenario both runners play: a good candidate, then a reliably worse one, twice.

The data are real bundled pairs with a learnable marker: every duplicate's
question2 ends in "xylophone". A fine-tuned tiny BERT learns that in a few steps;
the cosine of the tiny random encoder's embeddings does not, so the comparison
with the not-fine-tuned model decides with the real floors.

The worse candidate is the same training with `max-seq-length` 32 instead of 64:
`longest_first` truncation then cuts the marker off about a quarter of the eval
duplicates (5 of 19, `test_the_worse_candidate_cannot_see_every_marker`), which
it therefore cannot find, while the first model sees every marker. It still
clears the floors, and the comparison with the served version 1 rejects it: worse
beyond the margin with 95% confidence (its F1 lead over the not-fine-tuned model,
on 64 eval pairs, is within the noise).
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import sample_rows, write_tsv

MARKER = " xylophone"
TRAIN_PAIRS, EVAL_PAIRS = 320, 64
GOOD_MAX_SEQ_LENGTH, WORSE_MAX_SEQ_LENGTH = 64, 32
TRAINING = {"epochs": 5, "batch-size": 16, "learning-rate": 1e-3,
            "not-fine-tuned-examples": 200, "min-accuracy": 0.7, "min-f1": 0.5,
            "baseline-margin": 0.0}


def marked_rows(split_file: str, count: int, skip: int = 0, appended: str = "") -> list[str]:
    """`count` bundled rows after the first `skip`, each duplicate's question2 ending in the
    marker, and then every question2 in `appended`."""
    rows = []
    for row in sample_rows(split_file, skip + count)[skip:]:
        columns = row.split("\t")
        if columns[5] == "1":
            columns[4] += MARKER
        columns[4] += appended
        rows.append("\t".join(columns))
    return rows


def write_data(directory: Path, part: int = 0, appended: str = "") -> Path:
    """train.tsv and dev.tsv of the scenario in `directory`: the bundled rows of part 0,
    or of another part of as many rows (part 1 follows part 0, and so on)."""
    directory.mkdir(parents=True, exist_ok=True)
    write_tsv(directory / "train.tsv",
              marked_rows("train.tsv", TRAIN_PAIRS, part * TRAIN_PAIRS, appended))
    write_tsv(directory / "dev.tsv", marked_rows("dev.tsv", EVAL_PAIRS, part * EVAL_PAIRS,
                                                 appended))
    return directory
