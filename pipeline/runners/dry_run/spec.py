"""Reading a compiled PipelineJob for `qqp-tfx run-compiled`: paths, tasks, what it can run.

The spec is the JSON `qqp-tfx compile` writes (KFP pipeline spec 2.0 inside a Vertex
AI PipelineJob). `load_spec` maps every Cloud Storage location and the image's
project directory to this machine and checks that each task is something the
local run can execute faithfully: a container executor, constant parameters,
inputs from upstream tasks, the default trigger policy, placeholders KFP's
resolver knows, Beam in-process. Anything else raises `UnsupportedSpecError`
naming it: nothing is skipped.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import json
import os
import re
from pathlib import Path
from typing import Any

from pipeline.config import REPO_ROOT, ConfigError
from pipeline.fingerprint import module_source
from pipeline.runners.vertex import IMAGE_ROOT

# Placeholders with no key, as KFP's local resolver spells them.
CONSTANT_PLACEHOLDERS = frozenset({
    "{{$}}", "{{$.outputs.output_file}}", "{{$.outputMetadataUri}}",
    "{{$.pipeline_job_name}}", "{{$.pipeline_job_uuid}}", "{{$.pipeline_task_name}}",
    "{{$.pipeline_task_uuid}}", "{{$.pipeline_root}}"})
PLACEHOLDER = re.compile(r"\{\{\$[^{}]*\}\}")
# A dotted name of the project's code in the spec (TFX's own `tfx.components...` aside):
# executor classes, `preprocessing_fn`, `run_fn`.
PROJECT_REFERENCE = re.compile(r"(?<![\w./-])components(?:\.[A-Za-z_]\w*)+")
IN_PROCESS_BEAM_RUNNERS = ("DirectRunner", "direct")
SUPPORTED_LIFECYCLE_HOOKS = ("preCacheCheck",)
# Container fields the local run honours; `resources` is reported, not reproduced.
SUPPORTED_CONTAINER_FIELDS = frozenset({"image", "command", "args", "lifecycle", "env",
                                        "resources"})
SUPPORTED_TASK_FIELDS = frozenset({"componentRef", "taskInfo", "inputs", "dependentTasks",
                                   "cachingOptions"})


class UnsupportedSpecError(ConfigError):
    """Something in the spec that the local run cannot execute as Vertex AI would."""


@dataclasses.dataclass(frozen=True)
class PathMap:
    """Where the spec's locations live on this machine.

    `gs://B/P` and `/gcs/B/P` (Cloud Storage FUSE) become `<local_root>/B/P`; the
    image's project directory (`image_root`, /pipeline by default) becomes this
    checkout, which is what the image is built from.
    """

    local_root: str
    image_root: str = IMAGE_ROOT

    @functools.cached_property
    def pattern(self) -> re.Pattern:
        """Matches a location at the start of a path (not inside another path)."""
        prefixes = "|".join(re.escape(prefix) for prefix in
                            ("gs://", "/gcs/", self.image_root.rstrip("/") + "/"))
        return re.compile(rf"(?<![\w.\-/~])({prefixes})")

    def rewrite(self, text: str) -> str:
        """`text` with every mapped location replaced by its local path."""
        image_prefix = self.image_root.rstrip("/") + "/"

        def local(match: re.Match) -> str:
            if match.group(1) == image_prefix:
                return str(REPO_ROOT) + "/"
            return self.local_root.rstrip("/") + "/"

        return self.pattern.sub(local, text)


@dataclasses.dataclass(frozen=True)
class Task:
    """One task of the root DAG, with its component and container executor."""

    name: str
    spec: dict[str, Any]  # root.dag.tasks[name]
    component: dict[str, Any]  # components[componentRef.name]
    container: dict[str, Any]  # deploymentSpec.executors[executorLabel].container

    @property
    def upstream(self) -> set[str]:
        """The tasks this one waits for: named dependencies and artifact producers."""
        producers = {source["taskOutputArtifact"]["producerTask"]
                     for source in self.spec.get("inputs", {}).get("artifacts", {}).values()}
        return set(self.spec.get("dependentTasks", [])) | producers

    @property
    def cached(self) -> bool:
        """Whether Vertex AI may reuse an earlier execution of this task."""
        return bool(self.spec.get("cachingOptions", {}).get("enableCache", False))


@dataclasses.dataclass(frozen=True)
class CompiledPipeline:
    """A PipelineJob, its paths already mapped to this machine."""

    name: str
    pipeline_root: str
    tasks: dict[str, Task]

    def order(self) -> list[str]:
        """Task names in an order where every task follows all of its upstream tasks."""
        ordered: list[str] = []
        remaining = dict(self.tasks)
        while remaining:
            ready = sorted(name for name, task in remaining.items()
                           if task.upstream <= set(ordered))
            if not ready:
                raise UnsupportedSpecError(f"tasks {sorted(remaining)} depend on each other "
                                           "or on tasks that are not in the spec")
            ordered += ready
            for name in ready:
                del remaining[name]
        return ordered


def _rewrite_strings(value: Any, path_map: PathMap) -> Any:
    if isinstance(value, str):
        return path_map.rewrite(value)
    if isinstance(value, list):
        return [_rewrite_strings(item, path_map) for item in value]
    if isinstance(value, dict):
        return {key: _rewrite_strings(item, path_map) for key, item in value.items()}
    return value


def _check_inputs(name: str, spec: dict[str, Any]) -> None:
    inputs = spec.get("inputs", {})
    for key, source in inputs.get("artifacts", {}).items():
        if set(source) != {"taskOutputArtifact"}:
            raise UnsupportedSpecError(f"task {name}: input artifact {key} comes from "
                                       f"{sorted(source)}; only upstream task outputs are "
                                       "supported")
    for key, source in inputs.get("parameters", {}).items():
        runtime_value = source.get("runtimeValue", {})
        if set(source) != {"runtimeValue"} or not (
                "constantValue" in runtime_value or "constant" in runtime_value):
            raise UnsupportedSpecError(f"task {name}: parameter {key} is {json.dumps(source)}; "
                                       "only constant parameters are supported")


def _check_container(name: str, container: dict[str, Any]) -> None:
    for field in sorted(set(container) - SUPPORTED_CONTAINER_FIELDS):
        raise UnsupportedSpecError(f"task {name}: container field {field} is not supported")
    for hook in container.get("lifecycle", {}):
        if hook not in SUPPORTED_LIFECYCLE_HOOKS:
            raise UnsupportedSpecError(f"task {name}: lifecycle hook {hook} is not supported")
    commands = [container.get("command", []) + container.get("args", [])] + [
        hook.get("command", []) + hook.get("args", [])
        for hook in container.get("lifecycle", {}).values()]
    for argument in (argument for command in commands for argument in command):
        for placeholder in PLACEHOLDER.findall(argument):
            if placeholder not in CONSTANT_PLACEHOLDERS and not placeholder.startswith(
                    ("{{$.inputs.", "{{$.outputs.")):
                raise UnsupportedSpecError(f"task {name}: placeholder {placeholder} is not "
                                           "supported")
            if "json_escape" in placeholder:
                raise UnsupportedSpecError(f"task {name}: placeholder {placeholder} "
                                           "(json_escape) is not supported")
    for runner in _beam_runners(commands):
        if runner not in IN_PROCESS_BEAM_RUNNERS:
            raise UnsupportedSpecError(
                f"task {name}: Beam --runner={runner}: the local run executes Beam in-process "
                "only; compile without that --beam-pipeline-args for the dry run")
    for variable in container.get("env", []):
        if PLACEHOLDER.search(variable.get("value", "")):
            raise UnsupportedSpecError(f"task {name}: environment variable {variable['name']} "
                                       "holds a placeholder, which is not supported")


def _beam_runners(commands: list[list[str]]) -> list[str]:
    """The values of every `--runner=X` and `--runner X` in the commands."""
    runners = []
    for command in commands:
        for index, argument in enumerate(command):
            if argument.startswith("--runner="):
                runners.append(argument.split("=", 1)[1])
            elif argument == "--runner" and index + 1 < len(command):
                runners.append(command[index + 1])
    return runners


def _check_component(name: str, spec: dict[str, Any], component: dict[str, Any]) -> None:
    if "dag" in component:
        raise UnsupportedSpecError(f"task {name}: sub-DAGs are not supported")
    if component.get("outputDefinitions", {}).get("parameters"):
        raise UnsupportedSpecError(f"task {name}: output parameters are not supported")
    given = set(spec.get("inputs", {}).get("parameters", {}))
    for key in sorted(set(component.get("inputDefinitions", {}).get("parameters", {})) - given):
        raise UnsupportedSpecError(f"task {name}: parameter {key} has no constant value "
                                   "(defaults and pipeline inputs are not supported)")


def _top_level_names(source: Path) -> set[str]:
    """The names a module defines at its top level (classes, functions, assignments, imports),
    and the `<function>_Executor` classes TFX's @component decorator makes of its functions."""
    names: set[str] = set()
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names.update({node.name, f"{node.name}_Executor"})
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(target.id for target in targets if isinstance(target, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def _resolves_here(reference: str) -> bool:
    """Whether a dotted project reference names a module of this checkout
    (`components.features`) or a name defined in one (`components.data.example_gen.Executor`)."""
    parts = reference.split(".")
    for end in range(len(parts), 1, -1):
        source = module_source(".".join(parts[:end]))
        if source is not None:
            return end == len(parts) or parts[end] in _top_level_names(source)
    return False


def _check_project_code(spec_path: str, pipeline_spec: dict[str, Any]) -> None:
    """UnsupportedSpecError, before any task runs, if an executor or a function the spec
    names (executor classes, `preprocessing_fn`, `run_fn`) is not in this checkout: the
    spec was compiled from another layout of the code, and would fail half-way."""
    text = json.dumps(pipeline_spec)
    missing = sorted({reference for reference in PROJECT_REFERENCE.findall(text)
                      if not _resolves_here(reference)})
    if missing:
        raise UnsupportedSpecError(
            f"{spec_path} was compiled from another version of this project's code: it names "
            f"{', '.join(missing)}, which this checkout does not have; nothing was run. "
            "Compile it again with this checkout (`qqp-tfx compile`).")


def _task(name: str, spec: dict[str, Any], pipeline_spec: dict[str, Any]) -> Task:
    for key in sorted(set(spec) - SUPPORTED_TASK_FIELDS):
        raise UnsupportedSpecError(f"task {name}: {key} is not supported")
    component = pipeline_spec["components"][spec["componentRef"]["name"]]
    _check_component(name, spec, component)
    executor = pipeline_spec["deploymentSpec"]["executors"][component["executorLabel"]]
    kinds = sorted(executor)
    if kinds != ["container"]:
        raise UnsupportedSpecError(f"task {name}: executor kind {', '.join(kinds)} is not "
                                   "supported (only container executors are)")
    _check_inputs(name, spec)
    _check_container(name, executor["container"])
    return Task(name, spec, component, executor["container"])


def load_spec(spec_path: str, path_map: PathMap) -> CompiledPipeline:
    """Reads a PipelineJob JSON, maps its paths, and checks every task can run here."""
    if not os.path.isfile(spec_path):
        raise ConfigError(f"{spec_path}: no such file")
    with open(spec_path, encoding="utf-8") as stream:
        try:
            job = json.load(stream)
        except json.JSONDecodeError as error:
            raise ConfigError(f"{spec_path}: not a PipelineJob JSON ({error}); give the .json "
                              "that `qqp-tfx compile` writes") from None
    if "pipelineSpec" not in job or "gcsOutputDirectory" not in job.get("runtimeConfig", {}):
        raise ConfigError(f"{spec_path}: not a Vertex AI PipelineJob (no pipelineSpec and "
                          "runtimeConfig.gcsOutputDirectory); compile to a .json file")
    job = _rewrite_strings(job, path_map)
    pipeline_spec = job["pipelineSpec"]
    unsupported_root = sorted(set(pipeline_spec["root"]) - {"dag", "inputDefinitions"})
    if unsupported_root or pipeline_spec["root"].get("inputDefinitions"):
        raise UnsupportedSpecError(f"pipeline inputs and {unsupported_root} at the root are "
                                   "not supported")
    _check_project_code(spec_path, pipeline_spec)
    tasks = {name: _task(name, spec, pipeline_spec)
             for name, spec in pipeline_spec["root"]["dag"]["tasks"].items()}
    return CompiledPipeline(name=pipeline_spec["pipelineInfo"]["name"],
                            pipeline_root=job["runtimeConfig"]["gcsOutputDirectory"],
                            tasks=tasks)
