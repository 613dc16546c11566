"""The not-fine-tuned model's only fitted parameters: a monotone map from cosine to probability.

P(duplicate) = sigmoid(slope * (cosine - threshold)). `threshold` is the
accuracy-maximising cut on the given pairs, so probability >= 0.5 is that cut;
`slope` is the one-feature logistic regression fitted to convergence (Newton)
with the cut fixed there. Plain NumPy: nothing here touches the encoder.
"""

from __future__ import annotations

import dataclasses

import numpy as np

MIN_SLOPE = 1e-3  # the map must stay increasing even if cosine carries no signal


class NonFiniteScoresError(ValueError):
    """Some scores to calibrate are NaN or infinite: no map can be fitted on them."""


@dataclasses.dataclass(frozen=True)
class CosineCalibration:
    """logit = slope * (cosine - threshold)."""

    threshold: float
    slope: float
    train_accuracy: float
    converged: bool

    @property
    def kernel_and_bias(self) -> tuple[float, float]:
        """The map as a 1x1 Dense layer's kernel and bias."""
        return self.slope, -self.slope * self.threshold


def accuracy_maximizing_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """The cut t maximising the accuracy of `score >= t`, and that accuracy.

    Cuts lie midway between distinct sorted scores (or just outside their range,
    i.e. all positive / all negative), so ties never straddle the cut.
    """
    if len(scores) == 0:
        raise ValueError("no scores to fit a threshold on")
    order = np.argsort(scores, kind="stable")
    sorted_scores, sorted_labels = scores[order], labels[order].astype(np.int64)
    count = len(scores)
    # Cut before index i: indices < i predicted negative, >= i positive (i = 0..count).
    negatives_below = np.concatenate([[0], np.cumsum(1 - sorted_labels)])
    positives_above = sorted_labels.sum() - np.concatenate([[0], np.cumsum(sorted_labels)])
    correct = negatives_below + positives_above
    valid = np.ones(count + 1, dtype=bool)
    valid[1:count] = sorted_scores[1:] > sorted_scores[:-1]
    best = int(np.argmax(np.where(valid, correct, -1)))
    if best == 0:
        threshold = float(sorted_scores[0]) - 1e-6
    elif best == count:
        threshold = float(sorted_scores[-1]) + 1e-6
    else:
        threshold = float(sorted_scores[best - 1] + sorted_scores[best]) / 2
    return threshold, float(correct[best]) / count


def fit_slope(scores: np.ndarray, labels: np.ndarray, threshold: float,
              max_iterations: int = 100, tolerance: float = 1e-10) -> tuple[float, bool]:
    """Maximum-likelihood slope of sigmoid(slope * (score - threshold)); (slope, converged)."""
    centered = scores.astype(np.float64) - threshold
    signs = 2.0 * labels.astype(np.float64) - 1.0
    slope = 1.0
    for _ in range(max_iterations):
        margin = np.clip(signs * slope * centered, -500, 500)
        wrong = 1.0 / (1.0 + np.exp(margin))  # sigmoid(-margin)
        gradient = -np.sum(signs * centered * wrong)
        hessian = np.sum(centered ** 2 * wrong * (1.0 - wrong))
        if hessian <= 0:
            return slope, False
        step = gradient / hessian
        slope -= step
        if abs(step) < tolerance * max(1.0, abs(slope)):
            return slope, True
    return slope, False


def fit_cosine_calibration(scores: np.ndarray, labels: np.ndarray) -> CosineCalibration:
    """Fits the monotone cosine -> probability map on labelled pairs.

    Raises NonFiniteScoresError if any score is NaN or infinite (a NaN would
    otherwise become a NaN threshold or slope, and a model scoring NaN everywhere).
    """
    bad = int(np.count_nonzero(~np.isfinite(scores)))
    if bad:
        raise NonFiniteScoresError(f"{bad} of {len(scores)} scores are NaN or infinite")
    threshold, accuracy = accuracy_maximizing_threshold(scores, labels)
    slope, converged = fit_slope(scores, labels, threshold)
    return CosineCalibration(threshold=float(threshold), slope=float(max(slope, MIN_SLOPE)),
                             train_accuracy=float(accuracy),
                             converged=bool(converged and slope >= MIN_SLOPE))
