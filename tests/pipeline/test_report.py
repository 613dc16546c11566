"""Unit tests of the HTML report: TFMA-structure parsing, SVG charts and escaping.

No pipeline run and no TensorFlow: the inputs are small hand-written dicts shaped
like what `tfma.load_eval_result` returns (protobuf JSON, zeros left out).
"""

import math
import re
import xml.etree.ElementTree as ET

import pytest

from pipeline import report
from pipeline.report import charts, data
from pipeline.report import page as report_page

SVG = "{http://www.w3.org/2000/svg}"


def _matrix(threshold, tp, fp, fn, tn):
    matrix = {"truePositives": tp, "falsePositives": fp, "falseNegatives": fn,
              "trueNegatives": tn}
    matrix = {key: float(value) for key, value in matrix.items() if value}  # zeros omitted
    if threshold:
        matrix["threshold"] = threshold
    return matrix


PLOT = {
    "confusionMatrixAtThresholds": {"matrices": [
        _matrix(-1e-6, 4, 6, 0, 0),
        _matrix(0.0, 4, 6, 0, 0),  # same point again: kept once
        _matrix(0.25, 3, 2, 1, 4),
        _matrix(0.5, 2, 1, 2, 5),
        _matrix(0.75, 1, 0, 3, 6),
        _matrix(1.0, 0, 0, 4, 6),  # no positive predictions: precision 1 by convention
    ]},
    "calibrationHistogramBuckets": {"buckets": [
        {"lowerThresholdInclusive": "-Infinity", "numWeightedExamples": 0.0},
        {"upperThresholdExclusive": 0.001, "numWeightedExamples": 0.0},
        {"lowerThresholdInclusive": 0.05, "upperThresholdExclusive": 0.051,
         "numWeightedExamples": 2.0, "totalWeightedLabel": 0.0,
         "totalWeightedRefinedPrediction": 0.101},
        {"lowerThresholdInclusive": 0.08, "upperThresholdExclusive": 0.081,
         "numWeightedExamples": 2.0, "totalWeightedLabel": 1.0,
         "totalWeightedRefinedPrediction": 0.161},
        {"lowerThresholdInclusive": 0.9, "upperThresholdExclusive": 0.901,
         "numWeightedExamples": 4.0, "totalWeightedLabel": 3.0,
         "totalWeightedRefinedPrediction": 3.602},
        {"lowerThresholdInclusive": 1.0, "upperThresholdExclusive": "Infinity",
         "numWeightedExamples": 0.0},
    ]},
}


def test_number_reads_tfma_json_values():
    assert data.number({"doubleValue": 0.25}) == 0.25
    assert data.number(3) == 3.0
    assert math.isnan(data.number({"doubleValue": "NaN"}))
    assert math.isnan(data.number(None))
    assert math.isnan(data.number({"confusionMatrixAtThresholds": {}}))
    assert data.number("-Infinity") == -math.inf


def test_confusion_matrix_from_metric_entry_fills_omitted_zeros():
    entry = {"example_count": {"doubleValue": 100.0},
             "confusion_matrix_at_thresholds": {"confusionMatrixAtThresholds": {"matrices": [
                 {"threshold": 0.5, "falseNegatives": 33.0, "trueNegatives": 67.0,
                  "precision": 1.0, "accuracy": 0.67}]}}}
    assert data.confusion_matrix(entry, 0.5) == {"TP": 0.0, "FP": 0.0, "FN": 33.0,
                                                    "TN": 67.0}
    assert data.confusion_matrix(entry, 0.3) is None
    assert data.confusion_matrix({}, 0.5) is None


def test_confusion_matrix_from_plot_entry():
    assert data.confusion_matrix(PLOT, 0.5) == {"TP": 2.0, "FP": 1.0, "FN": 2.0, "TN": 5.0}


def test_pr_curve_and_operating_point():
    points = data.pr_curve(PLOT)
    assert points == [(1.0, 0.4), (0.75, 0.6), (0.5, 2 / 3), (0.25, 1.0), (0.0, 1.0)]
    assert data.operating_point(PLOT, 0.5) == (0.5, 2 / 3)
    assert data.pr_curve({}) == []
    assert data.operating_point({}, 0.5) is None


def test_calibration_curve_merges_fine_buckets_into_bins():
    curve = data.calibration_curve(PLOT, bins=10)
    assert len(curve) == 2
    (low_pred, low_pos, low_n), (high_pred, high_pos, high_n) = curve
    assert low_n == 4.0 and low_pos == pytest.approx(0.25)
    assert low_pred == pytest.approx(0.262 / 4)
    assert high_n == 4.0 and high_pos == pytest.approx(0.75)
    assert high_pred == pytest.approx(0.9005)
    assert data.calibration_curve({}) == []


def test_slice_metrics_keeps_only_the_feature_slices():
    slicing_metrics = [
        ((), {"": {"": {"binary_accuracy": {"doubleValue": 0.7}}}}),
        ((("word_overlap", "0.00-0.25"),), {"": {"": {
            "binary_accuracy": {"doubleValue": 0.8}, "auc": {"doubleValue": "NaN"},
            "confusion_matrix_at_thresholds": {"confusionMatrixAtThresholds": {}}}}}),
        ((("word_overlap", b"0.25-0.50"),), {"": {"": {"f1_score": {"doubleValue": 0.5}}}}),
        ((("other", "x"),), {"": {"": {"f1_score": {"doubleValue": 0.1}}}}),
    ]
    slices = data.slice_metrics(slicing_metrics, "word_overlap")
    assert set(slices) == {"0.00-0.25", "0.25-0.50"}
    assert slices["0.00-0.25"]["binary_accuracy"] == 0.8
    assert math.isnan(slices["0.00-0.25"]["auc"])
    assert "confusion_matrix_at_thresholds" not in slices["0.00-0.25"]
    assert slices["0.25-0.50"] == {"f1_score": 0.5}


def test_svg_chart_is_valid_xml_with_every_series_and_escaped_text():
    series = [charts.Series("model <a> & \"b\"", "#123456", [(0, 0), (0.5, 0.7), (1, 1)],
                            markers=[(0.5, 0.7, 4, "tip <x>")]),
              charts.Series("guide", "#999999", [(0, 1), (1, 0)], dashed=True)]
    svg = charts.svg_chart(series, title="T <&>", x_label="recall", y_label="precision")
    root = ET.fromstring(svg)
    assert root.tag == SVG + "svg"
    polylines = root.findall(f".//{SVG}polyline")
    # The first series is drawn last, on top of the others.
    assert [line.get("stroke") for line in polylines] == ["#999999", "#123456"]
    assert polylines[0].get("stroke-dasharray")
    assert len(root.findall(f".//{SVG}circle")) == 1
    texts = ["".join(element.itertext()) for element in root.iter(SVG + "text")]
    assert "model <a> & \"b\"" in texts and "guide" in texts
    assert "T <&>" in texts and "recall" in texts and "precision" in texts
    # Values outside [0, 1] are clamped to the plot area.
    clamped = charts.svg_chart([charts.Series("s", "#000", [(-1, 2), (3, -4)])],
                               title="t", x_label="x", y_label="y")
    coordinates = ET.fromstring(clamped).find(f".//{SVG}polyline").get("points")
    xs = [float(pair.split(",")[0]) for pair in coordinates.split()]
    assert 0 < min(xs) and max(xs) < 520


def _model(name, color, accuracy):
    return data.ModelReport(
        name=name, title=name, color=color,
        overall={"binary_accuracy": accuracy, "f1_score": 0.5, "precision": math.nan,
                 "recall": 0.25, "auc": 0.6, "auc_precision_recall": 0.4,
                 "calibration": 1.1, "example_count": 48.0, "mean_label": 0.4},
        confusion={"TP": 1.0, "FP": 2.0, "FN": 3.0, "TN": 42.0},
        pr_curve=data.pr_curve(PLOT), operating_point=data.operating_point(PLOT, 0.5),
        calibration=data.calibration_curve(PLOT),
        slices={"0.00-0.25": {"example_count": 20.0, "binary_accuracy": 0.9, "f1_score": 0.0,
                              "auc": math.nan}})


def _data(**overrides):
    values = dict(
        run_id="2026-01-01T00:00:00", run_time="2026-01-01 00:00:00 UTC",
        metadata_path="/m/<md>.sqlite", data_location="/data/<script>alert(1)</script>",
        components=[("Evaluator", False), ("Transform", True)],
        splits=[data.SplitReport("train", 160, 60, 100, {"question1": 58.25,
                                                          "question2": None})],
        evaluated=True, blessed=False, reasons=["f1_score is -0.1 vs the baseline <b>"],
        pushed_to=None, majority_accuracy=0.6,
        models=[_model("candidate", "#2563eb", 0.75), _model("not fine-tuned & cosine",
                                                            "#ea580c", 0.5),
                _model("served", "#16a34a", 0.7)],
        table_metrics={"binary_accuracy": "accuracy", "f1_score": "F1",
                       "precision": "precision", "recall": "recall", "auc": "ROC AUC",
                       "auc_precision_recall": "PR AUC"},
        gated_metrics=("binary_accuracy", "f1_score"), slice_feature="word_overlap",
        slice_values=["0.00-0.25"])
    values.update(overrides)
    return data.ReportData(**values)


def test_render_html_escapes_text_and_embeds_everything():
    page = report_page.render_html(_data())
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "vs the baseline &lt;b&gt;" in page and "not fine-tuned &amp; cosine" in page
    assert "NOT BLESSED" in page and "not pushed" in page
    assert "served" in page and "accuracy 0.6000" in page  # third model, majority class
    assert "<link" not in page and "src=" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    assert "candidate" in page and "0.00-0.25" in page
    assert "+0.2500" in page and "+0.0500" in page  # accuracy vs each other model
    assert "58.2" in page and "train" in page
    svgs = re.findall(r"<svg.*?</svg>", page, flags=re.S)
    assert len(svgs) == 2
    for svg in svgs:
        ET.fromstring(svg)


def test_render_html_of_a_run_without_evaluation():
    page = report_page.render_html(_data(evaluated=False, models=[], blessed=None, reasons=[],
                                    missing=["the Evaluator did not run in this run"]))
    assert "NOT EVALUATED" in page and "<svg" not in page
    assert "the Evaluator did not run" in page and "train" in page


def test_write_report_leaves_one_file(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "gather_report", lambda metadata_path: _data())
    target = tmp_path / "out" / "report.html"
    assert report.write_report("md.sqlite", str(target)) == str(target)
    assert [path.name for path in target.parent.iterdir()] == ["report.html"]
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_split_report_from_statistics_proto():
    from tensorflow_metadata.proto.v0 import statistics_pb2

    statistics = statistics_pb2.DatasetFeatureStatistics(num_examples=10)
    label = statistics.features.add()
    label.path.step.append("is_duplicate")
    label.string_stats.top_values.add(value="0", frequency=6)
    label.string_stats.top_values.add(value="1", frequency=4)
    for name, length in (("question1", 40.5), ("question2", 51.0)):
        feature = statistics.features.add()
        feature.path.step.append(name)
        feature.string_stats.avg_length = length
    split = data.split_report("eval", statistics)
    assert (split.name, split.pairs, split.duplicates, split.not_duplicates) == (
        "eval", 10, 4, 6)
    assert split.avg_length == {"question1": 40.5, "question2": 51.0}


SPANS = {"span": 3, "train_spans": [2, 3],
         "warm_start": {"from": "checkpoint",
                        "why": "version 1 is not compatible: its <pooling> differ"},
         "drift": {"verdict": "stopped", "previous_span": 2, "features": {
             "word_overlap": {"divergence": 0.0912, "threshold": 0.07},
             "dup<share>": {"divergence": 0.001, "threshold": 0.02}}},
         "per_span": [
             {"span": 2, "candidate": {"accuracy": 0.8, "f1": 0.7},
              "served": {"accuracy": 0.75, "f1": 0.72}},
             {"span": 3, "candidate": {"accuracy": 0.9, "f1": 0.85}, "served": None}]}


def _spans_section(page):
    return page.split("<h2>Spans</h2>")[1].split("</section>")[0]


def _body_rows(table):
    body = table.split("<tbody>")[1].split("</tbody>")[0]
    return [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", body)]


def test_render_html_shows_the_spans_of_a_spans_run():
    page = report_page.render_html(_data(spans=SPANS))
    # Near the top: right after the verdict, before the metrics.
    assert page.index('<div class="verdict') < page.index("<h2>Spans</h2>") < page.index(
        "<h2>Fine-tuned candidate vs")
    section = _spans_section(page)
    assert "<dt>span</dt><dd>3</dd>" in section and "<dd>spans 2, 3</dd>" in section
    assert "the checkpoint: version 1 is not compatible: its &lt;pooling&gt; differ" in section
    assert '<strong class="bad">stopped</strong> (span 3 against span 2)' in section
    drift, by_span = section.split("<h3>")[1:]
    assert drift.startswith("Drift by feature")
    assert _body_rows(drift) == [["word_overlap", "0.0912", "0.0700", "yes"],
                                 ["dup&lt;share&gt;", "0.0010", "0.0200", "no"]]
    assert '<td class="neg">yes</td>' in drift
    assert _body_rows(by_span) == [
        ["2", "0.8000", "0.7000", "0.7500", "0.7200", "+0.0500", "-0.0200"],
        ["3", "0.9000", "0.8500", "\u2013", "\u2013", "\u2013", "\u2013"]]
    assert "<share>" not in page and "<pooling>" not in page


def test_render_html_of_a_warm_start_without_spans_or_drift():
    page = report_page.render_html(_data(spans={
        "span": 0, "train_spans": [0], "warm_start": {"from": "served", "version": 1},
        "drift": {"verdict": "passed", "features": {},
                  "why": "no previous span to compare with"},
        "per_span": [{"span": 0, "candidate": {"accuracy": 0.8, "f1": 0.7}, "served": None}]}))
    section = _spans_section(page)
    assert "<dd>none (data not laid out in spans)</dd>" in section
    assert "<dd>all the data</dd>" in section
    assert "the served model, version 1 (warm start)" in section
    assert "<strong>passed</strong> (no previous span to compare with)" in section
    assert "<h3>" not in section  # no drift measured, no spans to compare


@pytest.mark.parametrize("spans", [{}, {"span": 0}, {
    "span": 0, "per_span": [{"span": 0, "candidate": {"accuracy": 0.8}, "served": None}]}])
def test_render_html_of_a_run_without_spans_has_no_spans_section(spans):
    page = report_page.render_html(_data(spans=spans))
    assert "<h2>Spans</h2>" not in page and "Drift by feature" not in page
    assert "span by span" not in page
