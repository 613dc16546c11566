"""The TFMA evaluation and blessing gate: candidate vs baseline in one run."""

from __future__ import annotations

import json

import tensorflow_model_analysis as tfma

from components.transform import LABEL, SLICE_FEATURE

CANDIDATE = "candidate"
BASELINE = "baseline"
DECISION_THRESHOLD = 0.5
# Gated metrics: TFMA metric class -> the metric name it reports.
GATED_METRICS = {"BinaryAccuracy": "binary_accuracy", "F1Score": "f1_score"}
REPORTED_METRICS = ("ExampleCount", "Precision", "Recall", "AUC", "AUCPrecisionRecall",
                    "Calibration", "MeanLabel", "MeanPrediction", "CalibrationPlot",
                    "ConfusionMatrixPlot")
# With a margin of 0 the candidate must be strictly better: diff >= this epsilon.
STRICTLY_HIGHER = 1e-6


def _model_spec(name: str, is_baseline: bool) -> tfma.ModelSpec:
    return tfma.ModelSpec(
        name=name, is_baseline=is_baseline, signature_name="serving_default",
        label_key=LABEL, prediction_key="probability",
        preprocessing_function_names=["transform_features"])


def _gate(floor: float, margin: float) -> tfma.MetricThreshold:
    """Absolute floor, and no worse than the baseline by more than `margin`."""
    return tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": floor}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -margin if margin > 0 else STRICTLY_HIGHER}))


def build_eval_config(min_accuracy: float, min_f1: float, baseline_margin: float
                      ) -> tfma.EvalConfig:
    """EvalConfig for the candidate and its baseline, overall and by word overlap."""
    floors = {"BinaryAccuracy": min_accuracy, "F1Score": min_f1}
    metrics = [tfma.MetricConfig(class_name=class_name,
                                 threshold=_gate(floors[class_name], baseline_margin))
               for class_name in GATED_METRICS]
    metrics += [tfma.MetricConfig(class_name=class_name) for class_name in REPORTED_METRICS]
    metrics.append(tfma.MetricConfig(
        class_name="ConfusionMatrixAtThresholds",
        config=json.dumps({"thresholds": [DECISION_THRESHOLD]})))
    return tfma.EvalConfig(
        model_specs=[_model_spec(CANDIDATE, False), _model_spec(BASELINE, True)],
        slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=[SLICE_FEATURE])],
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)])
