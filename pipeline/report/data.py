"""The report's data: the latest run read from ML Metadata and TFMA into plain dataclasses.

`gather_report` reads the run (`results.run_results`), the verdict and overall
metrics (`results.outcome`), the per-slice metrics and plots of every model
from the Evaluators' TFMA output, the StatisticsGen statistics
(`results.data_summary`), the span facts (`results.spans`: span, training
window, warm start, drift verdict, and the candidate and served model span by
span from the outcome) and every run of the store (`results.runs`).
Everything below `gather_report` is pure: it works on plain dicts and lists
(TFMA's JSON-like structures), so it is unit-tested without TensorFlow. Heavy
modules (TFMA, TensorFlow) are imported only inside `gather_report`.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from typing import Any, Iterable, Mapping

from components.features import QUESTIONS

ROLE_COLORS = {"candidate": "#2563eb", "not_fine_tuned": "#ea580c", "served": "#16a34a"}
CALIBRATION_BINS = 10


@dataclasses.dataclass
class ModelReport:
    """Everything the page shows about one model of the evaluation."""

    name: str  # role and TFMA model name: candidate, not_fine_tuned or served
    title: str  # shown to people
    color: str
    overall: dict[str, float]
    confusion: dict[str, float] | None  # TP, FP, FN, TN at the decision threshold
    pr_curve: list[tuple[float, float]]  # (recall, precision)
    operating_point: tuple[float, float] | None  # (recall, precision) at the threshold
    calibration: list[tuple[float, float, float]]  # (mean prediction, fraction positive, n)
    slices: dict[str, dict[str, float]]  # slice value -> metric -> value


@dataclasses.dataclass
class SplitReport:
    """StatisticsGen's numbers for one split."""

    name: str
    pairs: int
    duplicates: int
    not_duplicates: int
    avg_length: dict[str, float | None]  # question feature -> average length in bytes


@dataclasses.dataclass
class ReportData:
    """The whole report as plain values; `render_html` turns it into a page."""

    run_id: str
    run_time: str
    metadata_path: str
    data_location: str | None
    components: list[tuple[str, bool]]  # (node id, reused from cache)
    splits: list[SplitReport]
    evaluated: bool = False
    blessed: bool | None = None
    reasons: list[str] = dataclasses.field(default_factory=list)
    pushed_to: str | None = None
    majority_accuracy: float | None = None
    models: list[ModelReport] = dataclasses.field(default_factory=list)
    table_metrics: dict[str, str] = dataclasses.field(default_factory=dict)
    gated_metrics: tuple[str, ...] = ()
    slice_feature: str = ""
    slice_values: list[str] = dataclasses.field(default_factory=list)
    threshold: float = 0.5
    missing: list[str] = dataclasses.field(default_factory=list)  # what could not be read
    runs: list[Any] = dataclasses.field(default_factory=list)  # every run: results.runs.RunSummary
    # span, train_spans, warm_start, drift (`results.spans.span_details`) and per_span
    # (`RunOutcome.spans`), those the run recorded; {} for a run from before spans.
    spans: dict[str, Any] = dataclasses.field(default_factory=dict)
    # The gate's comparisons with their intervals, and the serving check's result.
    comparisons: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    serving_check: dict[str, Any] | None = None

    @property
    def has_spans(self) -> bool:
        """Whether the run ingested a span (span > 0) or recorded a drift or warm-start."""
        return bool(self.spans.get("span") or self.spans.get("drift")
                    or self.spans.get("warm_start"))


def gather_report(metadata_path: str) -> ReportData:
    """Reads the latest run from ML Metadata and its artifacts into a `ReportData`."""
    # pylint: disable=import-outside-toplevel
    from pipeline.results import run_results

    run = run_results.latest_run(metadata_path)
    run_id, run_time, data_location = _run_context(metadata_path)
    has_statistics = run_results.has_output(run, "StatisticsGen", "statistics")
    data = ReportData(
        run_id=run_id, run_time=run_time, metadata_path=metadata_path,
        data_location=data_location,
        components=sorted((node, result.cached) for node, result in run.items()),
        splits=_split_reports(run["StatisticsGen"]) if has_statistics else [])
    if not has_statistics:
        data.missing.append("StatisticsGen produced no statistics in this run")
    _add_spans(data, run)
    if run_results.has_output(run, "Evaluator", "evaluation"):
        _add_evaluation(data, run)
    else:
        data.missing.append("the Evaluator produced no evaluation in this run")
    _add_every_run(data)
    return data


def _add_spans(data: ReportData, run: Mapping[str, Any]) -> None:
    """The span facts of the run, also when it stopped before the evaluation."""
    from pipeline.results import spans  # pylint: disable=import-outside-toplevel

    try:
        data.spans = spans.span_details(run)
    except Exception as error:  # pylint: disable=broad-except
        data.missing.append(f"could not read the span records: {type(error).__name__}: {error}")


def _add_every_run(data: ReportData) -> None:
    """Every run of the store, side by side (`qqp-tfx runs`)."""
    from pipeline.results import runs  # pylint: disable=import-outside-toplevel

    try:
        data.runs = runs.read_runs(data.metadata_path)
    except Exception as error:  # pylint: disable=broad-except
        # The latest run's report stands on its own; the listing is extra.
        data.missing.append(f"could not list every run: {type(error).__name__}: {error}")


def _run_context(metadata_path: str) -> tuple[str, str, str | None]:
    """The newest run's id and start time, and ExampleGen's input directory."""
    # pylint: disable=import-outside-toplevel,protected-access
    from pipeline.results import run_results

    store = run_results.open_store(metadata_path)
    run = max(store.get_contexts_by_type("pipeline_run"),
              key=lambda context: context.create_time_since_epoch)
    started = datetime.datetime.fromtimestamp(run.create_time_since_epoch / 1000,
                                              tz=datetime.timezone.utc)
    data_location = None
    for execution in store.get_executions_by_context(run.id):
        if "input_base" in execution.custom_properties:
            data_location = execution.custom_properties["input_base"].string_value
    return run.name, started.strftime("%Y-%m-%d %H:%M:%S UTC"), data_location


def _split_reports(statistics_gen: Any) -> list[SplitReport]:
    # pylint: disable=import-outside-toplevel,protected-access
    from pipeline.results import data_summary, run_results

    artifact = statistics_gen.outputs["statistics"][0]
    return [split_report(split, data_summary.load_split_statistics(artifact.uri, split))
            for split in run_results.split_names(artifact)]


def split_report(split: str, statistics: Any) -> SplitReport:
    """Pairs, duplicates and average question lengths of one split's statistics."""
    from pipeline.results import data_summary  # pylint: disable=import-outside-toplevel

    counts = data_summary.label_counts(statistics)
    lengths: dict[str, float | None] = {question: None for question in QUESTIONS}
    for feature in statistics.features:
        if len(feature.path.step) == 1 and feature.path.step[0] in lengths:
            lengths[feature.path.step[0]] = float(feature.string_stats.avg_length)
    return SplitReport(name=split, pairs=int(statistics.num_examples),
                       duplicates=counts.get("1", 0), not_duplicates=counts.get("0", 0),
                       avg_length=lengths)


def _add_evaluation(data: ReportData, run: Mapping[str, Any]) -> None:
    # pylint: disable=import-outside-toplevel
    from components.features import (DECISION_THRESHOLD, GATED_METRICS, METRIC_TITLES,
                                     OVERLAP_BUCKETS, SLICE_FEATURE)
    from pipeline.results import outcome, run_results

    data.evaluated = True
    data.table_metrics = dict(METRIC_TITLES)
    data.gated_metrics = tuple(GATED_METRICS.values())
    data.slice_feature = SLICE_FEATURE
    data.threshold = DECISION_THRESHOLD
    if not run_results.has_output(run, "Pusher", "pushed_model"):
        data.missing.append("the run stopped before the blessing and the push")
        return
    verdict = outcome.collect(run_results.latest_run_id(data.metadata_path), dict(run))
    data.blessed, data.reasons = verdict.blessed, verdict.reasons
    data.pushed_to, data.majority_accuracy = verdict.pushed_to, verdict.majority_accuracy
    data.spans = {**data.spans, **verdict.spans}
    data.comparisons, data.serving_check = verdict.comparisons, verdict.serving_check
    seen_values: set[str] = set()
    for role, _, evaluation_uri in outcome.evaluated_models(dict(run)):
        model = model_report(role, evaluation_uri, verdict.model(role).metrics, data.threshold)
        seen_values.update(model.slices)
        if not model.pr_curve:
            data.missing.append(f"no plots for the {role} model")
        data.models.append(model)
    data.slice_values = [value for value in OVERLAP_BUCKETS if value in seen_values]
    data.slice_values += sorted(seen_values - set(OVERLAP_BUCKETS))
    if not data.slice_values:
        data.missing.append(f"the evaluation has no {SLICE_FEATURE} slices")


def model_report(role: str, evaluation_uri: str, overall: dict[str, float],
                 threshold: float) -> ModelReport:
    """One model's results in a TFMA evaluation (`role` is its TFMA model name)."""
    # pylint: disable=import-outside-toplevel
    import tensorflow_model_analysis as tfma

    from components.features import SLICE_FEATURE
    from pipeline.results import outcome

    result = tfma.load_eval_result(evaluation_uri, model_name=role)
    metrics = dict(result.slicing_metrics)
    overall_plot = plot_entry(dict(result.plots).get(()))
    matrix = confusion_matrix(metric_entry(metrics.get(())), threshold)
    if matrix is None and overall_plot:
        matrix = confusion_matrix(overall_plot, threshold)
    return ModelReport(
        name=role, title=outcome.ROLE_TITLES[role], color=ROLE_COLORS[role],
        overall=overall, confusion=matrix, pr_curve=pr_curve(overall_plot or {}),
        operating_point=operating_point(overall_plot or {}, threshold),
        calibration=calibration_curve(overall_plot or {}),
        slices=slice_metrics(result.slicing_metrics, SLICE_FEATURE))


# ------------------------------------------------------------- TFMA structures


def number(value: Any) -> float:
    """A TFMA JSON number: a float, "NaN"/"Infinity" strings, or {"doubleValue": x}."""
    if isinstance(value, Mapping):
        value = value.get("doubleValue", math.nan)
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def metric_entry(by_output: Mapping[str, Any] | None) -> dict[str, Any]:
    """The metrics of the single (unnamed) output and sub-key of a slice."""
    if not by_output:
        return {}
    return dict(by_output.get("", {}).get("", {}))


def plot_entry(by_output: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The plots of the single (unnamed) output and sub-key of a slice, if any."""
    entry = metric_entry(by_output)
    return entry or None


def scalar_metrics(entry: Mapping[str, Any]) -> dict[str, float]:
    """Scalar metrics (those with a doubleValue) of one slice's metric entry."""
    return {name: number(value) for name, value in entry.items()
            if isinstance(value, Mapping) and "doubleValue" in value}


def slice_metrics(slicing_metrics: Iterable[tuple[Any, Mapping[str, Any]]], feature: str
                  ) -> dict[str, dict[str, float]]:
    """Slice value -> scalar metrics, for the slices on `feature` alone."""
    slices = {}
    for slice_key, by_output in slicing_metrics:
        if len(slice_key) == 1 and slice_key[0][0] == feature:
            value = slice_key[0][1]
            value = value.decode("utf-8") if isinstance(value, bytes) else str(value)
            slices[value] = scalar_metrics(metric_entry(by_output))
    return slices


def _matrices(entry: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The confusion matrices of a metrics entry (as a metric) or a plot entry."""
    holder = entry.get("confusion_matrix_at_thresholds", entry)
    return list(holder.get("confusionMatrixAtThresholds", {}).get("matrices", []))


def _counts(matrix: Mapping[str, Any]) -> dict[str, float]:
    # Protobuf JSON leaves out zeros, so a missing count is 0.
    return {short: number(matrix.get(field, 0.0)) for short, field in (
        ("TP", "truePositives"), ("FP", "falsePositives"),
        ("FN", "falseNegatives"), ("TN", "trueNegatives"))}


def confusion_matrix(entry: Mapping[str, Any], threshold: float) -> dict[str, float] | None:
    """TP, FP, FN, TN at `threshold` from a metrics or plot entry; None if absent."""
    for matrix in _matrices(entry):
        if abs(number(matrix.get("threshold", 0.0)) - threshold) < 1e-9:
            return _counts(matrix)
    return None


def _precision_recall(matrix: Mapping[str, Any]) -> tuple[float, float] | None:
    counts = _counts(matrix)
    positives = counts["TP"] + counts["FN"]
    predicted = counts["TP"] + counts["FP"]
    if positives <= 0:
        return None
    recall = counts["TP"] / positives
    # No positive predictions: precision is undefined; TFMA (and sklearn) use 1.
    precision = counts["TP"] / predicted if predicted > 0 else 1.0
    return recall, precision


def pr_curve(plot: Mapping[str, Any]) -> list[tuple[float, float]]:
    """(recall, precision) over all thresholds of a plot entry, repeated points removed."""
    points: list[tuple[float, float]] = []
    matrices = sorted(_matrices(plot), key=lambda matrix: number(matrix.get("threshold", 0.0)))
    for matrix in matrices:
        point = _precision_recall(matrix)
        if point is not None and (not points or points[-1] != point):
            points.append(point)
    return points


def operating_point(plot: Mapping[str, Any], threshold: float) -> tuple[float, float] | None:
    """(recall, precision) of a plot entry at the decision threshold."""
    for matrix in _matrices(plot):
        if abs(number(matrix.get("threshold", 0.0)) - threshold) < 1e-9:
            return _precision_recall(matrix)
    return None


def calibration_curve(plot: Mapping[str, Any], bins: int = CALIBRATION_BINS
                      ) -> list[tuple[float, float, float]]:
    """Reliability curve: (mean prediction, fraction of duplicates, examples) per bin.

    TFMA's calibration histogram has 1,000 fine buckets; they are merged into
    `bins` equal-width bins by each bucket's mean prediction. Empty bins are left out.
    """
    buckets = plot.get("calibrationHistogramBuckets", {}).get("buckets", [])
    totals = [[0.0, 0.0, 0.0] for _ in range(bins)]  # examples, label sum, prediction sum
    for bucket in buckets:
        weight = number(bucket.get("numWeightedExamples", 0.0))
        if not weight > 0:
            continue
        prediction = number(bucket.get("totalWeightedRefinedPrediction", 0.0))
        index = min(max(int(prediction / weight * bins), 0), bins - 1)
        totals[index][0] += weight
        totals[index][1] += number(bucket.get("totalWeightedLabel", 0.0))
        totals[index][2] += prediction
    return [(prediction / weight, label / weight, weight)
            for weight, label, prediction in totals if weight > 0]
