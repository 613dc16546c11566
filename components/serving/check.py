"""The serving check: whether a candidate serves at least as well as the version served now.

Before every push the candidate is loaded as TF Serving loads it, in a fresh process
(`components.serving.check_worker`): it must load, answer the warm-up requests the
Pusher will write with one row per pair and values in range, refuse the documented bad
requests with their InvalidArgument errors, be at most `max_latency_ratio` times as slow
as the served version at batch 1 and at batch 64 (`predict_text`, medians of interleaved
calls in one process), and take at most `max_memory_ratio` times its peak memory (each
version's peak RSS in a process of its own: the served version's is measured by a
second worker, run while the first checks the candidate; the timing waits for it to
end). The result document:

    {"passed": bool, "latency_ms": {"candidate": {"b1": ms, "b64": ms} | null,
                                    "served": {"b1": ms, "b64": ms} | null},
     "memory_mib": {"candidate": MiB | null, "served": MiB | null},
     "served_version": int | null, "bf16": bool, "why": "..."}

A worker that crashes, prints no result or overruns the timeout raises
ServingCheckError with the end of its stderr: that is a fault of the check, not a verdict.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import IO, Any

import components

MAX_LATENCY_RATIO = 1.5  # candidate / served, at batch 1 and at batch 64
MAX_MEMORY_RATIO = 1.5  # candidate / served peak RSS
WORKER_TIMEOUT_SECONDS = 1800.0  # both workers, from the first start
STDERR_TAIL_LINES = 25
BATCH_NAMES = {"b1": "batch 1", "b64": "batch 64"}
NOT_CHECKED_WHY = "not checked: the gate did not bless the candidate"


class ServingCheckError(RuntimeError):
    """The check itself failed: a worker crashed, printed no result or timed out."""


def result_document(passed: bool, why: str, bf16: bool, served_version: int | None = None,
                    latency_ms: dict | None = None, memory_mib: dict | None = None) -> dict:
    return {"passed": passed,
            "latency_ms": latency_ms or {"candidate": None, "served": None},
            "memory_mib": memory_mib or {"candidate": None, "served": None},
            "served_version": served_version, "bf16": bf16, "why": why}


def not_checked(bf16: bool) -> dict:
    """The result for a candidate the gate did not bless: failed, nothing measured."""
    return result_document(False, NOT_CHECKED_WHY, bf16)


def _figure(value: float) -> str:
    """A measurement in words: one decimal, two below 10 (sub-millisecond latencies)."""
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _ratio(candidate: float, served: float) -> float:
    return candidate / served if served > 0 else float("inf")


def _above(what: str, candidate: float, served: float, unit: str, limit: float,
           version: int) -> str:
    return (f"{what} {_figure(candidate)} {unit} is {_ratio(candidate, served):.2f}x version "
            f"{version}'s {_figure(served)} {unit} (above {limit:g}x)")


def decide(measured: dict, served_measured: dict | None, served_version: int | None,
           max_latency_ratio: float = MAX_LATENCY_RATIO,
           max_memory_ratio: float = MAX_MEMORY_RATIO) -> dict:
    """The result document from the worker's measurements (`check_worker`'s main mode) and
    the served version's peak memory (its memory-only mode; None without a served version)."""
    bf16 = bool(measured["bf16"])
    failure = measured["failure"] or (served_measured or {}).get("failure")
    if failure:
        return result_document(False, failure, bf16, served_version)
    served_memory_mib = served_measured["memory_mib"] if served_measured else None
    latency, memory = measured["latency_ms"], measured["memory_mib"]
    document = result_document(True, "", bf16, served_version, latency,
                               {"candidate": memory, "served": served_memory_mib})
    answered = (f"loads, answers {measured['warmup']['requests']} warm-up requests on "
                f"{len(measured['warmup']['signatures'])} signatures, refuses "
                f"{measured['bad_requests']} bad requests as documented")
    if latency["served"] is None:
        document["why"] = (f"{answered}, latency {_figure(latency['candidate']['b1'])} ms / "
                           f"{_figure(latency['candidate']['b64'])} ms at batch 1 / 64, memory "
                           f"{memory:.0f} MiB; no served version to compare with")
        return document
    if served_memory_mib is None:
        raise ValueError("a served version was timed but its memory was not measured")
    ratios = {name: _ratio(latency["candidate"][name], latency["served"][name])
              for name in BATCH_NAMES}
    ratios["memory"] = _ratio(memory, served_memory_mib)
    failures = [_above(f"latency at {label}", latency["candidate"][name],
                       latency["served"][name], "ms", max_latency_ratio, served_version)
                for name, label in BATCH_NAMES.items() if ratios[name] > max_latency_ratio]
    if ratios["memory"] > max_memory_ratio:
        failures.append(_above("peak memory", memory, served_memory_mib, "MiB",
                               max_memory_ratio, served_version))
    if failures:
        document.update(passed=False, why="; ".join(failures))
        return document
    document["why"] = (f"{answered}, latency {ratios['b1']:.2f}x / {ratios['b64']:.2f}x "
                       f"version {served_version} at batch 1 / 64, memory "
                       f"{ratios['memory']:.2f}x")
    return document


def _tail(stream: IO[bytes]) -> str:
    stream.seek(0)
    lines = stream.read().decode("utf-8", "replace").rstrip().splitlines()
    return "\n".join(lines[-STDERR_TAIL_LINES:]) or "(nothing)"


def _worker_module() -> str:
    """The worker's module name. Imported here (not only run), so that the worker's code is
    part of this module's code fingerprint: an edited worker re-runs the check."""
    from components.serving import check_worker  # pylint: disable=import-outside-toplevel

    return check_worker.__name__


class _Worker:
    """One worker process, its stderr kept in a temporary file (a pipe could fill up)."""

    def __init__(self, arguments: list[str], wait_for_go: bool = False):
        self.command = [sys.executable, "-m", _worker_module(), *arguments]
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(components.__file__)))
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [package_root, environment.get("PYTHONPATH")]))
        environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
        self.stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(  # pylint: disable=consider-using-with
            self.command, stdin=subprocess.PIPE if wait_for_go else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=self.stderr, env=environment)

    def go(self) -> None:
        """Lets a worker started with `wait_for_go` load the served version and time."""
        try:
            self.process.stdin.write(b"go\n")
            self.process.stdin.flush()  # `result` closes it
        except BrokenPipeError:
            pass  # it finished early (a failed candidate): its result says why

    def result(self, deadline: float) -> dict:
        """The worker's JSON document; ServingCheckError if it fails or overruns."""
        try:
            stdout, _ = self.process.communicate(timeout=max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired as error:
            self.process.kill()
            self.process.wait()
            raise ServingCheckError(
                f"the serving check's worker did not finish in time ({' '.join(self.command)}); "
                f"its stderr ended with:\n{_tail(self.stderr)}") from error
        lines = stdout.decode("utf-8", "replace").strip().splitlines()
        if self.process.returncode != 0 or not lines:
            raise ServingCheckError(
                f"the serving check's worker exited with code {self.process.returncode}"
                f"{'' if lines else ' and printed no result'} ({' '.join(self.command)}); "
                f"its stderr ended with:\n{_tail(self.stderr)}")
        try:
            return json.loads(lines[-1])
        except ValueError as error:
            raise ServingCheckError(
                f"the serving check's worker printed no JSON result ({' '.join(self.command)}): "
                f"{lines[-1][:200]!r}; its stderr ended with:\n{_tail(self.stderr)}") from error

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.stderr.close()


def measure(candidate_dir: str, eval_split_uri: str, served_dir: str | None, bf16: bool,
            timeout: float = WORKER_TIMEOUT_SECONDS) -> tuple[dict, dict | None]:
    """The worker's measurements of the candidate (timed against `served_dir` if given) and
    the served version's peak memory from a worker of its own (None without one)."""
    common = ["--eval-split", eval_split_uri, *(["--bf16"] if bf16 else [])]
    deadline = time.monotonic() + timeout
    workers = [_Worker(["--candidate", candidate_dir, *common,
                        *(["--served", served_dir, "--wait-for-go"] if served_dir else [])],
                       wait_for_go=bool(served_dir))]
    try:
        served_measured = None
        if served_dir:
            workers.append(_Worker(["--memory-only", served_dir, *common]))
            served_measured = workers[1].result(deadline)
            workers[0].go()
        return workers[0].result(deadline), served_measured
    finally:
        for worker in workers:
            worker.close()


def check_serving(candidate_dir: str, eval_split_uri: str, bf16: bool,
                  served_dir: str | None = None, served_version: int | None = None,
                  max_latency_ratio: float = MAX_LATENCY_RATIO,
                  max_memory_ratio: float = MAX_MEMORY_RATIO,
                  timeout: float = WORKER_TIMEOUT_SECONDS) -> dict[str, Any]:
    """Checks the candidate SavedModel against the served one (if any): the result document.

    `eval_split_uri`: ExampleGen's eval split, whose pairs make the warm-up requests;
    `bf16`: load with TF Serving's bf16 session config (a CPU that computes bf16).
    """
    if (served_dir is None) != (served_version is None):
        raise ValueError(f"give both served_dir and served_version or neither, got "
                         f"{served_dir!r} and {served_version!r}")
    measured, served_measured = measure(candidate_dir, eval_split_uri, served_dir, bf16, timeout)
    return decide(measured, served_measured, served_version, max_latency_ratio,
                  max_memory_ratio)
