"""Every pipeline run of an ML Metadata store, side by side: `qqp-tfx runs`.

`read_runs` reads each `pipeline_run` context, oldest first, with the readers
the other commands use (`run_results` for the executions, `data_summary` for
the statistics, `outcome` for TFMA metrics, the verdict and the push, `spans` for
the span, the training window, the warm start and the drift verdict). A
component TFX reused from its cache is a CACHED execution of the run whose
outputs are the earlier run's artifacts, so a cached run shows the same figures
as the run that computed them. A run that failed or stopped early shows what it
has; the rest is missing.

`to_json` gives one object per run with these keys (missing values are null;
numbers are JSON numbers, never NaN):

    run_id              str    TFX's run id (the `pipeline_run` context's name)
    started             str    when the run started, ISO 8601 UTC ("...Z")
    status              str    "complete" (the Pusher finished), "failed" (a component
                               failed) or "incomplete" (stopped early: --until, killed,
                               or still running)
    failed_components   [str]  components that failed in this run ([] if none)
    unfinished_components [str] components that started but did not finish (still
                               running, or the run was killed)
    cached_components   [str]  components reused from an earlier run's cache
    checkpoint          str    the checkpoint, as given to `qqp-tfx run --checkpoint`
    family              str    its config.json `model_type` (e.g. "bert"); null when the
                               checkpoint does not resolve on this machine without network
    data                str    ExampleGen's input directory
    span                int    the span the run ingested (0: data not laid out in spans;
                               null: no record, e.g. the run stopped before ingesting)
    train_spans         [int]  the spans of its training window (TrainingWindow); null for a
                               run from before spans
    drift               str    the DriftGate's verdict on the span against the previous one:
                               "passed", "stopped" or "accepted"; null: no record
    train_pairs         int    pairs in the ingested train split (StatisticsGen)
    eval_pairs          int    pairs in the ingested eval split (StatisticsGen)
    max_train_examples  int    the Trainer's cap on training pairs (null: no cap)
    max_seq_length      int    Transform's max_seq_length
    epochs              int    Trainer epochs
    learning_rate       float  Trainer peak learning rate
    training_seconds    float  how long the Trainer ran in this run (training and export;
                               null when it was reused from the cache or did not finish)
    warm_start          object where the candidate started (WarmStart): {"from": "served",
                               "version": N} or {"from": "checkpoint", "why": "..."}; null:
                               no record
    candidate_accuracy, candidate_f1, not_fine_tuned_accuracy, not_fine_tuned_f1
                        float  overall eval-split metrics from the Evaluator (TFMA)
    blessed             bool   the BlessingGate's decision
    verdict             [str]  the BlessingGate's reasons, in plain words
    pushed_version      int    the serving version the candidate is served as
    pushed_to           str    that version's directory
    already_served      bool   true: the model was identical to that version, nothing new
                               was written
    problems            [str]  artifacts that could not be read ([] if none)

`format_table` is the plain-text table `qqp-tfx runs` prints; `table_rows` gives
its cells to the HTML report (both in `run_table`, re-exported here).
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
from typing import Any, Callable, Sequence

from components.features import CANDIDATE, NOT_FINE_TUNED
from pipeline.results import run_results, spans
from pipeline.results.run_table import (  # noqa: F401  (re-exported: `qqp-tfx runs`)
    COLUMN_NOTE, COLUMNS, MISSING, UNKNOWN, format_table, pushed_cell, table_rows,
    verdict_word, why)

ACCURACY, F1 = "binary_accuracy", "f1_score"  # TFMA metric names


@dataclasses.dataclass
class RunSummary:  # pylint: disable=too-many-instance-attributes
    """One pipeline run as `qqp-tfx runs` shows it; the fields are the JSON keys."""

    run_id: str
    started: str
    status: str
    failed_components: list[str] = dataclasses.field(default_factory=list)
    unfinished_components: list[str] = dataclasses.field(default_factory=list)
    cached_components: list[str] = dataclasses.field(default_factory=list)
    checkpoint: str | None = None
    family: str | None = None
    data: str | None = None
    span: int | None = None
    train_spans: list[int] | None = None
    drift: str | None = None
    train_pairs: int | None = None
    eval_pairs: int | None = None
    max_train_examples: int | None = None
    max_seq_length: int | None = None
    epochs: int | None = None
    learning_rate: float | None = None
    training_seconds: float | None = None
    warm_start: dict[str, Any] | None = None
    candidate_accuracy: float | None = None
    candidate_f1: float | None = None
    not_fine_tuned_accuracy: float | None = None
    not_fine_tuned_f1: float | None = None
    blessed: bool | None = None
    verdict: list[str] | None = None
    pushed_version: int | None = None
    pushed_to: str | None = None
    already_served: bool | None = None
    problems: list[str] = dataclasses.field(default_factory=list)


# ------------------------------------------------------------------ reading


def read_runs(metadata_path: str) -> list[RunSummary]:
    """Every pipeline run recorded in the store at `metadata_path`, oldest first.

    FileNotFoundError if there is no store there; an empty list if it holds no run.
    """
    store = run_results.open_store(metadata_path)
    metrics_cache: dict[tuple[str, str], dict[str, float]] = {}
    family_cache: dict[str, str | None] = {}
    return [summarize_run(context.name, context.create_time_since_epoch,
                          run_results.run_nodes(store, context), metrics_cache, family_cache)
            for context in run_results.run_contexts(store)]


def _started(milliseconds: int) -> str:
    moment = datetime.datetime.fromtimestamp(milliseconds / 1000, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def run_status(run: dict[str, Any]) -> str:
    """complete, failed or incomplete (see the module docstring)."""
    if any(node.failed for node in run.values()):
        return "failed"
    if "Pusher" in run and run["Pusher"].done:
        return "complete"
    return "incomplete"


def summarize_run(run_id: str, started_ms: int, run: dict[str, Any],
                  metrics_cache: dict[tuple[str, str], dict[str, float]] | None = None,
                  family_cache: dict[str, str | None] | None = None) -> RunSummary:
    """One run's summary from its `run_results.NodeResult`s (by component id)."""
    summary = RunSummary(
        run_id=run_id, started=_started(started_ms), status=run_status(run),
        failed_components=[node for node, result in run.items() if result.failed],
        unfinished_components=[node for node, result in run.items()
                               if not (result.failed or result.done)],
        cached_components=[node for node, result in run.items() if result.cached])
    _read_settings(summary, run)
    trainer = run.get("Trainer")
    if trainer is not None and trainer.done and not trainer.cached:
        summary.training_seconds = trainer.seconds
    if summary.checkpoint is not None:
        cache = {} if family_cache is None else family_cache
        if summary.checkpoint not in cache:
            cache[summary.checkpoint] = checkpoint_family(summary.checkpoint)
        summary.family = cache[summary.checkpoint]
    _guarded(summary, "StatisticsGen statistics", lambda: _read_counts(summary, run))
    _guarded(summary, "span records", lambda: _read_spans(summary, run))
    _guarded(summary, "Evaluator metrics",
             lambda: _read_metrics(summary, run, {} if metrics_cache is None else metrics_cache))
    _guarded(summary, "BlessingGate verdict", lambda: _read_verdict(summary, run))
    _guarded(summary, "Pusher result", lambda: _read_push(summary, run))
    return summary


def _guarded(summary: RunSummary, what: str, read: Callable[[], None]) -> None:
    """Runs one reader; an artifact that cannot be read leaves its fields null."""
    try:
        read()
    except Exception as error:  # pylint: disable=broad-except
        # Artifacts live outside the store (a deleted pipeline root, a TFMA or protobuf
        # parse error): the listing still shows everything else.
        summary.problems.append(f"{what}: {type(error).__name__}: {error}")


def _read_settings(summary: RunSummary, run: dict[str, Any]) -> None:
    """Checkpoint, data and hyperparameters, from the executions' properties.

    They are recorded on every execution of the run, cached or failed ones too.
    """
    def custom_config(node: str) -> dict[str, Any]:
        value = run[node].json_property("custom_config") if node in run else None
        return value if isinstance(value, dict) else {}

    trainer, transform = custom_config("Trainer"), custom_config("Transform")
    not_fine_tuned = custom_config("NotFineTunedModel")
    summary.checkpoint = next((config["checkpoint"] for config in (
        trainer, transform, not_fine_tuned) if isinstance(config.get("checkpoint"), str)), None)
    summary.epochs = _integer(trainer.get("epochs"))
    summary.learning_rate = _real(trainer.get("learning_rate"))
    summary.max_train_examples = _integer(trainer.get("max_train_examples")) or None
    summary.max_seq_length = _integer(transform.get("max_seq_length"))
    if "QqpExampleGen" in run:
        data = run["QqpExampleGen"].properties.get("input_base")
        summary.data = data if isinstance(data, str) else None


def _read_counts(summary: RunSummary, run: dict[str, Any]) -> None:
    # pylint: disable-next=import-outside-toplevel
    from pipeline.results import data_summary

    if not run_results.has_output(run, "StatisticsGen", "statistics"):
        return
    counts = data_summary.split_counts(run["StatisticsGen"])
    summary.train_pairs = counts["train"][0] if "train" in counts else None
    summary.eval_pairs = counts["eval"][0] if "eval" in counts else None


def _read_spans(summary: RunSummary, run: dict[str, Any]) -> None:
    """Span, training window, warm start and drift verdict, those the run recorded."""
    details = spans.span_details(run)
    summary.span = _integer(details.get("span"))
    window = details.get("train_spans")
    if isinstance(window, list) and all(_integer(span) is not None for span in window):
        summary.train_spans = window
    start = details.get("warm_start")
    summary.warm_start = start if isinstance(start, dict) and start.get("from") else None
    drift = details.get("drift")
    verdict = drift.get("verdict") if isinstance(drift, dict) else None
    summary.drift = verdict if isinstance(verdict, str) else None


def _read_metrics(summary: RunSummary, run: dict[str, Any],
                  cache: dict[tuple[str, str], dict[str, float]]) -> None:
    # pylint: disable-next=import-outside-toplevel
    from pipeline.results import outcome

    if not run_results.has_output(run, "Evaluator", "evaluation"):
        return
    uri = run["Evaluator"].output_uri("evaluation")
    for role in (CANDIDATE, NOT_FINE_TUNED):
        if (uri, role) not in cache:
            cache[uri, role] = outcome.overall_metrics(uri, role)
        metrics = cache[uri, role]
        setattr(summary, f"{role}_accuracy", _real(metrics.get(ACCURACY)))
        setattr(summary, f"{role}_f1", _real(metrics.get(F1)))


def _read_verdict(summary: RunSummary, run: dict[str, Any]) -> None:
    # pylint: disable-next=import-outside-toplevel
    from pipeline.results import outcome

    if run_results.has_output(run, "BlessingGate", "blessing"):
        summary.blessed, summary.verdict = outcome.blessing_verdict(run["BlessingGate"])


def _read_push(summary: RunSummary, run: dict[str, Any]) -> None:
    # pylint: disable-next=import-outside-toplevel
    from pipeline.results import outcome

    if not run_results.has_output(run, "Pusher", "pushed_model"):
        return
    pushed_to, already_served = outcome.push_result(run["Pusher"])
    summary.already_served = already_served if pushed_to else None
    if pushed_to:
        summary.pushed_to = pushed_to
        version = os.path.basename(pushed_to.rstrip("/"))
        summary.pushed_version = int(version) if version.isdigit() else None


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _real(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) or math.isinf(value) else float(value)


def _local_checkpoint_dir(checkpoint: str) -> str | None:
    """The checkpoint's local directory if it is on this machine; never downloads."""
    # pylint: disable-next=import-outside-toplevel
    from components.families.checkpoint import DEFAULT_CHECKPOINT, looks_local, resolve_checkpoint

    if "://" in checkpoint:  # resolving would copy it from remote storage
        return None
    if checkpoint == DEFAULT_CHECKPOINT or os.path.isdir(os.path.expanduser(checkpoint)):
        return resolve_checkpoint(checkpoint)
    from components.families import packaged  # pylint: disable=import-outside-toplevel

    if checkpoint in packaged.PACKAGED:  # only once assembled: listing never assembles
        return packaged.assembled_dir(checkpoint)
    if looks_local(checkpoint):
        return None
    # A hub id: only Hugging Face's local cache, no network.
    from huggingface_hub import try_to_load_from_cache  # pylint: disable=import-outside-toplevel

    config = try_to_load_from_cache(checkpoint, "config.json")
    return os.path.dirname(config) if isinstance(config, str) else None


def checkpoint_family(checkpoint: str) -> str | None:
    """config.json's `model_type` of a checkpoint that resolves locally; else None.

    Never raises: a checkpoint moved, deleted, remote or not a model shows as unknown.
    """
    try:
        # pylint: disable-next=import-outside-toplevel
        from components.families.table import read_model_type

        directory = _local_checkpoint_dir(checkpoint)
        return None if directory is None else read_model_type(directory)
    except Exception:  # pylint: disable=broad-except
        return None


# ------------------------------------------------------------------ presenting
# (the table: `run_table`)


def to_json(summaries: Sequence[RunSummary]) -> list[dict[str, Any]]:
    """The JSON list `qqp-tfx runs --format json` prints (keys: the module docstring)."""
    return [dataclasses.asdict(summary) for summary in summaries]
