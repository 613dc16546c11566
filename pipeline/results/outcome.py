"""What a pipeline run decided: every model's metrics, the blessing, the push.

Reads the run's two Evaluators (candidate vs not-fine-tuned model, candidate
vs the served model) and the BlessingGate's verdict from ML Metadata
records (`run_results`); `format_table` and `to_json` present it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any

from components.evaluation.blessing_keys import NO_BASELINE_KEY
from components.evaluation.figures import FIGURES_KEY, JSON_METRICS, overall_metrics
from components.serving.check_component import RESULT_KEY as SERVING_CHECK_KEY
from components.features import CANDIDATE, METRIC_TITLES, NOT_FINE_TUNED, SERVED
from components.evaluation.per_span import per_span
from pipeline.results.run_results import NodeResult
from pipeline.results.spans import span_details

ROLE_TITLES = {CANDIDATE: "fine-tuned candidate", NOT_FINE_TUNED: "not fine-tuned (cosine)",
               SERVED: "served model"}
SERVING_SUBDIR = "Format-Serving"  # where TFX Trainers put the SavedModel in a Model artifact


@dataclasses.dataclass(frozen=True)
class ModelResult:
    """One evaluated model: its role, its SavedModel directory and its overall metrics."""

    role: str
    uri: str
    metrics: dict[str, float]  # TFMA metric name -> value


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """Overall metrics of every model, the gate's verdict and where the model went."""

    run_id: str
    models: list[ModelResult]
    blessed: bool
    reasons: list[str]
    pushed_to: str | None
    already_served: bool  # the pushed model was identical to an existing version
    eval_examples: int
    majority_accuracy: float
    # span, train_spans, warm_start, drift, per_span (`pipeline.results.spans`)
    spans: dict[str, Any] = dataclasses.field(default_factory=dict)
    # Each comparison with its interval (`components.evaluation.comparisons`), as the gate
    # recorded it; [] for a run from before the paired gate.
    comparisons: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    # The ServingCheck's result (`components.serving.check`); None: the run had none.
    serving_check: dict[str, Any] | None = None

    def model(self, role: str) -> ModelResult | None:
        """The model with that role, if it was evaluated in this run."""
        return next((model for model in self.models if model.role == role), None)


def serving_dir(model_artifact: Any) -> str:
    """The SavedModel directory inside a Trainer's Model artifact."""
    return os.path.join(model_artifact.uri, SERVING_SUBDIR)


def _nothing_served(served_model_evaluator: NodeResult) -> bool:
    blessing = served_model_evaluator.outputs["blessing"][0]
    return (NO_BASELINE_KEY in blessing.custom_properties
            and blessing.custom_properties[NO_BASELINE_KEY].int_value == 1)


def evaluated_models(run: dict[str, NodeResult]) -> list[tuple[str, str, str]]:
    """(role, SavedModel dir, evaluation URI) of each model the run's Evaluators measured."""
    evaluator = run["Evaluator"]
    models = [(CANDIDATE, serving_dir(evaluator.inputs["model"][0]),
               evaluator.output_uri("evaluation")),
              (NOT_FINE_TUNED, serving_dir(evaluator.inputs["baseline_model"][0]),
               evaluator.output_uri("evaluation"))]
    served = run.get("ServedModelEvaluator")
    if served is not None and not _nothing_served(served):
        models.append((SERVED, serving_dir(served.inputs["baseline_model"][0]),
                       served.output_uri("evaluation")))
    return models


def blessing_verdict(blessing_gate: NodeResult) -> tuple[bool, list[str]]:
    """Whether the BlessingGate blessed the candidate, and its reasons in plain words."""
    blessing = blessing_gate.outputs["blessing"][0]
    return (blessing.custom_properties["blessed"].int_value == 1,
            json.loads(blessing.custom_properties["verdict"].string_value))


def gate_figures(blessing_gate: NodeResult) -> dict[str, Any]:
    """The figures the BlessingGate recorded ({} for a run from before they were)."""
    blessing = blessing_gate.outputs["blessing"][0]
    if FIGURES_KEY not in blessing.custom_properties:
        return {}
    return json.loads(blessing.custom_properties[FIGURES_KEY].string_value)


def serving_check_result(run: dict[str, NodeResult]) -> dict[str, Any] | None:
    """The ServingCheck's result document, if the run checked the candidate."""
    check = run.get("ServingCheck")
    if check is None or not check.outputs.get("infra_blessing"):
        return None
    infra_blessing = check.outputs["infra_blessing"][0]
    if SERVING_CHECK_KEY not in infra_blessing.custom_properties:
        return None
    return json.loads(infra_blessing.custom_properties[SERVING_CHECK_KEY].string_value)


def push_result(pusher: NodeResult) -> tuple[str | None, bool]:
    """Where the Pusher put the model (None: nothing pushed) and whether that version was
    already served (an identical model: nothing new written)."""
    pushed = pusher.outputs["pushed_model"][0]
    pushed_to = None
    if pushed.custom_properties["pushed"].int_value == 1:
        pushed_to = pushed.custom_properties["pushed_destination"].string_value
    already_served = ("already_served" in pushed.custom_properties
                      and pushed.custom_properties["already_served"].int_value == 1)
    return pushed_to, already_served


def collect(run_id: str, run: dict[str, NodeResult]) -> RunOutcome:
    """Reads the outcome of a run that got as far as the Pusher."""
    models = [ModelResult(role, uri, overall_metrics(evaluation_uri, role))
              for role, uri, evaluation_uri in evaluated_models(run)]
    blessed, reasons = blessing_verdict(run["BlessingGate"])
    pushed_to, already_served = push_result(run["Pusher"])
    candidate = models[0].metrics
    duplicate_rate = candidate.get("mean_label", float("nan"))
    majority = max(duplicate_rate, 1.0 - duplicate_rate)
    if majority == 1.0:
        reasons.append("the eval split holds one class only, so F1 is 0 or undefined for "
                       "every model")
    served = next((uri for role, _, uri in evaluated_models(run) if role == SERVED), None)
    spans = {**span_details(run),
             "per_span": per_span(run["Evaluator"].output_uri("evaluation"), served)}
    return RunOutcome(
        run_id=run_id, models=models, blessed=blessed, reasons=reasons, pushed_to=pushed_to,
        already_served=already_served,
        eval_examples=int(candidate.get("example_count", 0)), majority_accuracy=majority,
        spans=spans, comparisons=gate_figures(run["BlessingGate"]).get("comparisons", []),
        serving_check=serving_check_result(run))


def _number(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def to_json(outcome: RunOutcome) -> dict[str, Any]:
    """The machine-readable summary printed by `qqp-tfx report --format json`."""
    return {
        "run_id": outcome.run_id,
        "blessed": outcome.blessed,
        "pushed_to": outcome.pushed_to,
        "verdict": outcome.reasons,
        "eval_examples": outcome.eval_examples,
        "majority_accuracy": _number(outcome.majority_accuracy),
        "models": [{"role": model.role, "uri": model.uri,
                    "metrics": {key: _number(model.metrics.get(name))
                                for name, key in JSON_METRICS.items()}}
                   for model in outcome.models],
        **outcome.spans,
        "comparisons": outcome.comparisons,
        "serving_check": outcome.serving_check,
    }


def _cell(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.4f}"


def _span_rows(per_span_rows: list[dict[str, Any]]) -> list[str]:
    """Accuracy and F1 of the candidate (and the served model) on each span's eval pairs."""
    if not any(row["span"] for row in per_span_rows):
        return []
    rows = []
    for row in per_span_rows:
        served = row["served"] or {}
        candidate = row["candidate"]
        rows.append(f"  span {row['span']:<4} candidate accuracy {_cell(candidate.get('accuracy'))}"
                    f" F1 {_cell(candidate.get('f1'))}" + (
                        f" | served accuracy {_cell(served.get('accuracy'))} "
                        f"F1 {_cell(served.get('f1'))}" if served else ""))
    return ["By span (eval pairs of each span):", *rows]


def format_table(outcome: RunOutcome) -> str:
    """A plain-text comparison table (eval split) plus the verdict."""
    header = f"{'model':<26}" + "".join(f"{title:>11}" for title in METRIC_TITLES.values())
    rows = [f"Evaluation on the eval split ({outcome.eval_examples:,} pairs):", header,
            "-" * len(header)]
    for model in outcome.models:
        rows.append(f"{ROLE_TITLES[model.role]:<26}" + "".join(
            f"{_cell(model.metrics.get(metric)):>11}" for metric in METRIC_TITLES))
    rows.append(f"{'majority class':<26}{_cell(outcome.majority_accuracy):>11}")
    rows += _span_rows(outcome.spans.get("per_span", []))
    verdict = "BLESSED" if outcome.blessed else "NOT BLESSED"
    rows.append(f"{verdict}: " + "; ".join(outcome.reasons))
    if outcome.serving_check is not None and outcome.blessed:
        passed = "passed" if outcome.serving_check["passed"] else "FAILED"
        rows.append(f"serving check: {passed}: {outcome.serving_check['why']}")
    if outcome.already_served:
        rows.append(f"pushed: nothing new; this model is already served as {outcome.pushed_to}")
    elif outcome.pushed_to:
        rows.append(f"pushed to: {outcome.pushed_to}")
    elif outcome.blessed and outcome.serving_check and not outcome.serving_check["passed"]:
        rows.append("pushed: nothing (the serving check failed)")
    else:
        rows.append("pushed: nothing (the candidate was not blessed)")
    return "\n".join(rows)
