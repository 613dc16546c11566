"""The gate's paired bootstrap intervals, checked against independent computations.

scipy.stats.bootstrap (index resampling, paired) and, for accuracy, the normal
interval of a paired difference of proportions are the independent references;
scikit-learn's metrics check metric_value. Tolerances come from the Monte-Carlo
error of a bootstrap quantile, not from the observed differences.
"""

import time
import tracemalloc

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score

from components.evaluation.intervals import (METRICS, Interval, better, describe, metric_value,
                                             not_worse, paired_interval)


def _pairs(n: int, seed: int, candidate_right: float = 0.85, baseline_right: float = 0.83):
    """Labels and two models' predictions whose errors are correlated (as two models' are)."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.37).astype(int)
    shared = rng.random(n)  # how hard each pair is, for both models
    candidate = np.where(shared < candidate_right, labels, 1 - labels)
    noise = np.where(rng.random(n) < 0.1, rng.random(n), shared)
    baseline = np.where(noise < baseline_right, labels, 1 - labels)
    return labels, candidate, baseline


def _accuracy(labels, predicted, axis=-1):
    return np.mean(labels == predicted, axis=axis)


def _f1(labels, predicted, axis=-1):
    tp = np.sum((labels == 1) & (predicted == 1), axis=axis)
    fp = np.sum((labels == 0) & (predicted == 1), axis=axis)
    fn = np.sum((labels == 1) & (predicted == 0), axis=axis)
    denominator = np.maximum(2 * tp + fp + fn, 1)
    return np.where(tp > 0, 2 * tp / denominator, 0.0)


REFERENCE = {"accuracy": _accuracy, "f1": _f1}


def _quantile_se(spread: float, confidence: float, resamples: int) -> float:
    """Monte-Carlo standard error of a tail quantile of a bootstrap distribution with standard
    deviation `spread` (approximately normal): sqrt(p (1 - p) / B) / density at the quantile."""
    p = (1 - confidence) / 2
    density = stats.norm.pdf(stats.norm.ppf(p)) / spread
    return np.sqrt(p * (1 - p) / resamples) / density


# --- against scipy.stats.bootstrap -------------------------------------------------------

@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("confidence", [0.95, 0.9])
def test_agrees_with_scipy_paired_bootstrap(metric, confidence):
    n, resamples = 1000, 5000
    labels, candidate, baseline = _pairs(n, seed=7)
    reference = REFERENCE[metric]

    def difference(y, c, b, axis=-1):
        return reference(y, c, axis=axis) - reference(y, b, axis=axis)

    scipy_result = stats.bootstrap((labels, candidate, baseline), difference, paired=True,
                                   vectorized=True, method="percentile",
                                   confidence_level=confidence, n_resamples=resamples,
                                   random_state=np.random.default_rng(123))
    ours = paired_interval(labels, candidate, baseline, metric, confidence=confidence,
                           resamples=resamples, seed=0)

    assert ours.difference == pytest.approx(float(difference(labels, candidate, baseline)),
                                            abs=1e-12)
    # Two independent Monte-Carlo estimates of each quantile: 4 combined standard errors,
    # plus one step of the lattice the differences live on (1/n for accuracy) for ties.
    spread = float(scipy_result.standard_error)
    tolerance = 4 * np.sqrt(2) * _quantile_se(spread, confidence, resamples) + 1 / n
    assert 0.001 < tolerance < 0.005  # meaningful: well below the interval's width
    assert ours.ci_high - ours.ci_low > 6 * tolerance
    low, high = scipy_result.confidence_interval
    assert ours.ci_low == pytest.approx(low, abs=tolerance)
    assert ours.ci_high == pytest.approx(high, abs=tolerance)


# --- for accuracy, the normal interval of a paired difference of proportions -------------

@pytest.mark.parametrize("confidence", [0.95, 0.8])
def test_accuracy_agrees_with_the_normal_interval_from_discordant_counts(confidence):
    n, resamples = 20000, 5000
    labels, candidate, baseline = _pairs(n, seed=3)
    candidate_right, baseline_right = candidate == labels, baseline == labels
    b = int(np.sum(candidate_right & ~baseline_right))
    c = int(np.sum(~candidate_right & baseline_right))
    d = (b - c) / n
    se = np.sqrt((b + c) / n - d ** 2) / np.sqrt(n)
    z = stats.norm.ppf((1 + confidence) / 2)

    ours = paired_interval(labels, candidate, baseline, "accuracy", confidence=confidence,
                           resamples=resamples, seed=1)

    assert ours.difference == pytest.approx(d, abs=1e-12)
    tolerance = 4 * _quantile_se(se, confidence, resamples) + 1 / n
    assert tolerance < (2 * z * se) / 10
    assert ours.ci_low == pytest.approx(d - z * se, abs=tolerance)
    assert ours.ci_high == pytest.approx(d + z * se, abs=tolerance)


# --- the gate's cases --------------------------------------------------------------------

@pytest.mark.parametrize("metric", METRICS)
def test_identical_models_give_exactly_zero(metric):
    labels, candidate, _ = _pairs(1000, seed=11)
    interval = paired_interval(labels, candidate, candidate.copy(), metric)
    assert interval == Interval(difference=0.0, ci_low=0.0, ci_high=0.0, confidence=0.95)
    assert not_worse(interval, 0.0)
    assert not better(interval)


def _with_errors(labels: np.ndarray, wrong: slice) -> np.ndarray:
    predicted = labels.copy()
    predicted[wrong] = 1 - predicted[wrong]
    return predicted


LABELS_1000 = (np.random.default_rng(5).random(1000) < 0.4).astype(int)
# 100 errors for one model, 200 (50 of them shared) for the other: 10 points of accuracy.
FEWER_ERRORS = _with_errors(LABELS_1000, slice(0, 100))
MORE_ERRORS = _with_errors(LABELS_1000, slice(50, 250))


@pytest.mark.parametrize("metric", METRICS)
def test_a_clearly_worse_candidate_is_rejected(metric):
    interval = paired_interval(LABELS_1000, MORE_ERRORS, FEWER_ERRORS, metric)
    assert interval.difference < 0
    assert interval.ci_high < 0
    assert not not_worse(interval, 0.0)
    assert not better(interval)


@pytest.mark.parametrize("metric", METRICS)
def test_a_clearly_better_candidate_is_better(metric):
    interval = paired_interval(LABELS_1000, FEWER_ERRORS, MORE_ERRORS, metric)
    assert interval.ci_low > 0
    assert better(interval)
    assert not_worse(interval, 0.0)


@pytest.mark.parametrize("metric", METRICS)
def test_one_pair_worse_on_1000_is_not_worse(metric):
    candidate = _with_errors(LABELS_1000, slice(0, 101))  # the baseline's 100 errors and one more
    interval = paired_interval(LABELS_1000, candidate, FEWER_ERRORS, metric)
    assert interval.difference < 0
    assert interval.ci_low < 0 <= interval.ci_high
    assert not_worse(interval, 0.0)
    assert not better(interval)


def test_not_worse_and_better_at_their_boundaries():
    interval = Interval(difference=-0.01, ci_low=-0.02, ci_high=-0.005, confidence=0.95)
    assert not_worse(interval, 0.01)
    assert not_worse(interval, 0.005)
    assert not not_worse(interval, 0.001)
    assert not better(Interval(difference=0.01, ci_low=0.0, ci_high=0.02, confidence=0.95))
    assert better(Interval(difference=0.01, ci_low=0.001, ci_high=0.02, confidence=0.95))


def test_describe():
    interval = Interval(difference=-0.001, ci_low=-0.012, ci_high=0.01, confidence=0.95)
    assert (describe("accuracy", interval, "version 1")
            == "accuracy -0.0010 (95% CI -0.0120..+0.0100) vs version 1")
    tiny = Interval(difference=-1e-7, ci_low=-0.03456, ci_high=0.0, confidence=0.9)
    assert (describe("f1", tiny, "the not-fine-tuned model")
            == "f1 +0.0000 (90% CI -0.0346..+0.0000) vs the not-fine-tuned model")


# --- the metrics, against scikit-learn ---------------------------------------------------

@pytest.mark.parametrize("labels, predicted", [
    ([1, 0, 1, 1, 0, 0], [1, 1, 0, 1, 0, 0]),
    ([0, 0, 1, 1], [0, 0, 0, 0]),   # no positive predicted
    ([0, 0, 0], [1, 0, 1]),         # no positive label
    ([0, 0, 0], [0, 0, 0]),         # no positive at all
    ([True, False], [True, True]),
    ([1.0, 0.0, 1.0], [1, 0, 0]),
])
def test_metric_value_matches_sklearn(labels, predicted):
    assert metric_value(labels, predicted, "accuracy") == pytest.approx(
        accuracy_score(labels, predicted), abs=1e-12)
    assert metric_value(labels, predicted, "f1") == pytest.approx(
        f1_score(labels, predicted, zero_division=0), abs=1e-12)


# --- determinism, speed, memory ----------------------------------------------------------

def test_deterministic_for_a_seed():
    labels, candidate, baseline = _pairs(1000, seed=2)
    first = paired_interval(labels, candidate, baseline, "f1", seed=4)
    assert paired_interval(labels, candidate, baseline, "f1", seed=4) == first
    other = paired_interval(labels, candidate, baseline, "f1", seed=5)
    assert other != first
    assert other.difference == first.difference


def test_fast_at_2000_resamples_on_5000_pairs():
    labels, candidate, baseline = _pairs(5000, seed=8)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        paired_interval(labels, candidate, baseline, "f1", resamples=2000)
        best = min(best, time.perf_counter() - start)
    assert best < 0.5


def test_memory_does_not_grow_with_pairs_times_resamples():
    labels, candidate, baseline = _pairs(40000, seed=9)
    tracemalloc.start()
    try:
        paired_interval(labels, candidate, baseline, "accuracy", resamples=2000)
        paired_interval(labels, candidate, baseline, "f1", resamples=100_000)  # several chunks
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2 ** 20  # 2000 x 40,000 resampled indices alone would be 640 MB


# --- errors ------------------------------------------------------------------------------

GOOD = [0, 1, 1, 0]


@pytest.mark.parametrize("labels, candidate, baseline, message", [
    (GOOD, [0, 1, 1], GOOD, "different lengths"),
    (GOOD, GOOD, [0, 1, 1, 0, 1], "different lengths"),
    ([], [], [], "empty"),
    ([0, 1, 2, 0], GOOD, GOOD, "only 0 and 1"),
    (GOOD, [0, -1, 1, 0], GOOD, "only 0 and 1"),
    (GOOD, GOOD, [0, 0.5, 1, 0], "only 0 and 1"),
    (GOOD, GOOD, [0, np.nan, 1, 0], "only 0 and 1"),
    (["0", "1", "1", "0"], GOOD, GOOD, "0/1 numbers"),
    ([[0, 1], [1, 0]], GOOD, GOOD, "1-D"),
])
def test_bad_inputs_are_refused(labels, candidate, baseline, message):
    with pytest.raises(ValueError, match=message):
        paired_interval(labels, candidate, baseline, "accuracy")


def test_bad_metric_confidence_and_resamples_are_refused():
    with pytest.raises(ValueError, match="unknown metric 'precision'"):
        paired_interval(GOOD, GOOD, GOOD, "precision")
    with pytest.raises(ValueError, match="unknown metric"):
        metric_value(GOOD, GOOD, "F1")
    for confidence in (0.0, 1.0, 1.5, -0.1, 95):
        with pytest.raises(ValueError, match="confidence must be in"):
            paired_interval(GOOD, GOOD, GOOD, "f1", confidence=confidence)
    for resamples in (0, -3, 2.5):
        with pytest.raises(ValueError, match="resamples"):
            paired_interval(GOOD, GOOD, GOOD, "f1", resamples=resamples)
    with pytest.raises(ValueError, match="different lengths"):
        metric_value(GOOD, [1, 1], "accuracy")
