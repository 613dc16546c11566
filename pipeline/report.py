"""One self-contained HTML report of the latest pipeline run.

`write_report` reads the run from ML Metadata (`run_results`), the verdict and
overall metrics (`outcome`), the per-slice metrics and plots of both models
from the Evaluator's TFMA output, and the StatisticsGen statistics
(`data_summary`). Charts are inline SVG drawn here; the page needs no network.

Everything below `gather_report` is pure: it works on plain dicts and lists
(TFMA's JSON-like structures), so it is unit-tested without TensorFlow. Heavy
modules (TFMA, TensorFlow) are imported only inside `gather_report`.
"""

from __future__ import annotations

import dataclasses
import datetime
import html
import math
import os
from typing import Any, Iterable, Mapping, Sequence

ROLE_COLORS = {"candidate": "#2563eb", "not_fine_tuned": "#ea580c", "last_blessed": "#16a34a"}
GUIDE_COLOR = "#9ca3af"
CALIBRATION_BINS = 10
# Extra rows of the overall table, after outcome.TABLE_METRICS.
EXTRA_METRICS = {"calibration": "calibration (mean prediction / mean label)",
                 "example_count": "examples"}
SLICE_METRICS = {"binary_accuracy": "accuracy", "f1_score": "F1", "auc": "AUC"}
QUESTIONS = ("question1", "question2")


# --------------------------------------------------------------------------- data


@dataclasses.dataclass
class ModelReport:
    """Everything the page shows about one model of the evaluation."""

    name: str  # role and TFMA model name: candidate, not_fine_tuned or last_blessed
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


def write_report(metadata_path: str, output_path: str) -> str:
    """Writes one self-contained HTML file for the latest pipeline run; returns output_path."""
    page = render_html(gather_report(metadata_path))
    directory = os.path.dirname(os.path.abspath(output_path))
    os.makedirs(directory, exist_ok=True)
    temporary = f"{output_path}.tmp"
    with open(temporary, "w", encoding="utf-8") as stream:
        stream.write(page)
    os.replace(temporary, output_path)
    return output_path


def gather_report(metadata_path: str) -> ReportData:
    """Reads the latest run from ML Metadata and its artifacts into a `ReportData`."""
    # pylint: disable=import-outside-toplevel
    from pipeline import run_results

    run = run_results.latest_run(metadata_path)
    run_id, run_time, data_location = _run_context(metadata_path)
    has_statistics = _has_output(run, "StatisticsGen", "statistics")
    data = ReportData(
        run_id=run_id, run_time=run_time, metadata_path=metadata_path,
        data_location=data_location,
        components=sorted((node, result.cached) for node, result in run.items()),
        splits=_split_reports(run["StatisticsGen"]) if has_statistics else [])
    if not has_statistics:
        data.missing.append("StatisticsGen produced no statistics in this run")
    if _has_output(run, "Evaluator", "evaluation"):
        _add_evaluation(data, run)
    else:
        data.missing.append("the Evaluator produced no evaluation in this run")
    return data


def _has_output(run: Mapping[str, Any], node: str, key: str) -> bool:
    """Whether `node` ran (or was cached) in `run` and recorded an output under `key`."""
    return node in run and bool(run[node].outputs.get(key))


def _run_context(metadata_path: str) -> tuple[str, str, str | None]:
    """The newest run's id and start time, and ExampleGen's input directory."""
    # pylint: disable=import-outside-toplevel,protected-access
    from pipeline import run_results

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
    from pipeline import data_summary, run_results

    artifact = statistics_gen.outputs["statistics"][0]
    return [split_report(split, data_summary.load_split_statistics(artifact.uri, split))
            for split in run_results.split_names(artifact)]


def split_report(split: str, statistics: Any) -> SplitReport:
    """Pairs, duplicates and average question lengths of one split's statistics."""
    from pipeline import data_summary  # pylint: disable=import-outside-toplevel

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
    import tensorflow_model_analysis as tfma

    from components.features import (DECISION_THRESHOLD, GATED_METRICS, METRIC_TITLES,
                                     OVERLAP_BUCKETS, SLICE_FEATURE)
    from pipeline import outcome, run_results

    data.evaluated = True
    data.table_metrics = dict(METRIC_TITLES)
    data.gated_metrics = tuple(GATED_METRICS.values())
    data.slice_feature = SLICE_FEATURE
    data.threshold = DECISION_THRESHOLD
    if not _has_output(run, "Pusher", "pushed_model"):
        data.missing.append("the run stopped before the blessing and the push")
        return
    verdict = outcome.collect(run_results.latest_run_id(data.metadata_path), dict(run))
    data.blessed, data.reasons = verdict.blessed, verdict.reasons
    data.pushed_to, data.majority_accuracy = verdict.pushed_to, verdict.majority_accuracy
    seen_values: set[str] = set()
    for role, _, evaluation_uri in outcome.evaluated_models(dict(run)):
        result = tfma.load_eval_result(evaluation_uri, model_name=role)
        metrics = dict(result.slicing_metrics)
        plots = dict(result.plots)
        overall_plot = plot_entry(plots.get(()))
        matrix = confusion_matrix(metric_entry(metrics.get(())), data.threshold)
        if matrix is None and overall_plot:
            matrix = confusion_matrix(overall_plot, data.threshold)
        slices = slice_metrics(result.slicing_metrics, SLICE_FEATURE)
        seen_values.update(slices)
        if overall_plot is None:
            data.missing.append(f"no plots for the {role} model")
        data.models.append(ModelReport(
            name=role, title=outcome.ROLE_TITLES[role], color=ROLE_COLORS[role],
            overall=verdict.model(role).metrics, confusion=matrix,
            pr_curve=pr_curve(overall_plot or {}),
            operating_point=operating_point(overall_plot or {}, data.threshold),
            calibration=calibration_curve(overall_plot or {}), slices=slices))
    data.slice_values = [value for value in OVERLAP_BUCKETS if value in seen_values]
    data.slice_values += sorted(seen_values - set(OVERLAP_BUCKETS))
    if not data.slice_values:
        data.missing.append(f"the evaluation has no {SLICE_FEATURE} slices")


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


# ----------------------------------------------------------------------- SVG


@dataclasses.dataclass
class Series:
    """One line of a chart; `markers` are (x, y, radius, tooltip) circles."""

    name: str
    color: str
    points: Sequence[tuple[float, float]]
    markers: Sequence[tuple[float, float, float, str]] = ()
    dashed: bool = False


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def svg_chart(series: Sequence[Series], *, title: str, x_label: str, y_label: str,
              width: int = 520, height: int = 420) -> str:
    """A line chart on the unit square [0, 1] x [0, 1] as an inline SVG element.

    The legend lists `series` in order; earlier series are drawn on top of later ones.
    """
    esc = html.escape
    left, right, top, bottom = 62, 18, 44 + 20 * _legend_rows(series, width), 54
    plot_w, plot_h = width - left - right, height - top - bottom

    def x_px(x: float) -> float:
        return left + min(max(x, 0.0), 1.0) * plot_w

    def y_px(y: float) -> float:
        return top + (1.0 - min(max(y, 0.0), 1.0)) * plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
             f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'aria-label="{esc(title)}">',
             f'<title>{esc(title)}</title>',
             f'<text class="chart-title" x="{width / 2:.1f}" y="22" text-anchor="middle">'
             f'{esc(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#ffffff" '
             f'stroke="#d1d5db"/>']
    for step in range(6):
        tick = step / 5
        parts.append(f'<line x1="{x_px(tick):.1f}" y1="{top}" x2="{x_px(tick):.1f}" '
                     f'y2="{top + plot_h}" stroke="#eef0f3"/>')
        parts.append(f'<line x1="{left}" y1="{y_px(tick):.1f}" x2="{left + plot_w}" '
                     f'y2="{y_px(tick):.1f}" stroke="#eef0f3"/>')
        parts.append(f'<text class="tick" x="{x_px(tick):.1f}" y="{top + plot_h + 16}" '
                     f'text-anchor="middle">{_fmt(tick)}</text>')
        parts.append(f'<text class="tick" x="{left - 8}" y="{y_px(tick) + 4:.1f}" '
                     f'text-anchor="end">{_fmt(tick)}</text>')
    parts.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
                 f'stroke="#9ca3af"/>')
    parts.append(f'<text class="axis-label" x="{left + plot_w / 2:.1f}" y="{height - 12}" '
                 f'text-anchor="middle">{esc(x_label)}</text>')
    parts.append(f'<text class="axis-label" x="16" y="{top + plot_h / 2:.1f}" '
                 f'text-anchor="middle" transform="rotate(-90 16 {top + plot_h / 2:.1f})">'
                 f'{esc(y_label)}</text>')
    for line in reversed(series):
        group = [f'<g class="series" data-name="{esc(line.name)}">']
        if len(line.points) > 1:
            coordinates = " ".join(f"{x_px(x):.1f},{y_px(y):.1f}" for x, y in line.points)
            dash = ' stroke-dasharray="6 4"' if line.dashed else ""
            width_px = 1.5 if line.dashed else 2.2
            group.append(f'<polyline points="{coordinates}" fill="none" stroke="{line.color}" '
                         f'stroke-width="{width_px}" stroke-linejoin="round"{dash}/>')
        for x, y, radius, tooltip in line.markers:
            group.append(f'<circle cx="{x_px(x):.1f}" cy="{y_px(y):.1f}" r="{radius:.1f}" '
                         f'fill="{line.color}" fill-opacity="0.8" stroke="#ffffff">'
                         f'<title>{esc(tooltip)}</title></circle>')
        group.append("</g>")
        parts.extend(group)
    parts.extend(_legend(series, x=left, y=40, width=plot_w))
    parts.append("</svg>")
    return "".join(parts)


def _legend_entry_width(entry: Series) -> int:
    return 34 + round(6.5 * len(entry.name)) + 20


def _legend_rows(series: Sequence[Series], width: int) -> int:
    rows, used = 1, 0
    for entry in series:
        if used and used + _legend_entry_width(entry) > width - 80:
            rows, used = rows + 1, 0
        used += _legend_entry_width(entry)
    return rows


def _legend(series: Sequence[Series], *, x: int, y: int, width: int) -> list[str]:
    """A horizontal legend above the plot area, wrapped to `width`."""
    parts, cursor, row = [], 0, 0
    for entry in series:
        if cursor and cursor + _legend_entry_width(entry) > width:
            cursor, row = 0, row + 1
        base_x, base_y = x + cursor, y + 20 * row
        dash = ' stroke-dasharray="6 4"' if entry.dashed else ""
        parts.append(f'<g class="legend-entry"><line x1="{base_x}" y1="{base_y}" '
                     f'x2="{base_x + 26}" y2="{base_y}" stroke="{entry.color}" '
                     f'stroke-width="{1.5 if entry.dashed else 3}"{dash}/>'
                     f'<text class="legend" x="{base_x + 32}" y="{base_y + 4}">'
                     f'{html.escape(entry.name)}</text></g>')
        cursor += _legend_entry_width(entry)
    return parts


def pr_chart(models: Sequence[ModelReport], threshold: float = 0.5) -> str:
    """Precision vs recall of all models, with each model's operating point."""
    series = []
    for model in models:
        markers = []
        if model.operating_point:
            recall, precision = model.operating_point
            markers.append((recall, precision, 5.0,
                            f"{model.title} at threshold {threshold}: recall {recall:.3f}, "
                            f"precision {precision:.3f}"))
        series.append(Series(model.title, model.color, model.pr_curve, markers))
    positive_rate = _positive_rate(models)
    if positive_rate is not None:
        series.append(Series(f"no skill (duplicate rate {positive_rate:.2f})", GUIDE_COLOR,
                             [(0.0, positive_rate), (1.0, positive_rate)], dashed=True))
    return svg_chart(series, title="Precision-recall curve (eval split)",
                     x_label="recall", y_label="precision")


def _positive_rate(models: Sequence[ModelReport]) -> float | None:
    for model in models:
        rate = model.overall.get("mean_label", math.nan)
        if not math.isnan(rate):
            return rate
    return None


def calibration_chart(models: Sequence[ModelReport]) -> str:
    """Reliability curves of all models and the diagonal of perfect calibration."""
    series = []
    for model in models:
        largest = max((count for _, _, count in model.calibration), default=1.0)
        markers = [(prediction, positive, 3.0 + 4.0 * math.sqrt(count / largest),
                    f"{model.title}: {count:,.0f} pairs, mean prediction {prediction:.3f}, "
                    f"duplicates {positive:.3f}")
                   for prediction, positive, count in model.calibration]
        points = [(prediction, positive) for prediction, positive, _ in model.calibration]
        series.append(Series(model.title, model.color, points, markers))
    series.append(Series("perfectly calibrated", GUIDE_COLOR, [(0.0, 0.0), (1.0, 1.0)],
                         dashed=True))
    return svg_chart(series, title=f"Calibration ({CALIBRATION_BINS} bins, eval split)",
                     x_label="mean predicted probability of duplicate",
                     y_label="fraction of duplicates")


# ---------------------------------------------------------------------- HTML


STYLE = """
:root { --ink: #1f2937; --muted: #6b7280; --line: #e5e7eb; --bg: #f6f7f9;
        --good: #15803d; --bad: #b91c1c; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 14px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 28px 24px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 0 0 12px; }
.subtitle { color: var(--muted); margin: 0 0 18px; }
section, .verdict { background: #fff; border: 1px solid var(--line); border-radius: 10px;
                    padding: 18px 20px; margin: 0 0 18px; }
.verdict { border-left: 6px solid var(--muted); }
.verdict.blessed { border-left-color: var(--good); }
.verdict.not-blessed { border-left-color: var(--bad); }
.badge { display: inline-block; font-weight: 700; font-size: 15px; letter-spacing: .04em;
         padding: 3px 12px; border-radius: 999px; color: #fff; background: var(--muted); }
.blessed .badge { background: var(--good); }
.not-blessed .badge { background: var(--bad); }
.verdict ul { margin: 10px 0; padding-left: 20px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; word-break: break-all; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 6px 10px; border-bottom: 1px solid var(--line); text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { color: var(--muted); font-weight: 600; border-bottom: 2px solid var(--line); }
thead tr.group th { border-bottom: none; text-align: center; }
tbody tr:hover { background: #fafbfc; }
th.first, td.first { border-left: 1px solid var(--line); }
td.pos { color: var(--good); } td.neg { color: var(--bad); }
.tag { font-size: 11px; color: var(--muted); border: 1px solid var(--line); border-radius: 4px;
       padding: 0 4px; margin-left: 6px; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px;
          margin-right: 6px; vertical-align: baseline; }
.grid { display: flex; flex-wrap: wrap; gap: 18px; }
.grid > div { flex: 1 1 460px; min-width: 0; }
table.cm { width: auto; margin-top: 6px; }
table.cm td, table.cm th { text-align: center; min-width: 110px; border: 1px solid var(--line); }
table.cm td { font-size: 18px; font-weight: 600; }
table.cm td small { display: block; font-size: 11px; font-weight: 400; color: var(--muted); }
table.cm td.hit { background: #ecfdf5; } table.cm td.miss { background: #fef2f2; }
table.cm th.corner { border: none; background: none; }
svg.chart { max-width: 100%; height: auto; display: block; }
svg.chart text { font-family: inherit; fill: var(--ink); }
svg.chart .chart-title { font-size: 15px; font-weight: 600; }
svg.chart .tick { font-size: 11px; fill: var(--muted); }
svg.chart .axis-label, svg.chart .legend { font-size: 12px; }
.note { color: var(--muted); font-size: 12px; margin: 8px 0 0; }
.missing { color: var(--bad); }
footer { color: var(--muted); font-size: 12px; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def format_value(value: float | None, metric: str = "") -> str:
    """A metric for a table cell: counts as integers, NaN as an en dash."""
    if value is None or math.isnan(value):
        return "\u2013"
    if metric == "example_count":
        return f"{value:,.0f}"
    return f"{value:.4f}"


def _diff_cell(difference: float, metric: str, higher_is_better: bool) -> str:
    if math.isnan(difference):
        return "<td>\u2013</td>"
    css = ""
    if higher_is_better and abs(difference) > 1e-12:
        css = ' class="pos"' if difference > 0 else ' class="neg"'
    text = f"{difference:+,.0f}" if metric == "example_count" else f"{difference:+.4f}"
    return f"<td{css}>{_e(text)}</td>"


def _header(data: ReportData) -> str:
    subtitle = f"run {data.run_id} \u00b7 started {data.run_time}"
    return (f"<header><h1>QQP duplicate-question pipeline: run report</h1>"
            f'<p class="subtitle">{_e(subtitle)}</p></header>')


def _verdict(data: ReportData) -> str:
    facts = [("data", data.data_location or "unknown"),
             ("metadata", data.metadata_path)]
    if not data.evaluated:
        facts.append(("evaluation", "none in this run"))
        rows = "".join(f"<dt>{_e(key)}</dt><dd>{_e(value)}</dd>" for key, value in facts)
        return (f'<div class="verdict"><span class="badge">NOT EVALUATED</span>'
                f'<dl class="facts" style="margin-top:12px">{rows}</dl></div>')
    css, word = ("blessed", "BLESSED") if data.blessed else ("not-blessed", "NOT BLESSED")
    compared = ", ".join(model.title for model in data.models[1:]) or "unknown"
    facts = [("pushed", data.pushed_to or "not pushed"), ("compared with", compared)] + facts
    reasons = "".join(f"<li>{_e(reason)}</li>" for reason in data.reasons)
    rows = "".join(f"<dt>{_e(key)}</dt><dd>{_e(value)}</dd>" for key, value in facts)
    return (f'<div class="verdict {css}"><span class="badge">{word}</span>'
            f"<ul>{reasons}</ul><dl class=\"facts\">{rows}</dl></div>")


def _model_label(model: ModelReport) -> str:
    return f'<span class="swatch" style="background:{_e(model.color)}"></span>{_e(model.title)}'


def _metrics_table(data: ReportData) -> str:
    candidate, others = data.models[0], data.models[1:]
    rows = []
    metrics = {**data.table_metrics, **EXTRA_METRICS}
    for metric, title in metrics.items():
        ours = candidate.overall.get(metric, math.nan)
        tag = '<span class="tag">gated</span>' if metric in data.gated_metrics else ""
        cells = [f"<td>{format_value(ours, metric)}</td>"]
        cells += [f"<td>{format_value(other.overall.get(metric, math.nan), metric)}</td>"
                  for other in others]
        cells += [_diff_cell(ours - other.overall.get(metric, math.nan), metric,
                             metric in data.table_metrics) for other in others]
        rows.append(f"<tr><td>{_e(title)}{tag}</td>{''.join(cells)}</tr>")
    majority = format_value(data.majority_accuracy if data.majority_accuracy is not None
                            else math.nan)
    heads = "".join(f"<th>{_model_label(model)}</th>" for model in data.models)
    heads += "".join(f"<th>candidate \u2212 {_e(other.title)}</th>" for other in others)
    return (f"<section><h2>Fine-tuned candidate vs the other models (all eval pairs)</h2>"
            f"<table><thead><tr><th>metric</th>{heads}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
            f'<p class="note">Majority class (always predicting the more frequent label) '
            f"scores accuracy {majority}. Accuracy, F1, precision and recall at threshold "
            f"{_e(data.threshold)}. Calibration is mean prediction / mean label (1 is ideal)."
            f"</p></section>")


def _confusion_table(model: ModelReport) -> str:
    if model.confusion is None:
        return f"<div><h3>{_model_label(model)}</h3><p class=\"missing\">not available</p></div>"
    cells = model.confusion

    def cell(key: str, meaning: str, css: str) -> str:
        return f'<td class="{css}">{format_value(cells[key], "example_count")}' \
               f"<small>{_e(key)} \u00b7 {_e(meaning)}</small></td>"

    return (f"<div><h3>{_model_label(model)}</h3><table class=\"cm\"><thead><tr>"
            f'<th class="corner"></th><th>predicted duplicate</th><th>predicted not</th>'
            f"</tr></thead><tbody>"
            f"<tr><th>actual duplicate</th>{cell('TP', 'true positive', 'hit')}"
            f"{cell('FN', 'false negative', 'miss')}</tr>"
            f"<tr><th>actual not</th>{cell('FP', 'false positive', 'miss')}"
            f"{cell('TN', 'true negative', 'hit')}</tr></tbody></table></div>")


def _confusion_section(data: ReportData) -> str:
    tables = "".join(_confusion_table(model) for model in data.models)
    return (f"<section><h2>Confusion matrices at threshold {_e(data.threshold)}</h2>"
            f'<div class="grid">{tables}</div></section>')


def _charts_section(data: ReportData) -> str:
    return (f'<section><h2>Curves</h2><div class="grid">'
            f"<div>{pr_chart(data.models, data.threshold)}</div>"
            f"<div>{calibration_chart(data.models)}</div></div>"
            f'<p class="note">Dots on the precision-recall curves mark threshold '
            f"{_e(data.threshold)}; calibration dot size grows with the number of pairs in "
            f"the bin (hover for counts).</p></section>")


def _slice_section(data: ReportData) -> str:
    if not data.slice_values:
        return (f"<section><h2>Slices by {_e(data.slice_feature)}</h2>"
                f'<p class="missing">No {_e(data.slice_feature)} slices in this evaluation.'
                f"</p></section>")
    candidate = data.models[0]
    group = "".join(f'<th class="first" colspan="{len(SLICE_METRICS)}">{_model_label(model)}'
                    f"</th>" for model in data.models)
    first = ' class="first"'
    names = "".join(f"<th{first if index == 0 else ''}>{_e(title)}</th>"
                    for _ in data.models for index, title in enumerate(SLICE_METRICS.values()))
    rows = []
    for value in data.slice_values:
        count = candidate.slices.get(value, {}).get("example_count", math.nan)
        cells = "".join(
            f"<td{first if index == 0 else ''}>"
            f"{format_value(model.slices.get(value, {}).get(metric, math.nan))}</td>"
            for model in data.models for index, metric in enumerate(SLICE_METRICS))
        rows.append(f"<tr><td>{_e(value)}</td><td>{format_value(count, 'example_count')}</td>"
                    f"{cells}</tr>")
    return (f"<section><h2>Slices by {_e(data.slice_feature)}</h2><table><thead>"
            f'<tr class="group"><th></th><th></th>{group}</tr>'
            f"<tr><th>{_e(data.slice_feature)}</th><th>pairs</th>{names}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
            f'<p class="note">{_e(data.slice_feature)}: Jaccard similarity of the two '
            f"questions' lower-cased word sets. Accuracy and F1 at threshold "
            f"{_e(data.threshold)}; \u2013 where a metric is undefined.</p></section>")


def _one_decimal(value: float | None, suffix: str = "") -> str:
    return "\u2013" if value is None or math.isnan(value) else f"{value:,.1f}{suffix}"


def _data_section(data: ReportData) -> str:
    if not data.splits:
        return '<section><h2>Data</h2><p class="missing">No statistics.</p></section>'
    rows = []
    for split in data.splits:
        share = 100 * split.duplicates / split.pairs if split.pairs else math.nan
        lengths = "".join(f"<td>{_one_decimal(split.avg_length.get(question))}</td>"
                          for question in QUESTIONS)
        rows.append(f"<tr><td>{_e(split.name)}</td><td>{split.pairs:,}</td>"
                    f"<td>{split.duplicates:,}</td><td>{split.not_duplicates:,}</td>"
                    f"<td>{_one_decimal(share, ' %')}</td>{lengths}</tr>")
    return ("<section><h2>Data (StatisticsGen)</h2><table><thead><tr><th>split</th>"
            "<th>pairs</th><th>duplicates</th><th>not duplicates</th><th>duplicate share</th>"
            "<th>avg. question1 length</th><th>avg. question2 length</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
            '<p class="note">Average lengths in UTF-8 bytes (characters for ASCII text).</p>'
            "</section>")


def _footer(data: ReportData) -> str:
    components = ", ".join(f"{node} (cached)" if cached else node
                           for node, cached in data.components)
    missing = "".join(f'<p class="missing">{_e(item)}</p>' for item in data.missing)
    return (f"<footer>{missing}<p>Components in this run: {_e(components)}.</p>"
            f"<p>Generated by qqp-tfx from {_e(data.metadata_path)}.</p></footer>")


def render_html(data: ReportData) -> str:
    """The complete page: inline CSS and SVG, no external resources."""
    body = [_header(data), _verdict(data)]
    if data.evaluated and len(data.models) >= 2:
        body += [_metrics_table(data), _confusion_section(data), _charts_section(data),
                 _slice_section(data)]
    body += [_data_section(data), _footer(data)]
    title = f"qqp-tfx report \u00b7 {data.run_id}"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{STYLE}</style></head>"
            f"<body><main>{''.join(body)}</main></body></html>\n")
