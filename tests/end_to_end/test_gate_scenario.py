"""The premise of the gate scenario (`tests.end_to_end.gate_scenario`), checked with the
in-graph tokenizer.

The worse candidate is worse because the information is not there: at its
max-seq-length `longest_first` truncation cuts the whole marker off some eval
duplicates, while at the good candidate's length every marker survives.
"""

import tensorflow as tf

from components.families.checkpoint import DEFAULT_CHECKPOINT, resolve_checkpoint
from components.text.tokenization import load_tokenizer
from tests.end_to_end import gate_scenario


def _duplicates_without_marker(max_length: int) -> tuple[int, int]:
    """(duplicates in the eval split, those whose tokens hold none of the marker's)."""
    tokenizer = load_tokenizer(resolve_checkpoint(DEFAULT_CHECKPOINT))
    marker = set(tokenizer.encode_pairs(tf.constant([gate_scenario.MARKER.strip()]),
                                        tf.constant([""]), 16)["input_ids"][0, 1:-2].numpy().tolist())
    rows = [row.split("\t") for row in gate_scenario.marked_rows("dev.tsv",
                                                                 gate_scenario.EVAL_PAIRS)]
    duplicates = [row for row in rows if row[5] == "1"]
    ids = tokenizer.encode_pairs(tf.constant([row[3] for row in duplicates]),
                                 tf.constant([row[4] for row in duplicates]), max_length)
    lost = sum(not marker & set(pair) for pair in ids["input_ids"].to_list())
    return len(duplicates), lost


def test_the_worse_candidate_cannot_see_every_marker():
    assert _duplicates_without_marker(gate_scenario.GOOD_MAX_SEQ_LENGTH) == (19, 0)
    duplicates, lost = _duplicates_without_marker(gate_scenario.WORSE_MAX_SEQ_LENGTH)
    # Enough lost to fall behind version 1, few enough to clear the floors (0.7 / 0.6).
    assert duplicates == 19 and 3 <= lost <= 7, lost
