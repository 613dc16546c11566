"""The report page: `ReportData` rendered as one self-contained HTML file (inline CSS and SVG)."""

from __future__ import annotations

import html
import math
from typing import Any

from components.features import QUESTIONS
from pipeline.report import release
from pipeline.report.charts import calibration_chart, pr_chart
from pipeline.report.data import ModelReport, ReportData
from pipeline.results import run_table as every_run

# Extra rows of the overall table, after the headline metrics.
EXTRA_METRICS = {"calibration": "calibration (mean prediction / mean label)",
                 "example_count": "examples"}
SLICE_METRICS = {"binary_accuracy": "accuracy", "f1_score": "F1", "auc": "AUC"}


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
.bad { color: var(--bad); font-weight: 600; }
h3 { font-size: 14px; margin: 16px 0 6px; }
footer { color: var(--muted); font-size: 12px; }
table.runs { font-size: 12px; }
table.runs th, table.runs td { padding: 4px 6px; white-space: nowrap; }
table.runs .text { text-align: left; }
table.runs td.why { white-space: normal; text-align: left; color: var(--muted); }
table.runs tr.current td { background: #eff6ff; font-weight: 600; }
table.runs tr.current td.why { font-weight: 400; }
.scroll { overflow-x: auto; }
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


def _metric_or_nan(scores: dict[str, Any] | None, key: str) -> float:
    value = (scores or {}).get(key)
    return math.nan if value is None else float(value)


def _start_words(start: dict[str, Any] | None) -> str:
    if not start:
        return "not recorded"
    if start.get("from") == "served":
        return f"the served model, version {start.get('version')} (warm start)"
    return "the checkpoint" + (f": {start['why']}" if start.get("why") else "")


def _drift_table(drift: dict[str, Any]) -> str:
    rows = []
    for name, feature in drift.get("features", {}).items():
        divergence = _metric_or_nan(feature, "divergence")
        threshold = _metric_or_nan(feature, "threshold")
        over = ('<td class="neg">yes</td>' if divergence > threshold else "<td>no</td>")
        rows.append(f"<tr><td>{_e(name)}</td><td>{format_value(divergence)}</td>"
                    f"<td>{format_value(threshold)}</td>{over}</tr>")
    if not rows:
        return ""
    return ("<h3>Drift by feature</h3><table><thead><tr><th>feature</th><th>divergence</th>"
            "<th>threshold</th><th>over the threshold</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
            '<p class="note">Jensen-Shannon divergence of each feature between this span and '
            "the previous one; a feature over its threshold stops the run unless the drift is "
            "accepted (--accept-drift).</p>")


def _per_span_table(per_span: list[dict[str, Any]]) -> str:
    if not any(row.get("span") for row in per_span):
        return ""
    rows = []
    for row in per_span:
        candidate, served = row.get("candidate"), row.get("served")
        cells = []
        for key, metric in (("accuracy", "binary_accuracy"), ("f1", "f1_score")):
            ours, theirs = _metric_or_nan(candidate, key), _metric_or_nan(served, key)
            cells.append((format_value(ours), format_value(theirs),
                          _diff_cell(ours - theirs, metric, True)))
        rows.append(f"<tr><td>{_e(row.get('span'))}</td>"
                    + "".join(f"<td>{ours}</td>" for ours, _, _ in cells)
                    + "".join(f"<td>{theirs}</td>" for _, theirs, _ in cells)
                    + "".join(diff for _, _, diff in cells) + "</tr>")
    return ("<h3>Candidate and served model span by span (eval pairs of each span)</h3>"
            "<table><thead><tr><th>span</th><th>candidate accuracy</th><th>candidate F1</th>"
            "<th>served accuracy</th><th>served F1</th><th>accuracy \u2212 served</th>"
            "<th>F1 \u2212 served</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
            '<p class="note">\u2013 where nothing is served or a metric is undefined.</p>')


def _spans_section(data: ReportData) -> str:
    """The span, its training window, the warm start, the drift gate, span by span."""
    if not data.has_spans:
        return ""
    details = data.spans
    window = [span for span in details.get("train_spans") or [] if span]
    facts = [("span", details.get("span") or "none (data not laid out in spans)"),
             ("training window", ("spans " + ", ".join(map(str, window))) if window else
              "all the data" if "train_spans" in details else "not recorded"),
             ("started from", _start_words(details.get("warm_start")))]
    drift = details.get("drift") or {}
    verdict = ""
    if drift:
        against = (f"span {details.get('span')} against span {drift['previous_span']}"
                   if drift.get("previous_span") is not None else drift.get("why", ""))
        css = ' class="bad"' if drift.get("verdict") != "passed" else ""
        verdict = f"<strong{css}>{_e(drift.get('verdict'))}</strong>" + (
            f" ({_e(against)})" if against else "")
    rows = "".join(f"<dt>{_e(key)}</dt><dd>{_e(value)}</dd>" for key, value in facts)
    rows += f"<dt>drift</dt><dd>{verdict or 'not recorded'}</dd>"
    return (f'<section><h2>Spans</h2><dl class="facts">{rows}</dl>'
            f"{_drift_table(drift)}{_per_span_table(details.get('per_span') or [])}</section>")


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


def _runs_section(data: ReportData) -> str:
    """Every run of the store side by side, this run highlighted."""
    if not data.runs:
        return ""
    align = ["" if right else ' class="text"' for _, right in every_run.COLUMNS]
    heads = "".join(f"<th{css}>{_e(title)}</th>"
                    for (title, _), css in zip(every_run.COLUMNS, align))
    rows = []
    for summary, cells in zip(data.runs, every_run.table_rows(data.runs)):
        current = summary.run_id == data.run_id
        css = ' class="current"' if current else ""
        tag = '<span class="tag">this report</span>' if current else ""
        tds = "".join(f"<td{align[index]}>{_e(cell)}{tag if index == 0 else ''}</td>"
                      for index, cell in enumerate(cells))
        rows.append(f"<tr{css}>{tds}</tr>"
                    f'<tr{css}><td class="why" colspan="{len(cells)}">'
                    f"{_e(every_run.why(summary))}</td></tr>")
    return (f"<section><h2>Every run</h2><div class=\"scroll\"><table class=\"runs\">"
            f"<thead><tr>{heads}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
            f'<p class="note">Oldest first, as <code>qqp-tfx runs</code> lists them. '
            f"{_e(every_run.COLUMN_NOTE)}.</p></section>")


def _footer(data: ReportData) -> str:
    components = ", ".join(f"{node} (cached)" if cached else node
                           for node, cached in data.components)
    missing = "".join(f'<p class="missing">{_e(item)}</p>' for item in data.missing)
    return (f"<footer>{missing}<p>Components in this run: {_e(components)}.</p>"
            f"<p>Generated by qqp-tfx from {_e(data.metadata_path)}.</p></footer>")


def render_html(data: ReportData) -> str:
    """The complete page: inline CSS and SVG, no external resources."""
    body = [_header(data), _verdict(data), release.serving_check_section(data.serving_check),
            release.comparisons_table(data.comparisons), _spans_section(data)]
    if data.evaluated and len(data.models) >= 2:
        body += [_metrics_table(data), _confusion_section(data), _charts_section(data),
                 _slice_section(data)]
    body += [_data_section(data), _runs_section(data), _footer(data)]
    title = f"qqp-tfx report \u00b7 {data.run_id}"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{STYLE}</style></head>"
            f"<body><main>{''.join(body)}</main></body></html>\n")
