"""The gate's comparisons: the candidate against each baseline, pair for pair, with intervals.

On the same eval pairs, each comparison is the difference of a metric (accuracy, F1)
between the candidate and a baseline with its paired 95% interval
(components.evaluation.intervals), and decides on the interval, not the point:
- vs the not-fine-tuned model the candidate must be better with that confidence
  (the whole interval above 0), on accuracy and on F1;
- vs the served model it must not be worse by more than the margin with that
  confidence (rejected only when the whole interval lies below -margin), on all
  pairs and, with more than one span in the window, on each span's pairs (no
  forgetting). A retrain one pair better or worse than the served model is noise
  and passes; a clearly worse one does not.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from components.evaluation import intervals
from components.features import NOT_FINE_TUNED, SERVED

CONFIDENCE = 0.95
METRIC_NAMES = {"accuracy": "accuracy", "f1": "F1"}  # key -> how people read it
ALL_PAIRS = "all pairs"


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One metric of the candidate vs one baseline on one set of eval pairs."""

    versus: str  # NOT_FINE_TUNED or SERVED
    version: int | None  # the served version compared with (None: the not-fine-tuned model)
    slice: str  # ALL_PAIRS or "span N"
    metric: str  # a key of METRIC_NAMES
    interval: intervals.Interval
    passed: bool

    def to_json(self) -> dict:
        """The comparison as the report's and the model card's JSON holds it."""
        return {"versus": self.versus, "version": self.version, "slice": self.slice,
                "metric": self.metric, "difference": self.interval.difference,
                "ci_low": self.interval.ci_low, "ci_high": self.interval.ci_high,
                "confidence": self.interval.confidence, "passed": self.passed}


def served_model_title(version: int) -> str:
    """How verdicts name the served model: "the served model (version 3)"."""
    return f"the served model (version {version})"


def _interval(labels: np.ndarray, candidate: np.ndarray, baseline: np.ndarray,
              metric: str) -> intervals.Interval:
    return intervals.paired_interval(labels, candidate, baseline, metric, confidence=CONFIDENCE)


def versus_not_fine_tuned(labels: np.ndarray, candidate: np.ndarray,
                          not_fine_tuned: np.ndarray) -> list[Comparison]:
    """Accuracy and F1 vs the not-fine-tuned model: passed when better with CONFIDENCE."""
    comparisons = []
    for metric in METRIC_NAMES:
        interval = _interval(labels, candidate, not_fine_tuned, metric)
        comparisons.append(Comparison(NOT_FINE_TUNED, None, ALL_PAIRS, metric, interval,
                                      intervals.better(interval)))
    return comparisons


def versus_served(labels: np.ndarray, spans: np.ndarray, candidate: np.ndarray,
                  served: np.ndarray, version: int, margin: float) -> list[Comparison]:
    """Accuracy and F1 vs the served model on all pairs and, with more than one span, on
    each span's pairs: passed unless worse by more than `margin` with CONFIDENCE."""
    slices = {ALL_PAIRS: np.ones(len(labels), bool)}
    span_numbers = sorted(set(spans.tolist()))
    if len(span_numbers) > 1:
        slices.update({f"span {span}": spans == span for span in span_numbers})
    comparisons = []
    for name, rows in slices.items():
        for metric in METRIC_NAMES:
            interval = _interval(labels[rows], candidate[rows], served[rows], metric)
            comparisons.append(Comparison(SERVED, version, name, metric, interval,
                                          intervals.not_worse(interval, margin)))
    return comparisons


def describe(comparison: Comparison, versus: str | None = None) -> str:
    """"accuracy -0.0010 (95% CI -0.0120..+0.0100) vs version 1", with " on span N" for a span
    (`versus`: how to name the baseline; default "version N" or "the not-fine-tuned model")."""
    if versus is None:
        versus = (f"version {comparison.version}" if comparison.versus == SERVED
                  else "the not-fine-tuned model")
    where = "" if comparison.slice == ALL_PAIRS else f" on {comparison.slice}"
    return intervals.describe(METRIC_NAMES[comparison.metric] + where, comparison.interval,
                              versus)


def failure_line(comparison: Comparison, margin: float) -> str:
    """Why a failed comparison failed, in words, with its interval."""
    percent = f"{round(comparison.interval.confidence * 100)}%"
    if comparison.versus == SERVED:
        return (f"{describe(comparison, served_model_title(comparison.version))}: worse by "
                f"more than the margin ({margin:.4f}) with {percent} confidence")
    return f"{describe(comparison)}: not better with {percent} confidence"
