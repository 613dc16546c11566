"""The not-fine-tuned model's cosine -> probability map."""

import numpy as np
import pytest

from components.training.calibration import (NonFiniteScoresError, accuracy_maximizing_threshold,
                                             fit_cosine_calibration, fit_slope)


def _accuracy(scores, labels, threshold):
    return float(np.mean((scores >= threshold) == labels.astype(bool)))


def test_threshold_is_the_best_cut_by_brute_force():
    rng = np.random.default_rng(1)
    labels = (rng.random(400) < 0.4).astype(int)
    scores = rng.normal(0.5 + 0.2 * labels, 0.15).round(2)  # rounding makes ties
    threshold, accuracy = accuracy_maximizing_threshold(scores, labels)
    best = max(_accuracy(scores, labels, cut) for cut in np.append(scores, np.inf))
    assert accuracy == pytest.approx(best)
    assert _accuracy(scores, labels, threshold) == pytest.approx(best)


def test_one_class_gives_a_cut_outside_the_scores():
    scores = np.array([0.2, 0.5, 0.9])
    threshold, accuracy = accuracy_maximizing_threshold(scores, np.zeros(3, dtype=int))
    assert threshold > 0.9 and accuracy == 1.0
    threshold, accuracy = accuracy_maximizing_threshold(scores, np.ones(3, dtype=int))
    assert threshold < 0.2 and accuracy == 1.0


def test_slope_is_the_maximum_likelihood_one():
    rng = np.random.default_rng(2)
    labels = (rng.random(2000) < 0.5).astype(int)
    scores = rng.normal(0.6 + 0.15 * labels, 0.1)
    threshold, _ = accuracy_maximizing_threshold(scores, labels)
    slope, converged = fit_slope(scores, labels, threshold)

    def log_likelihood(value):
        logits = value * (scores - threshold)
        return float(np.sum(labels * -np.logaddexp(0, -logits)
                            + (1 - labels) * -np.logaddexp(0, logits)))

    assert converged and slope > 0
    assert log_likelihood(slope) >= max(log_likelihood(slope * 0.99),
                                        log_likelihood(slope * 1.01))


def test_probability_half_is_the_fitted_cut():
    rng = np.random.default_rng(3)
    labels = (rng.random(500) < 0.3).astype(int)
    scores = rng.normal(0.4 + 0.3 * labels, 0.2)
    calibration = fit_cosine_calibration(scores, labels)
    kernel, bias = calibration.kernel_and_bias
    probabilities = 1 / (1 + np.exp(-(kernel * scores + bias)))
    assert np.array_equal(probabilities >= 0.5, scores >= calibration.threshold)
    assert _accuracy(scores, labels, calibration.threshold) == pytest.approx(
        calibration.train_accuracy)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_scores_are_refused(bad: float):
    scores = np.array([0.1, 0.9, bad, 0.4])
    with pytest.raises(NonFiniteScoresError, match="1 of 4 scores are NaN or infinite"):
        fit_cosine_calibration(scores, np.array([0, 1, 1, 0]))
