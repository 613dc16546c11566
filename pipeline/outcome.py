"""What a pipeline run decided: candidate vs baseline metrics, blessing, push."""

from __future__ import annotations

import dataclasses
import math

from pipeline.evaluation import BASELINE, CANDIDATE, GATED_METRICS
from pipeline.run_results import NodeResult

# Metric name in TFMA -> column title in the summary table.
TABLE_METRICS = {"binary_accuracy": "accuracy", "f1_score": "F1", "precision": "precision",
                 "recall": "recall", "auc": "ROC AUC", "auc_precision_recall": "PR AUC"}


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """Overall metrics of both models, the gate's verdict and where the model went."""

    metrics: dict[str, dict[str, float]]  # model name -> metric name -> value
    baseline_description: str
    blessed: bool
    reasons: list[str]
    pushed_to: str | None


def overall_metrics(evaluation_uri: str, model_name: str) -> dict[str, float]:
    """Scalar metrics of the overall slice for one model of a TFMA evaluation."""
    import tensorflow_model_analysis as tfma  # pylint: disable=import-outside-toplevel

    result = tfma.load_eval_result(evaluation_uri, model_name=model_name)
    for slice_key, metrics in result.slicing_metrics:
        if slice_key == ():
            return {name: float(value["doubleValue"])
                    for name, value in metrics[""][""].items() if "doubleValue" in value}
    raise LookupError(f"{evaluation_uri}: no overall slice for model {model_name}")


def gate_reasons(evaluation_uri: str) -> tuple[bool, list[str]]:
    """Whether TFMA's validation passed, and why not in plain words."""
    import tensorflow_model_analysis as tfma  # pylint: disable=import-outside-toplevel

    validation = tfma.load_validation_result(evaluation_uri)
    reasons = []
    for slice_failures in validation.metric_validations_per_slice:
        for failure in slice_failures.failures:
            name = failure.metric_key.name
            value = failure.metric_value.double_value.value
            if failure.metric_key.is_diff:
                reasons.append(f"{name} is {value:+.4f} vs the baseline "
                               f"(needs >= {failure.metric_threshold.change_threshold.absolute.value:+.4f})")
            else:
                reasons.append(f"{name} = {value:.4f} is below the floor "
                               f"{failure.metric_threshold.value_threshold.lower_bound.value:.4f}")
    if validation.validation_ok:
        gated = " and ".join(GATED_METRICS.values())
        reasons.append(f"{gated} clear their floors and the comparison with the baseline")
    return validation.validation_ok, reasons


def describe_baseline(evaluator: NodeResult) -> str:
    """Which model the candidate was compared with."""
    model = evaluator.inputs["baseline_model"][0]
    if "/BaselineTrainer/" in model.uri:
        return "not fine-tuned (frozen encoder, head fitted)"
    return f"latest blessed model ({model.uri})"


def collect(run: dict[str, NodeResult]) -> RunOutcome:
    """Reads the outcome of a finished run from its Evaluator and Pusher outputs."""
    evaluation_uri = run["Evaluator"].output_uri("evaluation")
    blessed, reasons = gate_reasons(evaluation_uri)
    pushed = run["Pusher"].outputs["pushed_model"][0]
    pushed_to = None
    if pushed.custom_properties["pushed"].int_value == 1:
        pushed_to = pushed.custom_properties["pushed_destination"].string_value
    return RunOutcome(
        metrics={name: overall_metrics(evaluation_uri, name) for name in (CANDIDATE, BASELINE)},
        baseline_description=describe_baseline(run["Evaluator"]),
        blessed=blessed, reasons=reasons, pushed_to=pushed_to)


def _cell(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.4f}"


def format_table(outcome: RunOutcome) -> str:
    """A plain-text comparison table plus the verdict."""
    header = f"{'model':<24}" + "".join(f"{title:>11}" for title in TABLE_METRICS.values())
    rows = [header, "-" * len(header)]
    for model_name, label in ((CANDIDATE, "fine-tuned candidate"), (BASELINE, "baseline")):
        values = outcome.metrics[model_name]
        rows.append(f"{label:<24}" + "".join(f"{_cell(values.get(metric)):>11}"
                                             for metric in TABLE_METRICS))
    rows.append(f"baseline: {outcome.baseline_description}")
    verdict = "BLESSED" if outcome.blessed else "NOT BLESSED"
    rows.append(f"{verdict}: " + "; ".join(outcome.reasons))
    rows.append(f"pushed to: {outcome.pushed_to}" if outcome.pushed_to else
                "pushed: nothing (the candidate was not blessed)")
    return "\n".join(rows)
