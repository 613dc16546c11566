"""Notifications when a run ends (`--notify URL`): one JSON document POSTed to a URL.

`build_document` turns how a run ended (`RunEnd`) into the document; `send` POSTs it
(Content-Type application/json, TIMEOUT_SECONDS) and, when that fails (unreachable, an
HTTP error status, a redirect, no answer in time), prints a warning on standard error
naming the URL and the cause: a notification never fails a run nor changes its exit code.
`LocalRunNotice` reads how a `qqp-tfx run` ended from ML Metadata, with the readers the
run summary uses (`run_results`, `outcome`); `from_artifact_metadata` takes the same
facts from the artifacts' JSON metadata of a `qqp-tfx run-compiled` job.

The document:

    pipeline          str        the pipeline's name ("qqp-tfx")
    run_id            str        TFX's run id (as `qqp-tfx runs` lists it), or the
                                 run-compiled job id; null: the run stopped before the
                                 pipeline started (a checkpoint check, the store's lock)
    status            str        "pushed" (blessed and served: a new version, or the
                                 identical version already served), "not pushed" (the run
                                 completed or stopped early, nothing pushed), "failed"
    verdict           [str]      the BlessingGate's reasons; [] when it did not decide
    pushed_version    int|null   the version the candidate is served as
    failed_component  str|null   the component that failed, e.g. "DriftGate"
    message           str        the error's message, or a one-line summary
    serving_dir       str        the TF Serving base directory (`--serving-dir`)
    finished_at       str        when the run ended, ISO 8601 UTC ("...Z")
"""

from __future__ import annotations

import dataclasses
import datetime
import http.client
import json
import os
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Mapping

from pipeline.config import coerce
from pipeline.results import run_results

TIMEOUT_SECONDS = 5.0
PUSHED, NOT_PUSHED, FAILED = "pushed", "not pushed", "failed"


def check_url(url: str) -> str:
    """`url` if it is an http:// or https:// URL with a host; else a ConfigError naming
    --notify (the rule of `notify` in `pipeline.config.RULES`)."""
    return coerce("notify", url)


@dataclasses.dataclass(frozen=True)
class RunEnd:  # pylint: disable=too-many-instance-attributes
    """How a run ended: the facts its notification reports."""

    pipeline: str
    run_id: str | None
    serving_dir: str
    blessed: bool | None = None  # None: the BlessingGate did not decide
    verdict: list[str] = dataclasses.field(default_factory=list)
    pushed_to: str | None = None  # the served version's directory
    already_served: bool = False  # the model was identical to that version
    failed_component: str | None = None
    error: str | None = None  # the error's message: set exactly when the run failed

    @property
    def status(self) -> str:
        """pushed, not pushed or failed."""
        if self.error is not None:
            return FAILED
        return PUSHED if self.pushed_to else NOT_PUSHED

    @property
    def pushed_version(self) -> int | None:
        """The version number of `pushed_to` (its last path component)."""
        if not self.pushed_to:
            return None
        version = os.path.basename(self.pushed_to.rstrip("/"))
        return int(version) if version.isdigit() else None


def summary(end: RunEnd) -> str:
    """One line: the error, or what was decided and pushed."""
    if end.error is not None:
        return end.error
    reasons = "; ".join(end.verdict)
    if end.pushed_to:
        if end.already_served:
            return (f"blessed; identical to version {end.pushed_version}, already served: "
                    "nothing new written")
        return f"blessed; pushed as version {end.pushed_version} to {end.pushed_to}"
    if end.blessed is None:
        return "the run stopped before the BlessingGate decided: nothing pushed"
    if end.blessed:
        return "blessed, but nothing was pushed" + (f": {reasons}" if reasons else "")
    return "not blessed" + (f": {reasons}" if reasons else "")


def _iso_utc(moment: datetime.datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"finished_at {moment}: give a timezone-aware time")
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_document(end: RunEnd, finished_at: datetime.datetime) -> dict[str, Any]:
    """The JSON document of a run's end (keys: the module docstring)."""
    return {"pipeline": end.pipeline, "run_id": end.run_id, "status": end.status,
            "verdict": list(end.verdict), "pushed_version": end.pushed_version,
            "failed_component": end.failed_component, "message": summary(end),
            "serving_dir": end.serving_dir, "finished_at": _iso_utc(finished_at)}


def _warn(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def shown_url(url: str) -> str:
    """`url` without a password (user:password@host), to name it in messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an HTTP error here: urllib would turn the POST into a GET and drop
    the document."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # pylint: disable=R0917
        return None


def _failure_cause(error: BaseException, timeout: float) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, str):  # e.g. URLError("unknown url type: ...")
        return reason
    return f"{type(reason).__name__}: {reason}"


def send(url: str, document: Mapping[str, Any], timeout: float = TIMEOUT_SECONDS,
         warn: Callable[[str], None] = _warn) -> bool:
    """POSTs `document` as JSON to `url`; whether the server answered 2xx.

    Any failure is one warning (through `warn`) naming the URL and the cause; nothing
    is raised.
    """
    request = urllib.request.Request(
        url, data=json.dumps(document, allow_nan=False).encode("utf-8"), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "qqp-tfx"})
    try:
        with urllib.request.build_opener(_NoRedirects).open(request, timeout=timeout):
            return True
    except (OSError, http.client.HTTPException, ValueError) as error:
        # OSError covers URLError, HTTPError, refused connections and timeouts.
        warn(f"qqp-tfx: warning: the notification to {shown_url(url)} failed "
             f"({_failure_cause(error, timeout)}); the run's result is unchanged")
        return False


def notify(url: str, end: RunEnd, finished_at: datetime.datetime | None = None) -> bool:
    """Builds the document of `end` (finished now unless given) and sends it to `url`."""
    moment = finished_at or datetime.datetime.now(datetime.timezone.utc)
    sent = send(url, build_document(end, moment))
    if sent:
        print(f"qqp-tfx: notified {shown_url(url)}: {end.status}", file=sys.stderr)
    return sent


def from_artifact_metadata(pipeline: str, run_id: str | None, serving_dir: str,
                           blessing: Mapping[str, Any] | None,
                           pushed: Mapping[str, Any] | None, *,
                           failed_component: str | None = None,
                           error: str | None = None) -> RunEnd:
    """A run's end from the JSON metadata of its BlessingGate's `blessing` and its
    Pusher's `pushed_model` artifacts (None: no such artifact), as a compiled job's
    ExecutorOutputs hold them."""
    pushed_to = None
    if pushed is not None and pushed.get("pushed") == 1:
        pushed_to = str(pushed["pushed_destination"])
    return RunEnd(
        pipeline=pipeline, run_id=run_id, serving_dir=serving_dir,
        blessed=None if blessing is None else blessing.get("blessed") == 1,
        verdict=[] if blessing is None else json.loads(blessing.get("verdict", "[]")),
        pushed_to=pushed_to,
        already_served=pushed_to is not None and pushed.get("already_served") == 1,
        failed_component=failed_component, error=error)


class LocalRunNotice:
    """The notification of one `qqp-tfx run` (LocalDagRunner, an ML Metadata store).

    `starting()`, called with the store's lock held right before the pipeline runs,
    notes the newest run recorded so far: this run is the one recorded after it.
    Without a URL, both methods do nothing.
    """

    def __init__(self, url: str | None, pipeline: str, metadata_path: str, serving_dir: str):
        self.url = url
        self.pipeline = pipeline
        self.metadata_path = metadata_path
        self.serving_dir = serving_dir
        self.started = False
        self.previous_run: str | None = None
        self.problem: Exception | None = None  # the store could not be read at the start

    def starting(self) -> None:
        """Notes the store's newest run: the pipeline is about to record this one."""
        if self.url is None:
            return
        self.started = True
        try:
            store = self._store()
            contexts = [] if store is None else run_results.run_contexts(store)
            self.previous_run = contexts[-1].name if contexts else None
        except Exception as problem:  # pylint: disable=broad-except
            self.problem = problem  # never fails the run: `ended` names it

    def ended(self, error: str | None = None) -> bool:
        """Sends how the run ended (`error`: its message, when it failed); whether it
        was sent. A run record that cannot be read is a warning, like a failed send."""
        if self.url is None:
            return False
        try:
            end = self.run_end(error)
        except Exception as problem:  # pylint: disable=broad-except
            _warn(f"qqp-tfx: warning: the notification to {shown_url(self.url)} was not "
                  f"sent: the run's record cannot be read ({type(problem).__name__}: "
                  f"{problem}); the run's result is unchanged")
            return False
        return notify(self.url, end)

    def _store(self) -> Any:
        if not os.path.exists(self.metadata_path):
            return None
        return run_results.open_store(self.metadata_path)

    def _first_run_after_previous(self, store: Any) -> Any:
        """The run recorded right after `previous_run` (None: no such run)."""
        contexts = run_results.run_contexts(store)
        names = [context.name for context in contexts]
        if self.previous_run is None:
            later = contexts
        elif self.previous_run in names:
            later = contexts[names.index(self.previous_run) + 1:]
        else:  # the previous run's record is gone: this run cannot be told apart
            raise LookupError(f"{self.metadata_path}: run {self.previous_run}, the newest "
                              "before this one, is no longer recorded")
        return later[0] if later else None

    def run_end(self, error: str | None = None) -> RunEnd:
        """This run's end as the store records it: its id, the component that failed,
        the BlessingGate's verdict and the Pusher's result."""
        from pipeline.results import outcome  # pylint: disable=import-outside-toplevel

        if self.problem is not None:
            raise self.problem
        store = self._store() if self.started else None
        this_run = None if store is None else self._first_run_after_previous(store)
        if this_run is None and error is None:
            raise LookupError(f"{self.metadata_path}: no run recorded after "
                              f"{self.previous_run or 'none'}")
        run = {} if this_run is None else run_results.run_nodes(store, this_run)
        blessed, verdict = None, []
        if run_results.has_output(run, "BlessingGate", "blessing"):
            blessed, verdict = outcome.blessing_verdict(run["BlessingGate"])
        pushed_to, already_served = None, False
        if run_results.has_output(run, "Pusher", "pushed_model"):
            pushed_to, already_served = outcome.push_result(run["Pusher"])
        return RunEnd(
            pipeline=self.pipeline, run_id=None if this_run is None else this_run.name,
            serving_dir=self.serving_dir, blessed=blessed, verdict=verdict,
            pushed_to=pushed_to, already_served=already_served,
            failed_component=next((node for node, result in run.items() if result.failed),
                                  None),
            error=error)
