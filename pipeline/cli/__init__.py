"""The `qqp-tfx` command line. Heavy imports (TensorFlow, TFX) happen only inside commands."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from typing import TYPE_CHECKING, Iterator, Sequence

from pipeline.cli import checkpoints, quiet, versions
from pipeline.cli.parser import (QUIET_COMMANDS, build_parser, compile_config_from_args,
                                 config_from_args)
from pipeline.config import COMPONENT_IDS, ConfigError, PipelineConfig

if TYPE_CHECKING:
    from components.data.records import QqpPair
    from pipeline.results.notification import LocalRunNotice
    from pipeline.runners.dry_run.run import CompiledRun
    from pipeline.runners.dry_run.spec import CompiledPipeline

# Exit codes: 0 done (blessed or not), 1 anything unexpected, 2 bad input or configuration,
# 3 not blessed with --fail-if-not-blessed.
EXIT_BAD_INPUT = 2
EXIT_NOT_BLESSED = 3
# `--until` targets that never touch the checkpoint.
DATA_ONLY_COMPONENTS = COMPONENT_IDS[:COMPONENT_IDS.index("DataValidationGate") + 1]


def _user_facing_error(error: BaseException) -> BaseException | None:
    """Finds a data, configuration or checkpoint error anywhere in an exception's chain.

    Only modules already imported are looked at: an error class whose module was
    never loaded cannot be in the chain, and importing it (TFX) would cost seconds.
    """
    known = tuple(getattr(sys.modules[module], name) for module, name in (
        ("components.data.records", "QqpDataError"),
        ("components.data.validation_gate", "DataAnomaliesError"),
        ("components.drift.gate", "DataDriftError"),
        ("components.families.errors", "CheckpointError"),
        ("components.serving.pusher", "ServedModelChangedError"))
        if module in sys.modules) + (ConfigError,)
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, known):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _check_checkpoint(config: PipelineConfig) -> None:
    """Checks that the checkpoint's family is supported, that it loads and takes
    `max_seq_length` tokens; else an error."""
    # pylint: disable=import-outside-toplevel
    from components.families.check import check_checkpoint
    from components.families.encoders import usable_positions

    print(f"qqp-tfx: checking checkpoint {config.checkpoint}", file=sys.stderr)
    encoder_config = check_checkpoint(config.checkpoint)
    positions = usable_positions(encoder_config)
    if config.max_seq_length > positions:
        raise ConfigError(f"--max-seq-length: {config.max_seq_length} is not allowed; "
                          f"the checkpoint takes at most {positions} tokens")


def _error_message(error: BaseException) -> str:
    """What a notification says of the error that ended a run."""
    known = _user_facing_error(error)
    if known is not None:
        return _first_message(known)
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _run(args: argparse.Namespace) -> int:
    """Runs the pipeline; with --notify, then POSTs how it ended (`results.notification`)."""
    # pylint: disable=import-outside-toplevel,redefined-outer-name
    from pipeline.cli import progress
    from pipeline.config import PIPELINE_NAME
    from pipeline.results.notification import LocalRunNotice

    config = config_from_args(args).with_absolute_paths()
    progress.install(args.verbose)
    notice = LocalRunNotice(config.notify, PIPELINE_NAME, config.metadata, config.serving_dir)
    try:
        code = _run_pipeline(args, config, notice)
    except BaseException as error:  # a failed (or interrupted) run is notified too
        notice.ended(error=_error_message(error))
        raise
    notice.ended()
    return code


def _run_pipeline(args: argparse.Namespace, config: PipelineConfig,
                  notice: LocalRunNotice) -> int:
    """Runs the pipeline with LocalDagRunner and prints the run's summary."""
    # pylint: disable=import-outside-toplevel
    from pipeline.results import data_summary, outcome, run_results, spans
    from pipeline.run_lock import run_lock
    from pipeline.runners import local

    if config.until not in DATA_ONLY_COMPONENTS:
        _check_checkpoint(config)
    print(f"qqp-tfx: running the pipeline on {config.data}", file=sys.stderr)
    # Only now: a run stopped by a bad option must not create the pipeline root.
    quiet.set_log_path(os.path.join(config.pipeline_root, "logs", f"run-{quiet.timestamp()}.log"))
    with run_lock(config.metadata):
        notice.starting()
        local.run_local(config)
    run = run_results.latest_run(config.metadata)
    quiet.sync()  # the progress lines on standard error before the results on standard output
    if "StatisticsGen" in run:
        print("Ingested and validated:")
        for line in data_summary.summarize(run["StatisticsGen"]):
            print(f"  {line}")
    for line in spans.describe(spans.span_details(run)):
        print(line)
    blessed = None
    if "Pusher" in run:
        result = outcome.collect(run_results.latest_run_id(config.metadata), run)
        print(outcome.format_table(result))
        # A candidate the serving check stopped is not pushed: for CI, not blessed either.
        blessed = result.blessed and (result.serving_check or {}).get("passed", True)
    cached = [node for node, result in run.items() if result.cached]
    if cached:
        print(f"Reused from cache: {', '.join(sorted(cached))}")
    print(f"Artifacts: {config.pipeline_root}  Metadata: {config.metadata}")
    return EXIT_NOT_BLESSED if args.fail_if_not_blessed and blessed is False else 0


def _pairs_to_predict(args: argparse.Namespace) -> Iterator[QqpPair]:
    """The pairs `predict` scores: one from --question1/--question2, or those of --input
    (read as they are scored)."""
    from components.data.records import QqpPair  # pylint: disable=import-outside-toplevel,redefined-outer-name
    from pipeline.cli import scoring  # pylint: disable=import-outside-toplevel

    one_pair = (args.question1, args.question2)
    if args.input is not None:
        if one_pair != (None, None):
            raise ConfigError("give either --input or --question1 and --question2, not both")
        if args.output and os.path.exists(args.output) and os.path.exists(args.input) and (
                os.path.samefile(args.input, args.output)):  # streamed: writing would truncate it
            raise ConfigError(f"--output: {args.output} is the --input file; give another file")
        return scoring.open_pairs(args.input, require_label=False, allow_empty=True)
    if None in one_pair:
        raise ConfigError("give --question1 and --question2 (both; empty strings are allowed), "
                          "or --input FILE")
    return iter([QqpPair(0, args.question1, args.question2, None)])


def _predict(args: argparse.Namespace) -> None:
    """Scores chunk by chunk, writing each chunk's rows (in input order) once it is scored.

    --output is written in place: a kill or a bad row in a later chunk leaves the
    header and the complete rows of the chunks before it.
    """
    # pylint: disable=import-outside-toplevel
    import contextlib

    from pipeline.cli import scoring

    model_dir = scoring.resolve_model_dir(args.model)
    pairs = _pairs_to_predict(args)
    what = "one pair" if args.input is None else scoring.describe_input(args.input)
    print(f"qqp-tfx: scoring {what} with {model_dir}", file=sys.stderr)
    # One pair is a batch of one.
    batch_size = args.batch_size if args.input is not None else 1
    scorer = scoring.load_scorer(model_dir, batch_size, args.precision)
    with scoring.progress_bar(args.input) as progress, (
            open(args.output, "w", encoding="utf-8") if args.output
            else contextlib.nullcontext(sys.stdout)) as stream:
        scoring.write_predictions(scoring.score_chunks(pairs, scorer, progress.update), stream,
                                  with_ids=args.input is not None)


def _evaluate(args: argparse.Namespace) -> None:
    """Scores chunk by chunk, keeping only labels and probabilities; prints strict JSON."""
    from pipeline.cli import scoring  # pylint: disable=import-outside-toplevel

    pairs = scoring.open_pairs(args.input, require_label=True)
    model_dir = scoring.resolve_model_dir(args.model)
    print(f"qqp-tfx: evaluating {model_dir} on {scoring.describe_input(args.input)}",
          file=sys.stderr)
    scorer = scoring.load_scorer(model_dir, args.batch_size, args.precision)
    with scoring.progress_bar(args.input) as progress:
        labels, probabilities = scoring.collect_scores(
            scoring.score_chunks(pairs, scorer, progress.update))
    print(json.dumps(scoring.binary_metrics(labels, probabilities), allow_nan=False))


def _compile(args: argparse.Namespace) -> None:
    # pylint: disable-next=import-outside-toplevel
    from pipeline.runners.vertex import checkpoint_checkable_here, compile_pipeline

    config, options = compile_config_from_args(args)
    if config.notify is not None:
        raise ConfigError(f"notify {config.notify}: compiled pipelines do not notify; remove it "
                          "from the config file, and give --notify to run-compiled")
    if checkpoint_checkable_here(config.checkpoint):
        _check_checkpoint(config)
    else:
        print(f"qqp-tfx: not checking checkpoint {config.checkpoint} here: the steps resolve "
              "it; --max-seq-length must be at most its max_position_embeddings",
              file=sys.stderr)
    path = compile_pipeline(config, options.target, options.output, options.image or "",
                            image_root=options.image_root,
                            trainer_resources=options.trainer_resources())
    print(f"qqp-tfx: compiled the pipeline for {options.target} with image {options.image}",
          file=sys.stderr)
    print(path)


def _compiled_serving_dir(pipeline: CompiledPipeline) -> str:
    """The serving directory of a compiled spec: its Pusher's push_destination's parent."""
    try:
        value = pipeline.tasks["Pusher"].spec["inputs"]["parameters"]["push_destination"][
            "runtimeValue"]
        text = value["constant"] if "constant" in value else next(iter(
            value["constantValue"].values()))
        return os.path.dirname(json.loads(text)["filesystem"]["base_directory"].rstrip("/"))
    except (KeyError, StopIteration, TypeError, ValueError) as error:
        raise ConfigError(f"--notify: the spec's Pusher has no push_destination to report "
                          f"({type(error).__name__}: {error})") from None


def _notify_compiled(url: str | None, compiled: CompiledRun, serving_dir: str,
                     error: str | None = None) -> None:
    """POSTs how a run-compiled job ended (--notify), from its tasks' output metadata."""
    if url is None:
        return
    from pipeline.results import notification  # pylint: disable=import-outside-toplevel

    def metadata(task: str, key: str) -> dict | None:
        outputs = compiled.results[task].outputs if task in compiled.results else {}
        return outputs[key][0]["metadata"] if outputs.get(key) else None

    notification.notify(url, notification.from_artifact_metadata(
        compiled.pipeline.name, compiled.job_id, serving_dir,
        metadata("BlessingGate", "blessing"), metadata("Pusher", "pushed_model"),
        failed_component=None if error is None else next(  # TaskFailedError: "task NAME: ..."
            (name for name in compiled.pipeline.tasks if error.startswith(f"task {name}:")),
            None),
        error=error))


def _serving_check_passed(job) -> bool:
    """Whether a run-compiled job's serving check passed (True without one)."""
    from components.serving.check_component import RESULT_KEY  # pylint: disable=import-outside-toplevel

    if "ServingCheck" not in job.tasks:
        return True
    result = job.output("ServingCheck", "infra_blessing")["metadata"].get(RESULT_KEY)
    return result is None or json.loads(result)["passed"]


def _run_compiled(args: argparse.Namespace) -> int:
    # pylint: disable=import-outside-toplevel,redefined-outer-name
    from pipeline.results.notification import check_url
    from pipeline.runners.dry_run.run import CompiledRun, TaskFailedError, summary_lines
    from pipeline.runners.dry_run.spec import PathMap, load_spec

    if args.parallelism < 1:
        raise ConfigError(f"--parallelism: {args.parallelism}; give 1 or more")
    notify_url = None if args.notify is None else check_url(args.notify)
    local_root = os.path.abspath(args.local_root)
    pipeline = load_spec(args.spec, PathMap(local_root, args.image_root))
    serving_dir = "" if notify_url is None else _compiled_serving_dir(pipeline)
    compiled = CompiledRun(pipeline, local_root)
    try:
        job = compiled.run(args.parallelism)
    except TaskFailedError as error:
        _notify_compiled(notify_url, compiled, serving_dir, str(error))
        print(f"qqp-tfx: error: {error}", file=sys.stderr)
        return 1
    except BaseException as error:  # an interrupted job is notified too
        _notify_compiled(notify_url, compiled, serving_dir, _error_message(error))
        raise
    for line in summary_lines(job):
        print(line)
    _notify_compiled(notify_url, compiled, serving_dir)
    blessing = job.tasks.get("BlessingGate")
    blessed = blessing is not None and job.output("BlessingGate", "blessing")[
        "metadata"].get("blessed") == 1 and _serving_check_passed(job)
    return EXIT_NOT_BLESSED if args.fail_if_not_blessed and not blessed else 0


def _report(args: argparse.Namespace) -> None:
    # pylint: disable=import-outside-toplevel
    if args.format == "json":
        from pipeline.results import outcome, run_results

        run = run_results.latest_run(args.metadata)
        if "Pusher" not in run:
            raise ConfigError(f"{args.metadata}: the latest run stopped before the Pusher; "
                              "there is no verdict to report")
        print(json.dumps(outcome.to_json(
            outcome.collect(run_results.latest_run_id(args.metadata), run)), indent=2))
        return
    from pipeline import report

    print(f"qqp-tfx: report written to {report.write_report(args.metadata, args.output)}")


def _runs(args: argparse.Namespace) -> int:
    if not os.path.exists(args.metadata):
        print(f"qqp-tfx: error: {args.metadata}: no ML Metadata store; run `qqp-tfx run` "
              "first or give --metadata", file=sys.stderr)
        return EXIT_BAD_INPUT
    from pipeline.results import runs  # pylint: disable=import-outside-toplevel

    summaries = runs.read_runs(args.metadata)
    if args.format == "json":
        print(json.dumps(runs.to_json(summaries), indent=2, allow_nan=False))
    else:
        print(runs.format_table(summaries))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `qqp-tfx` console script."""
    args = build_parser().parse_args(argv)
    verbose = getattr(args, "verbose", False)
    # Quiet: C++ warnings and errors reach the filter (pipeline/cli/quiet.py), not INFO.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose else "1")
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\.")
    if args.command in QUIET_COMMANDS and not verbose:
        # Before anything imports TensorFlow. `run` sets its log path once it has its config.
        quiet.start(args.command, os.path.join(os.path.abspath(args.local_root), "logs",
                                               f"run-compiled-{quiet.timestamp()}.log")
                    if args.command == "run-compiled" else None)
    try:
        return {"run": _run, "predict": _predict, "evaluate": _evaluate,
                "report": _report, "runs": _runs, "compile": _compile,
                "run-compiled": _run_compiled, "versions": versions.run_versions,
                "rollback": versions.run_rollback,
                "install-checkpoint": checkpoints.run_install}[args.command](args) or 0
    except Exception as error:  # pylint: disable=broad-except
        known = _user_facing_error(error)
        quiet.stop()  # the log's path first: the error or the traceback stays the last line
        if known is None:
            raise
        print(f"qqp-tfx: error: {_first_message(known)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        quiet.stop()


def _first_message(error: BaseException) -> str:
    """The error's own message, without the context Beam appends to it."""
    message = str(error)
    return message.split(" [while running")[0]


if __name__ == "__main__":
    sys.exit(main())
