"""The `qqp-tfx` command line. Heavy imports (TensorFlow, TFX) happen only inside commands."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from typing import Sequence

from pipeline import kubeflow
from pipeline.config import (BUNDLED_SAMPLE, COMPONENT_IDS, ConfigError, PipelineConfig,
                             load_config_file)

# Exit codes: 0 done (blessed or not), 1 anything unexpected, 2 bad input or configuration,
# 3 not blessed with --fail-if-not-blessed.
EXIT_BAD_INPUT = 2
EXIT_NOT_BLESSED = 3
# `--until` targets that never touch the checkpoint.
DATA_ONLY_COMPONENTS = ("QqpExampleGen", "ImportSchemaGen", "StatisticsGen", "ExampleValidator",
                        "DataValidationGate")


def _add_run_parser(subparsers: argparse._SubParsersAction) -> None:
    defaults = PipelineConfig()
    run = subparsers.add_parser(
        "run", help="run the pipeline locally (LocalDagRunner)",
        description="Ingest and validate QQP data with TFX on this machine. Options "
                    "override values from --config; both override the defaults shown.")
    run.add_argument("--config", help="YAML or JSON file whose keys are these option names")
    run.add_argument("--data", default=None,
                     help="GLUE-format TSV file, a directory with train.tsv and dev.tsv "
                          "(or HF parquet/arrow files), or hf:NAME[:CONFIG] such as "
                          f"hf:nyu-mll/glue [default: the bundled sample {BUNDLED_SAMPLE.name}]")
    run.add_argument("--pipeline-root", default=None,
                     help=f"where TFX writes artifacts [default: {defaults.pipeline_root}]")
    run.add_argument("--metadata", default=None,
                     help=f"ML Metadata SQLite file [default: {defaults.metadata}]")
    run.add_argument("--serving-dir", default=None,
                     help="TF Serving base directory; blessed models go to "
                          f"<serving-dir>/qqp/<version>/ [default: {defaults.serving_dir}]")
    run.add_argument("--checkpoint", default=None,
                     help="Hugging Face BERT checkpoint: hub id (needs network) or local "
                          f"directory [default: {defaults.checkpoint}, installed offline]")
    training = run.add_argument_group("training")
    training.add_argument("--max-train-examples", type=int, default=None,
                          help="train on at most this many pairs (0: all) "
                               f"[default: {defaults.max_train_examples}]")
    training.add_argument("--epochs", type=int, default=None,
                          help=f"fine-tuning epochs [default: {defaults.epochs}]")
    training.add_argument("--max-seq-length", type=int, default=None,
                          help="truncate pairs (longest_first) to this many word pieces "
                               f"[default: {defaults.max_seq_length}]")
    training.add_argument("--learning-rate", type=float, default=None,
                          help=f"peak AdamW learning rate [default: {defaults.learning_rate}]")
    training.add_argument("--batch-size", type=int, default=None,
                          help=f"training batch size [default: {defaults.batch_size}]")
    training.add_argument("--seed", type=int, default=None,
                          help=f"random seed of training [default: {defaults.seed}]")
    training.add_argument("--mixed-precision", default=None,
                          choices=("auto", "none", "mixed_float16", "mixed_bfloat16"),
                          help="Keras precision policy; auto: mixed_bfloat16 where the CPU "
                               "(avx512_bf16, AMX) or GPU computes bf16 natively, else float32 "
                               f"[default: {defaults.mixed_precision}]")
    training.add_argument("--distribution-strategy", default=None,
                          choices=("none", "mirrored", "multi_worker_mirrored"),
                          help="tf.distribute strategy of the Trainer "
                               f"[default: {defaults.distribution_strategy}]")
    training.add_argument("--not-fine-tuned-examples", type=int, default=None,
                          help="training pairs the not-fine-tuned model's cosine threshold is "
                               f"fitted on [default: {defaults.not_fine_tuned_examples}]")
    gate = run.add_argument_group("blessing gate")
    gate.add_argument("--min-accuracy", type=float, default=None,
                      help=f"accuracy floor [default: {defaults.min_accuracy}]")
    gate.add_argument("--min-f1", type=float, default=None,
                      help=f"F1 floor [default: {defaults.min_f1}]")
    gate.add_argument("--baseline-margin", type=float, default=None,
                      help="how much worse than the baseline accuracy and F1 may be; 0 means "
                           f"both must be strictly higher [default: {defaults.baseline_margin}]")
    run.add_argument("--beam-pipeline-args", default=None,
                     help="arguments for every Beam-powered component, in one quoted string, "
                          "e.g. \"--direct_running_mode=multi_processing --direct_num_workers=2\"")
    run.add_argument("--until", metavar="COMPONENT", default=None,
                     help="run only up to this component, e.g. DataValidationGate to "
                          "ingest and validate data without training; one of "
                          + ", ".join(COMPONENT_IDS))
    run.add_argument("--no-cache", dest="enable_cache", action="store_false", default=None,
                     help="re-run every component even when its inputs did not change")
    run.add_argument("--fail-if-not-blessed", action="store_true",
                     help="exit with code 3 when the candidate is not blessed (for CI)")
    run.add_argument("--verbose", action="store_true", help="show all TFX and Beam logs")


def _add_scoring_parsers(subparsers: argparse._SubParsersAction) -> None:
    predict = subparsers.add_parser(
        "predict", help="score a GLUE-format TSV with a pushed model",
        description="Write id, probability (of duplicate) and label for every pair of a "
                    "GLUE-format TSV; the is_duplicate column is optional.")
    evaluate = subparsers.add_parser(
        "evaluate", help="print accuracy, F1, precision, recall, ROC AUC of a pushed model",
        description="Score a labeled GLUE-format TSV and print one JSON object with "
                    "accuracy, f1, precision, recall, roc_auc and n.")
    for command in (predict, evaluate):
        command.add_argument("--model", required=True,
                             help="a SavedModel version directory, or the model's base "
                                  "directory (its newest version is used), e.g. "
                                  "artifacts/serving/qqp")
        command.add_argument("--input", required=True, help="GLUE-format TSV file")
        command.add_argument("--batch-size", type=int, default=64, help="pairs per batch")
    predict.add_argument("--output", help="TSV file to write [default: standard output]")


def _add_report_parser(subparsers: argparse._SubParsersAction) -> None:
    defaults = PipelineConfig()
    report = subparsers.add_parser(
        "report", help="write an HTML report of the latest run",
        description="Write one self-contained HTML file for the latest pipeline run: "
                    "candidate vs baseline metrics, confusion matrices, PR and calibration "
                    "curves, the slice table and a data summary.")
    report.add_argument("--metadata", default=defaults.metadata,
                        help="ML Metadata SQLite file of the runs [default: %(default)s]")
    report.add_argument("--format", choices=("html", "json"), default="html",
                        help="html: write a self-contained page to --output; json: print one "
                             "JSON object (run id, blessing, verdict, each model's SavedModel "
                             "and metrics) [default: %(default)s]")
    report.add_argument("--output", default="artifacts/report.html",
                        help="HTML file to write [default: %(default)s]")


def build_parser() -> argparse.ArgumentParser:
    """Returns the parser for all `qqp-tfx` commands."""
    parser = argparse.ArgumentParser(
        prog="qqp-tfx",
        description="A TFX pipeline that fine-tunes BERT on Quora Question Pairs.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run_parser(subparsers)
    _add_scoring_parsers(subparsers)
    _add_report_parser(subparsers)
    kubeflow.add_compile_parser(subparsers)
    return parser


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    """Merges defaults, the --config file and command-line options, in that order."""
    config = PipelineConfig()
    if args.config:
        config = config.with_overrides(load_config_file(args.config))
    return config.with_overrides({key: value for key, value in vars(args).items()
                                  if key not in ("command", "config", "verbose",
                                                 "fail_if_not_blessed")})


def _user_facing_error(error: BaseException) -> BaseException | None:
    """Finds a data or configuration error anywhere in an exception's chain."""
    # pylint: disable=import-outside-toplevel
    from components.checkpoint import CheckpointError
    from components.data_gate import DataAnomaliesError
    from components.qqp_records import QqpDataError

    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, (QqpDataError, DataAnomaliesError, ConfigError, CheckpointError)):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _run(args: argparse.Namespace) -> int:
    # pylint: disable=import-outside-toplevel
    from pipeline import data_summary, local_runner, outcome, progress, run_results
    from pipeline.run_lock import run_lock

    from components.checkpoint import check_checkpoint

    config = config_from_args(args).with_absolute_paths()
    progress.install(args.verbose)
    if config.until not in DATA_ONLY_COMPONENTS:
        print(f"qqp-tfx: checking checkpoint {config.checkpoint}", file=sys.stderr)
        positions = check_checkpoint(config.checkpoint).max_position_embeddings
        if config.max_seq_length > positions:
            raise ConfigError(f"--max-seq-length: {config.max_seq_length} is not allowed; "
                              f"the checkpoint takes at most {positions} tokens")
    print(f"qqp-tfx: running the pipeline on {config.data}", file=sys.stderr)
    with run_lock(config.metadata):
        local_runner.run_local(config)
    run = run_results.latest_run(config.metadata)
    if "StatisticsGen" in run:
        print("Ingested and validated:")
        for line in data_summary.summarize(run["StatisticsGen"]):
            print(f"  {line}")
    blessed = None
    if "Pusher" in run:
        result = outcome.collect(run_results.latest_run_id(config.metadata), run)
        print(outcome.format_table(result))
        blessed = result.blessed
    cached = [node for node, result in run.items() if result.cached]
    if cached:
        print(f"Reused from cache: {', '.join(sorted(cached))}")
    print(f"Artifacts: {config.pipeline_root}  Metadata: {config.metadata}")
    return EXIT_NOT_BLESSED if args.fail_if_not_blessed and blessed is False else 0


def _predict(args: argparse.Namespace) -> None:
    from pipeline import scoring  # pylint: disable=import-outside-toplevel

    pairs = scoring.read_pairs(args.input, require_label=False)
    model_dir = scoring.resolve_model_dir(args.model)
    print(f"qqp-tfx: scoring {len(pairs):,} pairs with {model_dir}", file=sys.stderr)
    probabilities = scoring.predict_probabilities(model_dir, pairs, args.batch_size)
    lines = ["id\tprobability\tlabel"] + [
        f"{pair.id}\t{probability:.6f}\t{int(probability >= scoring.DECISION_THRESHOLD)}"
        for pair, probability in zip(pairs, probabilities)]
    text = "\n".join(lines) + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as stream:
            stream.write(text)
    else:
        sys.stdout.write(text)


def _evaluate(args: argparse.Namespace) -> None:
    # pylint: disable=import-outside-toplevel
    import numpy as np

    from pipeline import scoring

    pairs = scoring.read_pairs(args.input, require_label=True)
    model_dir = scoring.resolve_model_dir(args.model)
    print(f"qqp-tfx: evaluating {model_dir} on {len(pairs):,} pairs", file=sys.stderr)
    probabilities = scoring.predict_probabilities(model_dir, pairs, args.batch_size)
    labels = np.array([pair.is_duplicate for pair in pairs])
    print(json.dumps(scoring.binary_metrics(labels, probabilities)))


def _compile(args: argparse.Namespace) -> None:
    kubeflow.compile_command(args)


def _report(args: argparse.Namespace) -> None:
    # pylint: disable=import-outside-toplevel
    if args.format == "json":
        from pipeline import outcome, run_results

        run = run_results.latest_run(args.metadata)
        if "Pusher" not in run:
            raise ConfigError(f"{args.metadata}: the latest run stopped before the Pusher; "
                              "there is no verdict to report")
        print(json.dumps(outcome.to_json(
            outcome.collect(run_results.latest_run_id(args.metadata), run)), indent=2))
        return
    from pipeline import report

    print(f"qqp-tfx: report written to {report.write_report(args.metadata, args.output)}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `qqp-tfx` console script."""
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\.")
    try:
        return {"run": _run, "predict": _predict, "evaluate": _evaluate,
                "report": _report, "compile": _compile}[args.command](args) or 0
    except Exception as error:  # pylint: disable=broad-except
        known = _user_facing_error(error)
        if known is None:
            raise
        print(f"qqp-tfx: error: {_first_message(known)}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _first_message(error: BaseException) -> str:
    """The error's own message, without the context Beam appends to it."""
    message = str(error)
    return message.split(" [while running")[0]


if __name__ == "__main__":
    sys.exit(main())
