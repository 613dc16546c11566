"""`--notify URL`: the JSON document of a run's end, sending it, and what a failed send does.

The document is built from `RunEnd` (pure); it is sent to an HTTP server on 127.0.0.1 (a
thread, port 0: `receiving_server`, also used by `tests/end_to_end/test_spans_e2e.py`). A
notification that cannot be delivered is one warning, never an error; a URL that is not
http:// or https:// is a configuration error before anything runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import http.server
import json
import socket
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd

from pipeline import cli
from pipeline.config import ConfigError, PipelineConfig
from pipeline.results import notification
from pipeline.results.notification import RunEnd
from pipeline.run_lock import run_lock
from pipeline.runners.dry_run import run as dry_run
from pipeline.runners.dry_run import spec as dry_run_spec

FINISHED = datetime.datetime(2026, 3, 2, 10, 30, 5, tzinfo=datetime.timezone(
    datetime.timedelta(hours=2)))  # 08:30:05 UTC
DRIFT_ERROR = "span 3 drifted from span 2: tokens_per_question diverges by 0.2"
VERDICT = ["accuracy 0.91 >= floor 0.70", "no model is served yet"]


@dataclasses.dataclass
class Received:
    """The URL to notify, and every request the server got: method, Content-Type, JSON."""

    url: str
    requests: list[dict[str, Any]]


@contextlib.contextmanager
def receiving_server(status: int = 200, delay: float = 0.0) -> Iterator[Received]:
    """An HTTP server on 127.0.0.1 that answers `status` after `delay` seconds."""
    requests: list[dict[str, Any]] = []
    release = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        """Records the request, then answers."""

        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            requests.append({"method": self.command, "path": self.path,
                             "content_type": self.headers.get("Content-Type"),
                             "document": json.loads(body) if body else None})
            release.wait(delay)
            self.send_response(status)
            self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_GET = _answer

        def log_message(self, *args) -> None:  # pylint: disable=arguments-differ
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield Received(f"http://127.0.0.1:{server.server_port}/hooks/qqp", requests)
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def _document(**changes: Any) -> dict[str, Any]:
    return {"pipeline": "qqp-tfx", "run_id": "2026-03-02T08:00:00", "status": "pushed",
            "verdict": VERDICT, "pushed_version": 3, "failed_component": None,
            "message": "blessed; pushed as version 3 to /srv/qqp/3", "serving_dir": "/srv",
            "finished_at": "2026-03-02T08:30:05Z", **changes}


PUSHED = RunEnd("qqp-tfx", "2026-03-02T08:00:00", "/srv", blessed=True, verdict=VERDICT,
                pushed_to="/srv/qqp/3")


# ------------------------------------------------------------------ the document (pure)


def test_the_document_of_a_pushed_run():
    assert notification.build_document(PUSHED, FINISHED) == _document()
    same = dataclasses.replace(PUSHED, already_served=True)
    assert notification.build_document(same, FINISHED) == _document(
        message="blessed; identical to version 3, already served: nothing new written")


@pytest.mark.parametrize("end, message", [
    (dataclasses.replace(PUSHED, blessed=False, pushed_to=None, verdict=["F1 below 0.6"]),
     "not blessed: F1 below 0.6"),
    (dataclasses.replace(PUSHED, pushed_to=None, verdict=["serving check: no answer"]),
     "blessed, but nothing was pushed: serving check: no answer"),  # e.g. ServingCheck
    (dataclasses.replace(PUSHED, blessed=None, pushed_to=None, verdict=[]),
     "the run stopped before the BlessingGate decided: nothing pushed"),  # --until
])
def test_the_document_of_a_run_that_pushed_nothing(end, message):
    assert notification.build_document(end, FINISHED) == _document(
        status="not pushed", verdict=end.verdict, pushed_version=None, message=message)


def test_the_document_of_a_failed_run_names_the_component_and_its_error():
    failed = RunEnd("qqp-tfx", "run-9", "/srv", failed_component="DriftGate",
                    error=DRIFT_ERROR)
    assert notification.build_document(failed, FINISHED) == _document(
        run_id="run-9", status="failed", verdict=[], pushed_version=None,
        failed_component="DriftGate", message=DRIFT_ERROR)
    with pytest.raises(ValueError, match="timezone-aware"):
        notification.build_document(failed, FINISHED.replace(tzinfo=None))


def test_a_compiled_jobs_artifact_metadata_gives_the_same_facts():
    blessing = {"blessed": 1, "verdict": json.dumps(VERDICT)}
    pushed = {"pushed": 1, "pushed_destination": "/srv/qqp/3", "already_served": 0}
    assert notification.from_artifact_metadata(
        "qqp-tfx", "2026-03-02T08:00:00", "/srv", blessing, pushed) == PUSHED
    stopped = notification.from_artifact_metadata(
        "qqp-tfx", "job-1", "/srv", None, None, failed_component="DriftGate", error="boom")
    assert (stopped.status, stopped.blessed, stopped.verdict) == ("failed", None, [])


# ------------------------------------------------------------------ sending


def test_one_post_with_the_json_document():
    with receiving_server() as server:
        assert notification.send(server.url, _document())
    assert server.requests == [{"method": "POST", "path": "/hooks/qqp",
                                "content_type": "application/json", "document": _document()}]


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("status, delay, cause", [
    (500, 0.0, "(HTTP 500 Internal Server Error)"),
    (302, 0.0, "(HTTP 302 Found)"),  # a redirect would lose the POST's body
    (200, 5.0, "(no answer within 0.3 s)"),
])
def test_an_error_status_or_a_timeout_is_only_a_warning(status, delay, cause, capsys):
    with receiving_server(status, delay) as server:
        assert not notification.send(server.url, _document(), timeout=0.3)
    assert [request["method"] for request in server.requests] == ["POST"]
    assert capsys.readouterr().err == (f"qqp-tfx: warning: the notification to {server.url} "
                                       f"failed {cause}; the run's result is unchanged\n")


def test_an_unreachable_url_is_only_a_warning(capsys):
    url = f"http://127.0.0.1:{_unused_port()}/hook"
    assert not notification.send(url, _document(), timeout=2)
    warning = capsys.readouterr().err
    assert warning.startswith(f"qqp-tfx: warning: the notification to {url} failed (")
    assert "Connection refused" in warning
    shown = notification.shown_url("https://bot:s3cret@hooks.example.com/x")
    assert shown == "https://bot:***@hooks.example.com/x"


# ------------------------------------------------------------------ only http(s) URLs


@pytest.mark.parametrize("url", ["ftp://hooks.example.com/x", "hooks.example.com/x",
                                 "file:///tmp/x", "http://", "https://[::1/x", ""])
def test_a_url_that_is_not_http_or_https_is_a_config_error(url):
    message = f"--notify: {url!r} is not allowed; expected an http:// or https:// URL"
    with pytest.raises(ConfigError) as refused:
        PipelineConfig(notify=url)
    assert str(refused.value) == message
    with pytest.raises(ConfigError, match="expected an http:// or https:// URL"):
        notification.check_url(url)
    assert notification.check_url("HTTPS://hooks.example.com/x?k=1")


@pytest.mark.parametrize("argv", [
    ["run", "--notify", "ftp://example.com/x"],
    ["run", "--config", "{config}"],
    ["run-compiled", "no-such-spec.json", "--local-root", "local", "--notify", "mailto:a@b"],
    ["compile", "--image", "i", "--pipeline-root", "gs://b/r", "--serving-dir", "gs://b/s",
     "--config", "{config}"],
])
def test_a_bad_notify_stops_every_command_before_anything_runs(argv, tmp_path, monkeypatch,
                                                               capsys):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "weekly.yaml"
    notify = "https://hooks.example.com/x" if argv[0] == "compile" else "ws://example.com"
    config.write_text(yaml.safe_dump({"notify": notify}))
    assert cli.main([part.format(config=config) for part in argv]) == cli.EXIT_BAD_INPUT
    error = capsys.readouterr().err.strip().splitlines()[-1]
    if argv[0] == "compile":  # Vertex AI runs do not notify
        assert error.startswith("qqp-tfx: error: notify https://hooks.example.com/x: compiled "
                                "pipelines do not notify")
    else:
        assert error.startswith("qqp-tfx: error: --notify: ")
        assert error.endswith("is not allowed; expected an http:// or https:// URL")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["weekly.yaml"]


# ------------------------------------------------------------------ which run, local runs


def _record_run(path: Path, run_id: str,  # pylint: disable=too-many-locals
                executions: list[tuple[str, str, dict]]) -> None:
    """A pipeline run as TFX records it: executions (node, state, {output key: the artifact's
    custom properties}) in a `pipeline_run` context and their `node` contexts."""
    config = mlmd.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    config.sqlite.connection_mode = mlmd.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    store = metadata_store.MetadataStore(config)

    def context(type_name: str, name: str) -> mlmd.Context:
        found = store.get_context_by_type_and_name(type_name, name)
        if found is not None:
            return found
        made = mlmd.Context(name=name, type_id=store.put_context_type(
            mlmd.ContextType(name=type_name)))
        [made.id] = store.put_contexts([made])
        return made

    run = context("pipeline_run", run_id)
    for node, state, outputs in executions:
        events = []
        for key, properties in outputs.items():
            artifact = mlmd.Artifact(uri=str(path.parent / node / key), type_id=(
                store.put_artifact_type(mlmd.ArtifactType(name=key))))
            for name, value in properties.items():
                setattr(artifact.custom_properties[name],
                        "int_value" if isinstance(value, int) else "string_value", value)
            event = mlmd.Event(type=mlmd.Event.OUTPUT)
            event.path.steps.add().key = key
            events.append((artifact, event))
        store.put_execution(
            mlmd.Execution(type_id=store.put_execution_type(mlmd.ExecutionType(
                name=f"tfx.{node}")), last_known_state=mlmd.Execution.State.Value(state)),
            events, [context("pipeline", "qqp-tfx"), run, context("node", f"qqp-tfx.{node}")])


PUSHED_RUN = [("BlessingGate", "COMPLETE", {"blessing": {"blessed": 1,
                                                         "verdict": json.dumps(VERDICT)}}),
              ("Pusher", "COMPLETE", {"pushed_model": {
                  "pushed": 1, "pushed_destination": "/srv/qqp/3", "already_served": 0}})]


def test_a_local_run_is_the_one_recorded_after_the_newest_at_its_start(tmp_path):
    store = tmp_path / "md.sqlite"
    notice = notification.LocalRunNotice("http://127.0.0.1:9/", "qqp-tfx", str(store), "/srv")
    notice.starting()  # no store yet
    _record_run(store, "2026-03-02T08:00:00", PUSHED_RUN)
    assert notice.run_end() == PUSHED

    notice.starting()
    assert notice.previous_run == "2026-03-02T08:00:00"
    with pytest.raises(LookupError, match="no run recorded after 2026-03-02T08:00:00"):
        notice.run_end()  # a run that succeeded must be recorded
    _record_run(store, "run-drifted", [("QqpExampleGen", "COMPLETE", {}),
                                       ("DriftGate", "FAILED", {})])
    with receiving_server() as server:
        notice.url = server.url
        assert notice.ended(error=DRIFT_ERROR)
    [request] = server.requests
    assert request["document"]["run_id"] == "run-drifted"
    assert request["document"]["failed_component"] == "DriftGate"
    assert (request["document"]["status"], request["document"]["message"]) == (
        "failed", DRIFT_ERROR)


def test_an_unreadable_store_is_a_warning_and_nothing_is_sent(tmp_path, capsys):
    with receiving_server() as server:
        notice = notification.LocalRunNotice(server.url, "qqp-tfx", str(tmp_path), "/srv")
        notice.starting()  # the "store" is a directory: never fails the run
        assert not notice.ended()
    assert not server.requests
    assert capsys.readouterr().err.startswith(
        f"qqp-tfx: warning: the notification to {server.url} was not sent: the run's record "
        "cannot be read (")


@pytest.mark.parametrize("status", [200, 500])
def test_a_run_that_never_started_is_notified_and_keeps_its_exit_code(status, tmp_path,
                                                                       monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    metadata = str(tmp_path / "md.sqlite")
    with receiving_server(status) as server, run_lock(metadata):  # another run holds it
        assert cli.main(["run", "--until", "QqpExampleGen", "--metadata", metadata,
                         "--serving-dir", str(tmp_path / "serving"),
                         "--notify", server.url]) == cli.EXIT_BAD_INPUT
    [request] = server.requests
    assert request["document"]["status"] == "failed"
    assert (request["document"]["run_id"], request["document"]["failed_component"]) == (
        None, None)
    assert request["document"]["message"].startswith(f"{metadata} is in use by another")
    assert request["document"]["serving_dir"] == str(tmp_path / "serving")
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith(f"qqp-tfx: error: {metadata} is in use")
    assert (f"qqp-tfx: warning: the notification to {server.url} failed (HTTP 500 "
            in err) == (status == 500)


# ------------------------------------------------------------------ run-compiled


@pytest.mark.parametrize("fails", [False, True])
def test_run_compiled_notifies_from_its_tasks_metadata(fails, tmp_path, monkeypatch, capsys):
    destination = json.dumps({"filesystem": {"base_directory": f"{tmp_path}/serving/qqp"}})
    pusher = dry_run_spec.Task("Pusher", {"inputs": {"parameters": {"push_destination": {
        "runtimeValue": {"constantValue": {"stringValue": destination}}}}}}, {}, {})
    compiled = dry_run_spec.CompiledPipeline("qqp-tfx", str(tmp_path / "root"), {
        "DriftGate": dry_run_spec.Task("DriftGate", {}, {}, {}), "Pusher": pusher})
    monkeypatch.setattr(dry_run_spec, "load_spec", lambda path, path_map: compiled)

    def run(job: dry_run.CompiledRun, _parallelism: int) -> dry_run.JobResult:
        if fails:
            raise dry_run.TaskFailedError("task DriftGate: executor exited with code 1; ...")
        for name, _, outputs in PUSHED_RUN:  # KFP artifact metadata: the same values
            job.results[name] = dry_run.TaskResult(name, False, 1.0, {
                key: [{"metadata": dict(metadata)}] for key, metadata in outputs.items()})
        return dry_run.JobResult(job.job_id, dict(job.results))

    monkeypatch.setattr(dry_run.CompiledRun, "run", run)
    with receiving_server() as server:
        assert cli.main(["run-compiled", "spec.json", "--local-root", str(tmp_path),
                         "--notify", server.url]) == (1 if fails else 0)
    [request] = server.requests
    document = request["document"]
    assert document["run_id"].startswith("qqp-tfx-")  # the job id
    assert document["serving_dir"] == f"{tmp_path}/serving"
    if fails:
        assert (document["status"], document["failed_component"]) == ("failed", "DriftGate")
        assert document["message"].startswith("task DriftGate: executor exited with code 1")
    else:
        assert {key: document[key] for key in ("status", "verdict", "pushed_version")} == {
            "status": "pushed", "verdict": VERDICT, "pushed_version": 3}
    assert f"qqp-tfx: notified {server.url}: {document['status']}" in capsys.readouterr().err
