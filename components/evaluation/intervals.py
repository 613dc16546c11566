"""Paired confidence intervals for the blessing gate: how much better or worse is the candidate?

The gate compares a candidate model with a baseline (the served model, or the
not-fine-tuned model) on the same eval pairs. Comparing point estimates rejects a
candidate that is one pair worse on 1,000 pairs; this module gives the interval
of metric(candidate) - metric(baseline) the gate decides on instead.

Method: paired bootstrap, percentile interval. The eval pairs are resampled with
replacement, with the same indices for both models (the pairing: both models'
errors on a pair stay together), metric(candidate) - metric(baseline) is computed
on each resample, and the (1 - c)/2 and (1 + c)/2 quantiles of those differences
are the interval at confidence c.

Why the bootstrap: F1 is not a mean of per-pair terms (it is a ratio of counts),
so no exact paired test covers it; McNemar's exact test covers accuracy only. The
bootstrap treats accuracy and F1 alike and keeps the pairing.

How: both metrics depend on a resample only through the counts of the 8
(label, candidate, baseline) cells, and resampling n pairs with replacement draws
those counts from a multinomial(n, the cells' frequencies on all pairs). So each
resample is one multinomial draw of 8 counts, exactly equivalent to resampling
pairs, and costs O(8) memory and time whatever the number of pairs; draws are
made in chunks so memory stays bounded for any number of resamples.

Inputs are 0/1 arrays of equal length: the true labels and each model's predicted
labels at its threshold. F1 is that of the positive class, 0 when there is no true
positive (as scikit-learn's `zero_division=0`). numpy only: no TensorFlow here.
"""

from __future__ import annotations

import dataclasses

import numpy as np

METRICS = ("accuracy", "f1")

# Resamples drawn at once: CHUNK x 8 int64 counts, 4 MiB.
_CHUNK = 65536


@dataclasses.dataclass(frozen=True)
class Interval:
    """A paired difference metric(candidate) - metric(baseline) and its confidence interval."""

    difference: float  # metric(candidate) - metric(baseline) on all pairs
    ci_low: float
    ci_high: float
    confidence: float  # e.g. 0.95


def _binary(values, name: str) -> np.ndarray:
    """`values` as a 1-D int64 array of 0/1, or a ValueError saying what is wrong."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    if array.dtype == bool:
        return array.astype(np.int64)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"{name} must hold 0/1 numbers, got dtype {array.dtype}")
    bad = ~((array == 0) | (array == 1))
    if bad.any():
        raise ValueError(f"{name} must hold only 0 and 1, got {array[bad][0]!r} "
                         f"({int(bad.sum())} such values)")
    return array.astype(np.int64)


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {METRICS}")


def _check_lengths(**arrays: np.ndarray) -> None:
    lengths = {name: len(array) for name, array in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"arrays of different lengths: {lengths}")


def _metric_from_counts(tp, fp, fn, total, metric: str):
    """Accuracy or F1 from confusion counts (scalars or arrays of the same shape)."""
    tp = np.asarray(tp, dtype=np.int64)
    fp = np.asarray(fp, dtype=np.int64)
    fn = np.asarray(fn, dtype=np.int64)
    if metric == "accuracy":
        return (total - fp - fn) / total
    denominator = 2 * tp + fp + fn
    # F1 = 0 without a true positive; the denominator is then never divided by 0.
    return np.where(tp > 0, 2 * tp / np.maximum(denominator, 1), 0.0)


def metric_value(labels, predicted, metric: str) -> float:
    """The metric ("accuracy" or "f1" of the positive class) of `predicted` on all pairs."""
    _check_metric(metric)
    labels = _binary(labels, "labels")
    predicted = _binary(predicted, "predicted")
    _check_lengths(labels=labels, predicted=predicted)
    tp = int(np.sum((labels == 1) & (predicted == 1)))
    fp = int(np.sum((labels == 0) & (predicted == 1)))
    fn = int(np.sum((labels == 1) & (predicted == 0)))
    return float(_metric_from_counts(tp, fp, fn, len(labels), metric))


# The 8 cells, indexed label * 4 + candidate * 2 + baseline: which are each model's
# true positives, false positives and false negatives.
_CELLS = np.array([(label, cand, base) for label in (0, 1) for cand in (0, 1) for base in (0, 1)])
_CELL_LABEL, _CELL_CAND, _CELL_BASE = _CELLS[:, 0], _CELLS[:, 1], _CELLS[:, 2]


def _cell_masks(predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """0/1 vectors over the 8 cells: which are true / false positives, false negatives."""
    tp = (_CELL_LABEL == 1) & (predicted == 1)
    fp = (_CELL_LABEL == 0) & (predicted == 1)
    fn = (_CELL_LABEL == 1) & (predicted == 0)
    return tp.astype(np.int64), fp.astype(np.int64), fn.astype(np.int64)


def _differences(counts: np.ndarray, total: int, metric: str) -> np.ndarray:
    """metric(candidate) - metric(baseline) for each row of 8 cell counts."""
    values = []
    for predicted in (_CELL_CAND, _CELL_BASE):
        tp, fp, fn = (counts @ mask for mask in _cell_masks(predicted))
        values.append(_metric_from_counts(tp, fp, fn, total, metric))
    return values[0] - values[1]


def paired_interval(labels, candidate_labels, baseline_labels, metric: str, *,
                    confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> Interval:
    """The paired-bootstrap percentile interval of metric(candidate) - metric(baseline).

    `labels` are the true 0/1 labels, `candidate_labels` and `baseline_labels` each
    model's predicted 0/1 labels on the same pairs, in the same order. Deterministic
    for a seed. When both models predict the same label on every pair, every
    resample's difference is exactly 0 and so is the interval.
    """
    _check_metric(metric)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if isinstance(resamples, bool) or not isinstance(resamples, (int, np.integer)) \
            or resamples < 1:
        raise ValueError(f"resamples must be a positive integer, got {resamples!r}")
    labels = _binary(labels, "labels")
    candidate = _binary(candidate_labels, "candidate_labels")
    baseline = _binary(baseline_labels, "baseline_labels")
    _check_lengths(labels=labels, candidate_labels=candidate, baseline_labels=baseline)

    total = len(labels)
    cells = np.bincount(labels * 4 + candidate * 2 + baseline, minlength=8)
    difference = float(_differences(cells[np.newaxis, :], total, metric)[0])

    rng = np.random.default_rng(seed)
    frequencies = cells / total
    differences = np.empty(resamples)
    for start in range(0, resamples, _CHUNK):
        size = min(_CHUNK, resamples - start)
        counts = rng.multinomial(total, frequencies, size=size)
        differences[start:start + size] = _differences(counts, total, metric)
    low, high = np.quantile(differences, [(1.0 - confidence) / 2, (1.0 + confidence) / 2])
    return Interval(difference=difference, ci_low=float(low), ci_high=float(high),
                    confidence=float(confidence))


def not_worse(interval: Interval, margin: float) -> bool:
    """True unless the whole interval lies below -margin: the candidate is rejected only
    when it is worse by more than the margin with the interval's confidence."""
    return interval.ci_high >= -margin


def better(interval: Interval) -> bool:
    """True when the whole interval lies above 0: better with the interval's confidence."""
    return interval.ci_low > 0


def _signed(value: float) -> str:
    # round first and add 0.0 so that a tiny negative prints as +0.0000, not -0.0000
    return f"{round(value, 4) + 0.0:+.4f}"


def describe(name: str, interval: Interval, versus: str) -> str:
    """One line for logs and failure reasons, e.g.
    "accuracy -0.0010 (95% CI -0.0120..+0.0100) vs version 1"."""
    percent = round(interval.confidence * 100)
    return (f"{name} {_signed(interval.difference)} ({percent}% CI "
            f"{_signed(interval.ci_low)}..{_signed(interval.ci_high)}) vs {versus}")
