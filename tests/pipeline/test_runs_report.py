"""The report's runs: its "Every run" table (the current run highlighted) and the "Spans"
section of a run with data in spans, read from the runs of `tests/pipeline/runs_store.py`
(the `store` fixture, tests/pipeline/conftest.py).
"""

from __future__ import annotations

import re

import pytest

from pipeline.report import data as report_data
from pipeline.report import page as report_page
from pipeline.results import run_results, runs
from tests.pipeline.runs_store import EXPECTED, SPAN_SLICES


def test_report_shows_every_run_with_the_current_one_highlighted(store):
    listed = runs.read_runs(store.path)
    page = report_page.render_html(report_data.ReportData(
        run_id="run-b", run_time="t", metadata_path=store.path, data_location=None,
        components=[], splits=[], runs=listed))
    assert "<h2>Every run</h2>" in page
    section = page.split("<h2>Every run</h2>")[1].split("</section>")[0]
    rows = section.split("<tbody>")[1].split("<tr")[1:]
    current = [row for row in rows if row.startswith(' class="current"')]
    assert len(current) == 2 and ">run-b<span" in current[0]  # its row and its why
    assert "this report" in current[0] and "accuracy is 0.0625 below" in current[1]
    for run_id in EXPECTED:
        assert f'<td class="text">{run_id}' in section
    assert "distilbert" in section and "1 (same)" in section and "failed at Transform" in section


def test_gather_report_reads_every_run(store):
    reported = report_data.ReportData(run_id="run-hub", run_time="t",
                                      metadata_path=store.path, data_location=None,
                                      components=[], splits=[])
    report_data._add_every_run(reported)  # pylint: disable=protected-access
    assert [run.run_id for run in reported.runs] == list(EXPECTED)
    assert reported.missing == []


def test_report_table_escapes_text():
    summary = runs.RunSummary(run_id="r<1>", started="2026-01-01T00:00:00Z",
                              status="failed", failed_components=["Transform"],
                              checkpoint="<script>x</script>")
    page = report_page.render_html(report_data.ReportData(
        run_id="r<1>", run_time="t", metadata_path="m", data_location=None, components=[],
        splits=[], runs=[summary]))
    assert "<script" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert "r&lt;1&gt;" in page and "failed at Transform" in page


def _section(page: str, title: str) -> str:
    return page.split(f"<h2>{title}</h2>")[1].split("</section>")[0]


def _rows(html_table: str) -> list[list[str]]:
    """The cells of each body row."""
    body = html_table.split("<tbody>")[1].split("</tbody>")[0]
    return [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", body)]


def test_report_of_the_latest_run_shows_its_spans(store):
    reported = report_data.gather_report(store.path)
    assert reported.run_id == "run-span-2"
    assert reported.spans["per_span"] == [
        {"span": span, "candidate": {"accuracy": pytest.approx(values["binary_accuracy"]),
                                     "f1": pytest.approx(values["f1_score"])},
         "served": None} for span, values in SPAN_SLICES.items()]
    page = report_page.render_html(reported)
    assert page.index("<h2>Spans</h2>") < page.index("<h2>Every run</h2>")
    section = _section(page, "Spans")
    assert "<dd>spans 1, 2</dd>" in section
    assert "the served model, version 2 (warm start)" in section
    assert "accepted</strong> (span 2 against span 1)" in section
    drift, by_span = section.split("<h3>")[1:]
    assert _rows(drift) == [["word_overlap", "0.0912", "0.0700", "yes"],
                            ["tokens_per_question", "0.0123", "0.1000", "no"]]
    assert _rows(by_span) == [["1", "0.8500", "0.8000", *["\u2013"] * 4],
                              ["2", "0.9500", "0.9000", *["\u2013"] * 4]]


def test_report_of_a_run_from_before_spans_has_no_spans_section(store):
    metadata = run_results.open_store(store.path)
    [context] = [context for context in run_results.run_contexts(metadata)
                 if context.name == "run-a"]
    reported = report_data.ReportData(run_id="run-a", run_time="t", metadata_path=store.path,
                                      data_location=None, components=[], splits=[])
    report_data._add_spans(  # pylint: disable=protected-access
        reported, run_results.run_nodes(metadata, context))
    assert reported.spans == {"span": 0} and reported.missing == []
    assert "<h2>Spans</h2>" not in report_page.render_html(reported)
