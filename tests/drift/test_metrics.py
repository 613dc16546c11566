"""The drift features of QQP pairs and TFDV's divergence between two spans of them.

The checkpoint is the tiny random BERT with the real uncased vocabulary (fixtures.tiny_bert);
the spans are 300-pair slices of the bundled sample, the size DEFAULT_THRESHOLDS were
measured to keep still (benchmarks/drift_thresholds.py).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from components.drift import metrics
from fixtures import families
from fixtures.tiny_bert import make_tiny_checkpoint
from tests.conftest import sample_rows

SPAN = 300
APPENDED = " Please answer as soon as possible, thank you very much for your help."


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    return str(make_tiny_checkpoint(tmp_path_factory.mktemp("drift") / "tiny"))


@pytest.fixture(scope="module")
def pairs() -> list[tuple[str, str, int]]:
    """(question1, question2, is_duplicate) of the bundled sample's first 1,200 pairs."""
    rows = [line.split("\t") for line in sample_rows("train.tsv", 4 * SPAN)]
    return [(row[3], row[4], int(row[5])) for row in rows]


@pytest.fixture(scope="module")
def previous(pairs, checkpoint) -> dict[str, np.ndarray]:
    return metrics.pair_features(pairs[:SPAN], checkpoint, 128)


def test_features_of_hand_made_pairs(checkpoint):
    pairs = [("How do I learn Python?", "How can I learn python quickly?", 1),  # 6 + 7 tokens
             ("Why?", "", 0),                                                  # 2 + 0
             ("What is \u2603?", "x", 0),                                      # 4 (1 [UNK]) + 1
             ("a b c", "d e f g", 1),                                          # 3 + 4
             ("A, b c!", "c b a", 0)]                                          # 5 + 3
    features = metrics.pair_features(pairs, checkpoint, max_seq_length=10)  # + 3 specials
    assert list(features) == list(metrics.FEATURES)
    np.testing.assert_array_equal(features["tokens_per_question"],
                                  [6, 7, 2, 0, 4, 1, 3, 4, 5, 3])
    # 16 and 11 > 10 tokens are truncated, 10 (exactly max_seq_length) is not.
    np.testing.assert_array_equal(features["truncation_rate"], [1, 0, 0, 0, 1])
    np.testing.assert_allclose(features["unknown_token_rate"],
                               [0, 0, 0, 0, 0.25, 0, 0, 0, 0, 0])
    # {how, i, learn, python} of 7 words; "why" and nothing; the snowman is no word;
    # case and punctuation do not count.
    np.testing.assert_allclose(features["word_overlap"], [4 / 7, 0, 0, 0, 1])
    np.testing.assert_array_equal(features["duplicate_share"], [1, 0, 0, 1, 0])
    np.testing.assert_array_equal(features["empty_or_one_word"],
                                  [0, 0, 1, 1, 0, 1, 0, 0, 0, 0])


def test_words_are_lower_cased_without_punctuation():
    assert metrics.words("  Don't STOP-believing, ok?! ") == ["dont", "stopbelieving", "ok"]
    assert metrics.jaccard(set(), set()) == 0.0


@pytest.mark.parametrize("model_type", families.FAMILY_TYPES)
def test_truncation_counts_each_familys_pair_special_tokens(model_type, tmp_path):
    """Every family's tokenizer: a pair is truncated exactly when Hugging Face's pair
    encoding is longer than max_seq_length."""
    directory = tmp_path / model_type
    # 3,000 pairs' questions: enough text for the fixtures' vocabulary sizes.
    families.write_tokenizer_files(directory, families.training_texts(limit=3000), model_type)
    families.write_model_type(directory, model_type)
    first, second = families.read_questions(families.SAMPLE_DIR / "dev.tsv", 200)
    features = metrics.pair_features(zip(first, second, [0] * len(first)), str(directory), 24)
    encoded = families.hf_tokenizer(directory)(first, second)["input_ids"]
    expected = [int(len(ids) > 24) for ids in encoded]
    assert 0 < sum(expected) < len(expected)
    np.testing.assert_array_equal(features["truncation_rate"], expected)


def test_a_resample_of_the_same_data_does_not_drift(pairs, checkpoint, previous):
    current = metrics.pair_features(pairs[SPAN:2 * SPAN], checkpoint, 128)
    drift = metrics.compare(previous, current)
    assert list(drift) == list(metrics.FEATURES)
    assert {name: found.threshold for name, found in drift.items()} == pytest.approx(
        metrics.DEFAULT_THRESHOLDS)
    assert [name for name, found in drift.items() if found.drifted] == []


def test_an_appended_sentence_drifts_tokens_per_question(pairs, checkpoint, previous):
    appended = [(first, second + APPENDED, label)
                for first, second, label in pairs[SPAN:2 * SPAN]]
    drift = metrics.compare(previous, metrics.pair_features(appended, checkpoint, 128))
    assert drift["tokens_per_question"].drifted
    assert not drift["duplicate_share"].drifted


def _jensen_shannon(first: np.ndarray, second: np.ndarray) -> float:
    """JSD (log base 2) of the value shares of two integer samples."""
    size = max(first.max(), second.max()) + 1
    p = np.bincount(first, minlength=size) / first.size
    q = np.bincount(second, minlength=size) / second.size
    middle = (p + q) / 2

    def kullback_leibler(shares: np.ndarray) -> float:
        present = shares > 0
        return float(np.sum(shares[present] * np.log2(shares[present] / middle[present])))
    return (kullback_leibler(p) + kullback_leibler(q)) / 2


def test_only_duplicates_drift_duplicate_share_by_the_exact_divergence(pairs, checkpoint,
                                                                       previous):
    duplicates = [pair for pair in pairs[SPAN:] if pair[2] == 1][:SPAN]
    current = metrics.pair_features(duplicates, checkpoint, 128)
    drift = metrics.compare(previous, current)
    assert drift["duplicate_share"].drifted
    share = previous["duplicate_share"].mean()
    # JSD of Bernoulli(share) and Bernoulli(1): only the value 1 is shared.
    exact = ((1 - share) + share * math.log2(2 * share / (share + 1))
             + math.log2(2 / (share + 1))) / 2
    assert drift["duplicate_share"].divergence == pytest.approx(exact, rel=1e-9)
    assert drift["tokens_per_question"].divergence == pytest.approx(
        _jensen_shannon(previous["tokens_per_question"], current["tokens_per_question"]),
        rel=1e-9)


def test_the_reported_divergence_is_the_one_tfdv_reports(pairs, checkpoint, previous):
    appended = [(first, second + APPENDED, label)
                for first, second, label in pairs[SPAN:2 * SPAN]]
    current = metrics.pair_features(appended, checkpoint, 128)
    anomalies = metrics.drift_anomalies(previous, current)
    drift = metrics.compare(previous, current)
    assert set(anomalies.anomaly_info) == {name for name, found in drift.items()
                                           if found.drifted}
    description = anomalies.anomaly_info["tokens_per_question"].description
    reported = float(re.search(r"divergence between current and previous is (\S+) ",
                               description).group(1))
    assert reported == float(f"{drift['tokens_per_question'].divergence:.6g}")


def test_thresholds_may_be_partial_but_not_unknown(previous):
    drift = metrics.compare(previous, previous, {"word_overlap": 0.5})
    assert drift["word_overlap"] == metrics.FeatureDrift(0.0, 0.5)
    assert drift["tokens_per_question"].threshold == pytest.approx(0.1)
    with pytest.raises(ValueError, match="unknown features"):
        metrics.compare(previous, previous, {"tokens": 0.1})
