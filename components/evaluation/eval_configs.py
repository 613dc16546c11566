"""The two TFMA EvalConfigs of the blessing gate.

TFMA compares a candidate with one baseline per EvalConfig, so there are two:
- vs the not-fine-tuned model, on every run: accuracy and F1 must clear the
  floors and be strictly higher than that model's;
- vs the served model (the newest version in the serving directory), once there
  is one: accuracy and F1 may be worse by at most the margin, on all eval pairs
  and on the eval pairs of every span of the training window (no forgetting).
`components.evaluation.gate` blesses only a candidate that passes both.
"""

from __future__ import annotations

import json

import tensorflow_model_analysis as tfma

from components.features import (CANDIDATE, DECISION_THRESHOLD, GATED_METRICS, LABEL,
                                 NOT_FINE_TUNED, SERVED, SLICE_FEATURE, SPAN_FEATURE)

REPORTED_METRICS = ("ExampleCount", "Precision", "Recall", "AUC", "AUCPrecisionRecall",
                    "Calibration", "MeanLabel", "MeanPrediction", "CalibrationPlot",
                    "ConfusionMatrixPlot")
# "Strictly higher" as a TFMA change threshold: diff >= this epsilon.
STRICTLY_HIGHER = 1e-6


def _model_spec(name: str, is_baseline: bool) -> tfma.ModelSpec:
    return tfma.ModelSpec(
        name=name, is_baseline=is_baseline, signature_name="serving_default",
        label_key=LABEL, prediction_key="probability",
        preprocessing_function_names=["transform_features"])


OVERALL = tfma.SlicingSpec()
PER_SPAN = tfma.SlicingSpec(feature_keys=[SPAN_FEATURE])


def _eval_config(baseline: str, thresholds: dict[str, tfma.MetricThreshold],
                 gated_slices: list[tfma.SlicingSpec]) -> tfma.EvalConfig:
    # Gate on the given slices only: a threshold without a slice would apply to every slice.
    metrics = [tfma.MetricConfig(class_name=class_name, per_slice_thresholds=[
        tfma.PerSliceMetricThreshold(slicing_specs=gated_slices,
                                     threshold=thresholds[class_name])])
        for class_name in GATED_METRICS]
    metrics += [tfma.MetricConfig(class_name=class_name) for class_name in REPORTED_METRICS]
    metrics.append(tfma.MetricConfig(
        class_name="ConfusionMatrixAtThresholds",
        config=json.dumps({"thresholds": [DECISION_THRESHOLD]})))
    return tfma.EvalConfig(
        model_specs=[_model_spec(CANDIDATE, False), _model_spec(baseline, True)],
        slicing_specs=[OVERALL, tfma.SlicingSpec(feature_keys=[SLICE_FEATURE]), PER_SPAN],
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)])


def _at_least(difference: float) -> tfma.GenericChangeThreshold:
    return tfma.GenericChangeThreshold(direction=tfma.MetricDirection.HIGHER_IS_BETTER,
                                       absolute={"value": difference})


def not_fine_tuned_eval_config(min_accuracy: float, min_f1: float) -> tfma.EvalConfig:
    """Candidate vs the not-fine-tuned model: the floors, and strictly better on both."""
    floors = {"BinaryAccuracy": min_accuracy, "F1Score": min_f1}
    return _eval_config(NOT_FINE_TUNED, {
        class_name: tfma.MetricThreshold(
            value_threshold=tfma.GenericValueThreshold(lower_bound={"value": floor}),
            change_threshold=_at_least(STRICTLY_HIGHER))
        for class_name, floor in floors.items()}, [OVERALL])


def served_model_eval_config(margin: float) -> tfma.EvalConfig:
    """Candidate vs the served model: worse by at most `margin` on both."""
    return _eval_config(SERVED, {
        class_name: tfma.MetricThreshold(change_threshold=_at_least(-margin))
        for class_name in GATED_METRICS}, [OVERALL, PER_SPAN])
