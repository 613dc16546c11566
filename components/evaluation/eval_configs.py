"""The two TFMA EvalConfigs of the blessing gate.

TFMA compares a candidate with one baseline per EvalConfig, so there are two:
- vs the not-fine-tuned model, on every run: accuracy and F1 must clear the
  floors (TFMA's thresholds);
- vs the served model (the newest version in the serving directory), once there
  is one: no threshold; it measures both models on all eval pairs and on the
  eval pairs of every span of the training window.
Both measure the baseline too. The comparisons themselves are decided by
`components.evaluation.gate` on paired intervals, not by TFMA's point estimates.
"""

from __future__ import annotations

import json

import tensorflow_model_analysis as tfma

from components.features import (CANDIDATE, DECISION_THRESHOLD, GATED_METRICS, LABEL,
                                 NOT_FINE_TUNED, SERVED, SLICE_FEATURE, SPAN_FEATURE)

REPORTED_METRICS = ("ExampleCount", "Precision", "Recall", "AUC", "AUCPrecisionRecall",
                    "Calibration", "MeanLabel", "MeanPrediction", "CalibrationPlot",
                    "ConfusionMatrixPlot")


def _model_spec(name: str, is_baseline: bool) -> tfma.ModelSpec:
    return tfma.ModelSpec(
        name=name, is_baseline=is_baseline, signature_name="serving_default",
        label_key=LABEL, prediction_key="probability",
        preprocessing_function_names=["transform_features"])


OVERALL = tfma.SlicingSpec()
PER_SPAN = tfma.SlicingSpec(feature_keys=[SPAN_FEATURE])


def _eval_config(baseline: str, floors: dict[str, float]) -> tfma.EvalConfig:
    # The floors hold on all pairs only: a threshold without a slice would apply to every slice.
    metrics = [tfma.MetricConfig(class_name=class_name, per_slice_thresholds=[
        tfma.PerSliceMetricThreshold(slicing_specs=[OVERALL], threshold=tfma.MetricThreshold(
            value_threshold=tfma.GenericValueThreshold(lower_bound={"value": floors[class_name]})))]
        if class_name in floors else [])
        for class_name in GATED_METRICS]
    metrics += [tfma.MetricConfig(class_name=class_name) for class_name in REPORTED_METRICS]
    metrics.append(tfma.MetricConfig(
        class_name="ConfusionMatrixAtThresholds",
        config=json.dumps({"thresholds": [DECISION_THRESHOLD]})))
    return tfma.EvalConfig(
        model_specs=[_model_spec(CANDIDATE, False), _model_spec(baseline, True)],
        slicing_specs=[OVERALL, tfma.SlicingSpec(feature_keys=[SLICE_FEATURE]), PER_SPAN],
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)])


def not_fine_tuned_eval_config(min_accuracy: float, min_f1: float) -> tfma.EvalConfig:
    """Candidate vs the not-fine-tuned model, with the floors on accuracy and F1."""
    return _eval_config(NOT_FINE_TUNED, {"BinaryAccuracy": min_accuracy, "F1Score": min_f1})


def served_model_eval_config() -> tfma.EvalConfig:
    """Candidate vs the served model: both measured, overall and span by span; no threshold."""
    return _eval_config(SERVED, {})
