"""`qqp-tfx run-compiled`: a compiled PipelineJob executed on this machine, as Vertex AI would.

For each task of the spec, in dependency order (independent tasks side by side):

1. the ExecutorInput, built as Vertex AI builds it: input artifacts are the
   upstream tasks' outputs (schema title, URI, unique name, metadata), parameters
   appear both in `parameterValues` and in the legacy `parameters`, output
   artifacts get URIs under the pipeline root, and `outputFile` names the
   ExecutorOutput to write;
2. the `lifecycle.preCacheCheck` driver, where the task has one (FileBasedExampleGen):
   its parameters (the input fingerprint) and output metadata update the task;
3. the cache: a task with caching on whose inputs (upstream artifact names,
   parameters), output types and container are those of an earlier successful
   execution reuses that execution's outputs, as Vertex's cache does (the
   image's code here is this checkout, so its fingerprint stands beside the
   image name in the key);
4. otherwise the container's command and args, placeholders resolved with KFP's
   own local resolver (`kfp.local.placeholder_utils`), run as a subprocess of this
   machine's virtual environment in the project directory: the command the image
   runs, without the image;
5. the ExecutorOutput it wrote is read back and its artifacts go downstream.

Everything lives under the local root (`spec.PathMap`), so artifacts, the
cache and pushed models persist across submissions; `<local root>/.run-compiled/`
holds the cache, each task's log and a record of each job.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from typing import Any, Callable

import yaml

from components.serving.check_component import RESULT_KEY as SERVING_CHECK_KEY
from pipeline.config import REPO_ROOT
from pipeline.fingerprint import checkout_fingerprint
from pipeline.results.spans import describe
from pipeline.runners.dry_run.spec import (CONSTANT_PLACEHOLDERS, PLACEHOLDER, CompiledPipeline,
                                           Task, UnsupportedSpecError)

STATE_DIR = ".run-compiled"
EXECUTOR_OUTPUT_FILE = "executor_output.json"
# The image's environment (Dockerfile ENV) that changes how the steps behave.
IMAGE_ENV = {"TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
LOG_TAIL_LINES = 40

Artifact = dict[str, Any]  # a RuntimeArtifact in its JSON form


class TaskFailedError(RuntimeError):
    """A task's process exited with an error, or wrote no ExecutorOutput."""


@dataclasses.dataclass(frozen=True)
class TaskResult:
    """How a task ended: run or reused from the cache, and its output artifacts."""

    name: str
    cached: bool
    seconds: float
    outputs: dict[str, list[Artifact]]


@dataclasses.dataclass(frozen=True)
class JobResult:
    """Every task of one submission, in the order they finished."""

    job_id: str
    tasks: dict[str, TaskResult]

    def output(self, task: str, key: str) -> Artifact:
        """The single artifact a task wrote under `key`."""
        return self.tasks[task].outputs[key][0]


def _schema_title(artifact_type: dict[str, Any]) -> str:
    if "schemaTitle" in artifact_type:
        return artifact_type["schemaTitle"]
    return yaml.safe_load(artifact_type["instanceSchema"]).get("title", "system.Artifact")


def _parameters(task: Task) -> tuple[dict[str, Any], dict[str, Any]]:
    """The task's constant parameters as `parameterValues` and as legacy `parameters`."""
    values, legacy = {}, {}
    for key, source in task.spec.get("inputs", {}).get("parameters", {}).items():
        runtime_value = source["runtimeValue"]
        if "constantValue" in runtime_value:  # legacy: {"stringValue"|"intValue"|"doubleValue"}
            (kind, value), = runtime_value["constantValue"].items()
            legacy[key] = {kind: value}
            values[key] = value if kind == "stringValue" else (
                int(value) if kind == "intValue" else float(value))
        else:
            values[key] = runtime_value["constant"]
            legacy[key] = _legacy_parameter(values[key])
    return values, legacy


def _legacy_parameter(value: Any) -> dict[str, Any]:
    """A parameter value in the legacy form of `inputs.parameters`."""
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, (int, float)) and float(value).is_integer():
        return {"intValue": str(int(value))}
    return {"doubleValue": value}


class CompiledRun:
    """One submission of a compiled pipeline under a local root."""

    def __init__(self, pipeline: CompiledPipeline, local_root: str,
                 report: Callable[[str], None] = lambda line: print(line, file=sys.stderr)):
        self.pipeline = pipeline
        self.local_root = local_root
        self.checkout = checkout_fingerprint()
        self.job_id = (f"{pipeline.name}-"
                       f"{datetime.datetime.now().strftime('%Y%m%d%H%M%S')}-"
                       f"{uuid.uuid4().hex[:6]}")
        self.report = report
        self.results: dict[str, TaskResult] = {}

    # -- paths -----------------------------------------------------------------------------
    def _state_path(self, *parts: str) -> str:
        path = os.path.join(self.local_root, STATE_DIR, *parts)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def _task_root(self, task: Task) -> str:
        return os.path.join(self.pipeline.pipeline_root, self.job_id, task.name)

    # -- ExecutorInput ---------------------------------------------------------------------
    def _input_artifacts(self, task: Task) -> dict[str, Any]:
        artifacts = {}
        for key, source in task.spec.get("inputs", {}).get("artifacts", {}).items():
            producer = source["taskOutputArtifact"]
            upstream = self.results[producer["producerTask"]].outputs
            artifacts[key] = {"artifacts": upstream[producer["outputArtifactKey"]]}
        return artifacts

    def _output_artifacts(self, task: Task) -> dict[str, Any]:
        outputs = task.component.get("outputDefinitions", {}).get("artifacts", {})
        return {key: {"artifacts": [{
            "name": f"local/artifacts/{uuid.uuid4().hex}",
            "type": {"schemaTitle": _schema_title(definition["artifactType"])},
            "uri": os.path.join(self._task_root(task), key),
            "metadata": {}}]} for key, definition in outputs.items()}

    def executor_input(self, task: Task) -> dict[str, Any]:
        """The ExecutorInput JSON of a task whose upstream tasks have finished."""
        values, legacy = _parameters(task)
        return {"inputs": {"parameterValues": values, "parameters": legacy,
                           "artifacts": self._input_artifacts(task)},
                "outputs": {"artifacts": self._output_artifacts(task),
                            "outputFile": os.path.join(self._task_root(task),
                                                       EXECUTOR_OUTPUT_FILE)}}

    # -- running a command -----------------------------------------------------------------
    def _command(self, task: Task, command: list[str], executor_input: dict[str, Any]
                 ) -> list[str]:
        # pylint: disable=import-outside-toplevel
        from kfp.local import placeholder_utils

        for argument in command:
            for placeholder in PLACEHOLDER.findall(argument):
                if placeholder in CONSTANT_PLACEHOLDERS:
                    continue
                parts = [part for part in re.split(r"\.|\[|\]|''|'", placeholder[4:-2])
                         if part]  # as kfp.local.placeholder_utils splits them
                path = placeholder_utils.convert_placeholder_parts_to_path(parts)
                if placeholder_utils.get_value_using_path(executor_input, path) is None:
                    raise UnsupportedSpecError(f"task {task.name}: placeholder {placeholder} "
                                               "names nothing in its ExecutorInput")
        return placeholder_utils.replace_placeholders(
            command, executor_input, pipeline_resource_name=self.job_id,
            task_resource_name=task.name, pipeline_root=self.pipeline.pipeline_root)

    def _run_process(self, task: Task, what: str, command: list[str]) -> None:
        environment = {**os.environ, **IMAGE_ENV,
                       **{variable["name"]: variable.get("value", "")
                          for variable in task.container.get("env", [])},
                       "PATH": os.path.dirname(sys.executable) + os.pathsep
                       + os.environ.get("PATH", "")}
        log_path = self._state_path("logs", self.job_id, f"{task.name}.{what}.log")
        with open(log_path, "w", encoding="utf-8") as log:
            code = subprocess.run(command, cwd=REPO_ROOT, env=environment, stdout=log,
                                  stderr=subprocess.STDOUT, check=False).returncode
        if code:
            with open(log_path, encoding="utf-8", errors="replace") as log:
                tail = "".join(log.readlines()[-LOG_TAIL_LINES:])
            raise TaskFailedError(f"task {task.name}: {what} exited with code {code}; the "
                                  f"end of its log ({log_path}):\n{tail}")

    @staticmethod
    def _read_executor_output(executor_input: dict[str, Any]) -> dict[str, Any] | None:
        path = executor_input["outputs"]["outputFile"]
        if not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8") as stream:
            return json.load(stream)

    @staticmethod
    def _write_json(path: str, value: Any) -> None:
        """Writes a JSON file whole or not at all (a crash leaves no half file)."""
        with open(f"{path}.{os.getpid()}.tmp", "w", encoding="utf-8") as stream:
            json.dump(value, stream, indent=1)
        os.replace(f"{path}.{os.getpid()}.tmp", path)

    # -- one task --------------------------------------------------------------------------
    def _pre_cache_check(self, task: Task, executor_input: dict[str, Any]) -> None:
        """Runs the driver; its parameters and output metadata update the ExecutorInput."""
        hook = task.container["lifecycle"]["preCacheCheck"]
        self._run_process(task, "preCacheCheck", self._command(
            task, hook.get("command", []) + hook.get("args", []), executor_input))
        driver_output = self._read_executor_output(executor_input)
        if driver_output is None:
            raise TaskFailedError(f"task {task.name}: the preCacheCheck driver wrote no "
                                  f"ExecutorOutput ({executor_input['outputs']['outputFile']})")
        # Vertex renders the executor's input from the task the driver updated: both forms
        # (TFX's executor reads the legacy one), e.g. input_config with the span resolved.
        for key, value in driver_output.get("parameterValues", {}).items():
            executor_input["inputs"]["parameterValues"][key] = value
            executor_input["inputs"]["parameters"][key] = _legacy_parameter(value)
        for key, artifact_list in driver_output.get("artifacts", {}).items():
            for ours, theirs in zip(executor_input["outputs"]["artifacts"][key]["artifacts"],
                                    artifact_list["artifacts"]):
                ours["metadata"].update(theirs.get("metadata", {}))

    def cache_key(self, task: Task, executor_input: dict[str, Any]) -> str:
        """What Vertex's cache compares: input artifact names, parameters, outputs, container."""
        inputs = executor_input["inputs"]
        key = {
            "inputArtifactNames": {key: [artifact["name"] for artifact in value["artifacts"]]
                                   for key, value in inputs["artifacts"].items()},
            "inputParameterValues": inputs["parameterValues"],
            "outputArtifactTypes": {key: value["artifacts"][0]["type"] for key, value in
                                    executor_input["outputs"]["artifacts"].items()},
            "container": {name: task.container.get(name)
                          for name in ("image", "command", "args")},
            "checkout": self.checkout}
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()

    def _outputs(self, task: Task, executor_input: dict[str, Any], before: dict[str, Any] | None
                 ) -> dict[str, list[Artifact]]:
        """The declared output artifacts, updated by what the executor wrote back."""
        executor_output = self._read_executor_output(executor_input)
        if executor_output is None or executor_output == before:
            raise TaskFailedError(f"task {task.name}: the executor wrote no ExecutorOutput "
                                  f"({executor_input['outputs']['outputFile']})")
        written = executor_output.get("artifacts", {})
        outputs = {}
        for key, value in executor_input["outputs"]["artifacts"].items():
            artifacts = [dict(artifact) for artifact in value["artifacts"]]
            for ours, theirs in zip(artifacts, written.get(key, {}).get("artifacts", [])):
                ours["uri"] = theirs.get("uri", ours["uri"])
                ours["metadata"] = theirs.get("metadata", ours["metadata"])
            outputs[key] = artifacts
        return outputs

    def run_task(self, task: Task) -> TaskResult:
        """Executes one task (or reuses its cached outputs) and returns its outputs."""
        started = time.monotonic()
        executor_input = self.executor_input(task)
        if "lifecycle" in task.container:
            self._pre_cache_check(task, executor_input)
        cache_path = self._state_path("cache", f"{self.cache_key(task, executor_input)}.json")
        if task.cached and os.path.isfile(cache_path):
            with open(cache_path, encoding="utf-8") as stream:
                outputs = json.load(stream)
            return TaskResult(task.name, True, time.monotonic() - started, outputs)
        before = self._read_executor_output(executor_input)  # the driver's, if any
        self._run_process(task, "executor", self._command(
            task, task.container.get("command", []) + task.container.get("args", []),
            executor_input))
        outputs = self._outputs(task, executor_input, before)
        if task.cached:
            self._write_json(cache_path, outputs)
        return TaskResult(task.name, False, time.monotonic() - started, outputs)

    # -- the whole job ---------------------------------------------------------------------
    def run(self, parallelism: int = 2) -> JobResult:
        """Runs every task once its upstream tasks are done; stops at the first failure.

        The job record (`<local root>/.run-compiled/jobs/<job id>.json`) lists the tasks
        that finished, also when one failed.
        """
        try:
            return self._run(parallelism)
        finally:
            self._write_json(self._state_path("jobs", f"{self.job_id}.json"),
                             {name: dataclasses.asdict(result)
                              for name, result in self.results.items()})

    def _run(self, parallelism: int) -> JobResult:
        pending = self.pipeline.order()
        self.report(f"qqp-tfx: job {self.job_id}: {len(pending)} tasks, pipeline root "
                    f"{self.pipeline.pipeline_root}")
        for name in pending:
            if "resources" in self.pipeline.tasks[name].container:
                self.report(f"qqp-tfx: {name}: runs on this machine; its resources "
                            f"{json.dumps(self.pipeline.tasks[name].container['resources'])} "
                            "apply on Vertex AI only")
        workers = max(1, parallelism)
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            running: dict[concurrent.futures.Future, str] = {}
            while pending or running:
                for name in [name for name in pending
                             if self.pipeline.tasks[name].upstream <= set(self.results)]:
                    if len(running) >= workers:
                        break
                    pending.remove(name)
                    running[pool.submit(self.run_task, self.pipeline.tasks[name])] = name
                    self.report(f"qqp-tfx: {name}: started")
                done, _ = concurrent.futures.wait(
                    running, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in done:
                    name = running.pop(future)
                    try:
                        result = future.result()
                    except BaseException:
                        for other in running:
                            other.cancel()
                        raise
                    self.results[name] = result
                    self.report(f"qqp-tfx: {name}: "
                                f"{'reused from cache' if result.cached else 'done'} "
                                f"({result.seconds:.0f} s)")
        return JobResult(self.job_id, dict(self.results))


def _span_details(job: JobResult) -> dict[str, Any]:
    """span, train_spans, warm_start and drift of a job, as `results.spans` reads a run."""
    details: dict[str, Any] = {}
    for task, key, names in (("TrainingWindow", "examples", ("span", "train_spans")),
                             ("WarmStart", "model", ("warm_start",)),
                             ("DriftGate", "drift", ("drift",))):
        if task in job.tasks:
            metadata = job.output(task, key)["metadata"]
            for name in names:
                if name in metadata:
                    value = metadata[name]
                    details[name] = json.loads(value) if isinstance(value, str) else int(value)
    return details


def summary_lines(job: JobResult) -> list[str]:
    """The spans, the gate's verdict, the push and which tasks ran, from the tasks' output
    metadata."""
    lines = describe(_span_details(job))
    blessed = False
    if "BlessingGate" in job.tasks:
        blessing = job.output("BlessingGate", "blessing")["metadata"]
        blessed = blessing.get("blessed") == 1
        verdict = "BLESSED" if blessed else "NOT BLESSED"
        lines.append(f"{verdict}: " + "; ".join(json.loads(blessing.get("verdict", "[]"))))
    if "ServingCheck" in job.tasks:
        check = job.output("ServingCheck", "infra_blessing")["metadata"]
        if check.get(SERVING_CHECK_KEY) and blessed:
            result = json.loads(check[SERVING_CHECK_KEY])
            lines.append(f"serving check: {'passed' if result['passed'] else 'FAILED'}: "
                         f"{result['why']}")
    if "Pusher" in job.tasks:
        pushed = job.output("Pusher", "pushed_model")["metadata"]
        if pushed.get("pushed") != 1:
            lines.append("pushed: nothing")
        elif pushed.get("already_served") == 1:
            lines.append(f"pushed: nothing new; already served as "
                         f"{pushed['pushed_destination']}")
        else:
            lines.append(f"pushed to: {pushed['pushed_destination']}")
    ran = [name for name, result in job.tasks.items() if not result.cached]
    cached = [name for name, result in job.tasks.items() if result.cached]
    lines.append(f"ran: {', '.join(ran) or '-'}")
    lines.append(f"reused from cache: {', '.join(cached) or '-'}")
    return lines
