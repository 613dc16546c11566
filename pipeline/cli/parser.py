"""The `qqp-tfx` command line's parsers, and how options merge with --config and defaults.

All argparse lives here; the runners only take a `PipelineConfig`.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from components.precision.choices import MIXED_PRECISION_POLICIES, SCORING_PRECISIONS
from components.training.hyperparameters import DISTRIBUTION_STRATEGIES, PAIR_ORDERS, WARM_STARTS
from pipeline.cli import checkpoints, versions
from pipeline.config import (BUNDLED_SAMPLE, COMPONENT_IDS, MAX_SEED, PipelineConfig,
                             load_config_file)
from pipeline.runners.vertex import (COMPILE_KEYS, DEFAULT_OUTPUT, IMAGE_ROOT, TARGETS,
                                     CompileOptions)


def _add_run_parser(subparsers: argparse._SubParsersAction) -> None:
    defaults = PipelineConfig()
    run = subparsers.add_parser(
        "run", help="run the pipeline locally (LocalDagRunner)",
        description="Run the whole pipeline on this machine: ingest and validate the data, "
                    "tokenize, fine-tune, evaluate, gate and push. Options "
                    "override values from --config; both override the defaults shown.")
    run.add_argument("--config", help="YAML or JSON file whose keys are these option names "
                                         "(--no-cache is enable-cache: false)")
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
                     help="Hugging Face checkpoint of a supported family (bert, distilbert, "
                          "electra, albert, roberta, deberta-v2, mpnet): hub id (needs "
                          "network), local directory, or all-mpnet-base-v2 (offline after "
                          "`make mpnet`; configs/mpnet.yaml is its recipe) "
                          f"[default: {defaults.checkpoint}, installed offline]")
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
    training.add_argument("--warmup-ratio", type=float, default=None,
                          help="fraction of the training steps spent warming the learning "
                               "rate up linearly from 0; then it decays linearly to 0 "
                               f"[default: {defaults.warmup_ratio}]")
    training.add_argument("--batch-size", type=int, default=None,
                          help=f"training batch size [default: {defaults.batch_size}]")
    training.add_argument("--seed", type=int, default=None,
                          help=f"random seed of training, from 0 to {MAX_SEED} "
                               f"[default: {defaults.seed}]")
    training.add_argument("--mixed-precision", default=None,
                          choices=MIXED_PRECISION_POLICIES,
                          help="Keras precision policy; auto: mixed_bfloat16 where the CPU "
                               "(avx512_bf16, AMX) or GPU computes bf16 natively, else float32 "
                               f"[default: {defaults.mixed_precision}]")
    training.add_argument("--pair-order", default=None, choices=PAIR_ORDERS,
                          help="both: train on each pair in a random order and score the mean "
                               "of (question1, question2) and (question2, question1); given: "
                               f"question1 first only [default: {defaults.pair_order}]")
    training.add_argument("--distribution-strategy", default=None,
                          choices=DISTRIBUTION_STRATEGIES,
                          help="tf.distribute strategy of the Trainer "
                               f"[default: {defaults.distribution_strategy}]")
    training.add_argument("--not-fine-tuned-examples", type=int, default=None,
                          help="training pairs the not-fine-tuned model's cosine threshold is "
                               f"fitted on [default: {defaults.not_fine_tuned_examples}]")
    _add_span_options(run.add_argument_group(
        "new data: spans (see docs/continuous_training.md)"), defaults)
    gate = run.add_argument_group("blessing gate")
    gate.add_argument("--min-accuracy", type=float, default=None,
                      help=f"accuracy floor [default: {defaults.min_accuracy}]")
    gate.add_argument("--min-f1", type=float, default=None,
                      help=f"F1 floor [default: {defaults.min_f1}]")
    gate.add_argument("--baseline-margin", type=float, default=None,
                      help="how much worse than the served model accuracy and F1 may be, from "
                           "0 to 1, beyond the noise of the eval pairs (the gate decides on "
                           f"95%% paired intervals) [default: {defaults.baseline_margin}]")
    check = run.add_argument_group("serving check (the candidate loaded as TF Serving loads it)")
    check.add_argument("--max-latency-ratio", type=float, default=None,
                       help="the most the candidate's latency at batch 1 or 64 may be, times "
                            f"the served version's [default: {defaults.max_latency_ratio}]")
    check.add_argument("--max-memory-ratio", type=float, default=None,
                       help="the most the candidate's loaded memory may be, times the served "
                            f"version's [default: {defaults.max_memory_ratio}]")
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
    add_notify_option(run)
    add_verbose_option(run)


def _add_span_options(group: argparse._ArgumentGroup, defaults: PipelineConfig) -> None:
    """Options of data laid out in spans (`--data DIR` holding span-1/, span-2/, ...)."""
    group.add_argument("--span", type=int, default=None,
                       help="ingest this span (DIR/span-N/) [default: the newest]")
    group.add_argument("--train-window", type=int, default=None,
                       help="Transform and the Trainer read the newest K spans "
                            f"[default: {defaults.train_window}]")
    group.add_argument("--warm-start", default=None, choices=WARM_STARTS,
                       help="served: start from the served version's weights when it is "
                            "compatible and the window holds newer spans than it was trained "
                            "on; checkpoint: from the pretrained checkpoint "
                            f"[default: {defaults.warm_start}]")
    group.add_argument("--warm-start-epochs", type=float, default=None,
                       help="epochs over the window of a warm-started candidate, e.g. 0.5 "
                            f"[default: {defaults.warm_start_epochs}]")
    group.add_argument("--warm-start-learning-rate", type=float, default=None,
                       help="peak learning rate of a warm-started candidate "
                            f"[default: {defaults.warm_start_learning_rate}]")
    group.add_argument("--accept-drift", action="store_true", default=None,
                       help="train on a span the drift gate stopped (the report records it)")


# Commands that load TensorFlow: their standard error goes through pipeline/cli/quiet.py.
QUIET_COMMANDS = ("run", "predict", "evaluate", "compile", "run-compiled", "report",
                  "runs", "versions", "rollback")


def add_verbose_option(parser: argparse.ArgumentParser) -> None:
    """Adds --verbose: all TensorFlow, TFX and Beam logs on screen, unfiltered."""
    parser.add_argument("--verbose", action="store_true",
                        help="show all TensorFlow, TFX and Beam logs, unfiltered (by default "
                             "known library noise goes to a log file, named at the end)")


def add_notify_option(parser: argparse.ArgumentParser) -> None:
    """Adds --notify URL: a JSON document POSTed there when the run ends."""
    parser.add_argument("--notify", metavar="URL", default=None,
                        help="POST a JSON document to this http:// or https:// URL when the "
                             "run ends, successful or not: status (pushed, not pushed, "
                             "failed), verdict, pushed version, failed component, message; "
                             "a failed notification is a warning only (see docs/cli.md)")


def _batch_size(text: str) -> int:
    """argparse type of `predict` and `evaluate`'s --batch-size: an integer of 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer; give 1 or more") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not allowed; give 1 or more")
    return value


def _add_scoring_parsers(subparsers: argparse._SubParsersAction) -> None:
    predict = subparsers.add_parser(
        "predict", help="score one question pair, or a GLUE-format TSV, with a pushed model",
        description="Print the probability that two questions are duplicates, and the "
                    "label (1: duplicate, at probability >= 0.5): for one pair given with "
                    "--question1 and --question2, or for every pair of a GLUE-format TSV "
                    "(--input; its is_duplicate column is optional). Empty questions are "
                    "scored like any other. Input is read, scored and written chunk by "
                    "chunk, rows in input order, so any size fits in memory and --input - "
                    "scores standard input as it arrives; --output is written in place, "
                    "each chunk's complete rows at once, so output cut short (a kill, a "
                    "bad row further on) holds the header and complete rows only.",
        epilog='example: qqp-tfx predict --model artifacts/serving/qqp '
               '--question1 "How do I learn Python?" '
               '--question2 "What is the best way to learn Python?"')
    evaluate = subparsers.add_parser(
        "evaluate", help="print accuracy, F1, precision, recall, ROC AUC of a pushed model",
        description="Score a labeled GLUE-format TSV, chunk by chunk, and print one JSON "
                    "object with accuracy, f1, precision, recall, roc_auc and n. A metric "
                    "undefined on the input is null: precision when no pair is predicted a "
                    "duplicate, recall when no pair is one, roc_auc when all labels are "
                    "equal, f1 when both precision and recall are undefined (with no true "
                    "positives otherwise, f1 is 0).")
    for command in (predict, evaluate):
        command.add_argument("--model", required=True,
                             help="a SavedModel version directory, or the model's base "
                                  "directory (its newest version is used), e.g. "
                                  "artifacts/serving/qqp")
        command.add_argument("--batch-size", type=_batch_size, default=64,
                             help="pairs per model call, 1 or more; pairs of similar "
                                  "length are batched together [default: %(default)s]")
        command.add_argument("--precision", choices=SCORING_PRECISIONS, default="auto",
                             help="auto: bf16 matrix products where the CPU computes bf16 "
                                  "natively (avx512_bf16 or AMX), float32 elsewhere; the "
                                  "model files are the same either way [default: %(default)s]")
    evaluate.add_argument("--input", required=True,
                          help='labeled GLUE-format TSV file; "-" reads standard input')
    predict.add_argument("--input", help='GLUE-format TSV file; "-" reads standard input')
    predict.add_argument("--question1", help="the first question of one pair")
    predict.add_argument("--question2", help="the second question of one pair")
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


def _add_runs_parser(subparsers: argparse._SubParsersAction) -> None:
    defaults = PipelineConfig()
    runs = subparsers.add_parser(
        "runs", help="list every pipeline run side by side: checkpoint, data, metrics, verdict",
        description="List every pipeline run recorded in the ML Metadata store, oldest "
                    "first: its id and start time, the checkpoint and its family, the data "
                    "(train and eval pairs), epochs and learning rate, the fine-tuned "
                    "candidate's and the not-fine-tuned model's eval accuracy and F1, the "
                    "BlessingGate's verdict and the pushed version. Components reused from "
                    "the cache show the figures of the run that computed them; a failed or "
                    "stopped run shows what it has.")
    runs.add_argument("--metadata", default=defaults.metadata,
                      help="ML Metadata SQLite file of the runs [default: %(default)s]")
    runs.add_argument("--format", choices=("table", "json"), default="table",
                      help="table: aligned plain text and each verdict in words; json: a list "
                           "with one object per run, missing values null (keys: see "
                           "pipeline/results/runs.py) [default: %(default)s]")


def build_parser() -> argparse.ArgumentParser:
    """Returns the parser for all `qqp-tfx` commands."""
    parser = argparse.ArgumentParser(
        prog="qqp-tfx",
        description="A TFX pipeline that fine-tunes BERT-family models on Quora Question Pairs.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run_parser(subparsers)
    _add_scoring_parsers(subparsers)
    _add_report_parser(subparsers)
    _add_runs_parser(subparsers)
    versions.add_parsers(subparsers)
    checkpoints.add_parser(subparsers)
    _add_compile_parser(subparsers)
    _add_run_compiled_parser(subparsers)
    for command in QUIET_COMMANDS:
        command_parser = subparsers.choices[command]
        # pylint: disable-next=protected-access
        if "--verbose" not in command_parser._option_string_actions:
            add_verbose_option(command_parser)
    return parser


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    """Merges defaults, the --config file and command-line options, in that order."""
    config = PipelineConfig()
    if args.config:
        config = config.with_overrides(load_config_file(args.config))
    return config.with_overrides({key: value for key, value in vars(args).items()
                                  if key not in ("command", "config", "verbose",
                                                 "fail_if_not_blessed")})


def _add_compile_parser(subparsers: argparse._SubParsersAction) -> None:
    """Adds the `compile` command."""
    compile_ = subparsers.add_parser(
        "compile", help="compile the pipeline for Vertex AI Pipelines / Kubeflow Pipelines v2",
        description="Write the pipeline as a Kubeflow Pipelines v2 PipelineJob JSON that "
                    "Vertex AI Pipelines (or KFP 2.x) runs with one container image. Options "
                    "override values from --config, which takes the same names as keys "
                    "(compile-only keys included, e.g. image:); see docs/running_at_scale.md.")
    compile_.add_argument("--target", choices=TARGETS, default=None,
                          help="vertex: KFP v2 spec for Vertex AI Pipelines and KFP 2.x; "
                               "kubeflow: KFP v1 (Argo), not supported by TFX 1.16 "
                               "[default: vertex]")
    compile_.add_argument("--output", default=None,
                          help=f"file to write, local or gs://: .json is a Vertex AI "
                               f"PipelineJob, .yaml the bare KFP 2.x PipelineSpec "
                               f"[default: {DEFAULT_OUTPUT}]")
    compile_.add_argument("--image", default=None,
                          help="container image of every step, built from the Dockerfile, "
                               "e.g. us-docker.pkg.dev/PROJECT/REPO/qqp-tfx:TAG (required)")
    compile_.add_argument("--image-root", default=None,
                          help=f"where this project is inside the image [default: {IMAGE_ROOT}]")
    compile_.add_argument("--config", help="YAML or JSON file whose keys are these option names")
    for flag, text in (
            ("--pipeline-root", "where the steps write artifacts: a URI they all reach, "
                                "e.g. gs://BUCKET/qqp-tfx (required)"),
            ("--data", "remote directory with train.tsv and dev.tsv, e.g. gs://BUCKET/qqp, or "
                       "a directory of this project [default: the bundled sample, inside the "
                       "image]"),
            ("--serving-dir", "where the Pusher writes model versions, as the containers see "
                              "it: a URI or an absolute path (required)"),
            ("--checkpoint", "checkpoint of a supported family: the default package, a hub id "
                             "(downloaded by the steps) or a directory of this project"),
            ("--beam-pipeline-args", "arguments for every Beam-powered step, in one quoted "
                                     "string, e.g. \"--runner=DataflowRunner --project=P "
                                     "--region=R --temp_location=gs://B/tmp "
                                     "--sdk_container_image=IMAGE\"")):
        compile_.add_argument(flag, default=None, help=text)
    _add_span_options(compile_.add_argument_group("new data: spans"), PipelineConfig())
    compile_.add_argument("--distribution-strategy", default=None,
                          choices=DISTRIBUTION_STRATEGIES,
                          help="tf.distribute strategy of the Trainer [default: none]")
    compile_.add_argument("--mixed-precision", default=None,
                          choices=MIXED_PRECISION_POLICIES,
                          help="Keras mixed-precision policy of the Trainer [default: auto]")
    compile_.add_argument("--trainer-cpu", type=float, default=None,
                          help="vCPU limit of the Trainer step")
    compile_.add_argument("--trainer-memory", type=float, default=None,
                          help="memory limit of the Trainer step, in GiB")
    compile_.add_argument("--trainer-accelerator-type", default=None,
                          help="accelerator of the Trainer step, e.g. NVIDIA_TESLA_T4")
    compile_.add_argument("--trainer-accelerator-count", type=int, default=None,
                          help="number of accelerators of the Trainer step [default: 1 when "
                               "a type is given]")
    compile_.add_argument("--no-cache", dest="enable_cache", action="store_false", default=None,
                          help="compile with caching disabled: every step re-runs")


def _add_run_compiled_parser(subparsers: argparse._SubParsersAction) -> None:
    """Adds the `run-compiled` command."""
    run_compiled = subparsers.add_parser(
        "run-compiled", help="execute a compiled pipeline on this machine, task by task",
        description="Dry-run a PipelineJob JSON written by `qqp-tfx compile` as Vertex AI "
                    "would run it: each task in its own process through the container's "
                    "command (this machine's venv stands in for the image), with Vertex's "
                    "ExecutorInput, pre-cache-check driver and cache. Every gs://B/P and "
                    "/gcs/B/P is read and written as LOCAL_ROOT/B/P; the image's project "
                    "directory is this checkout. See docs/running_at_scale.md.")
    run_compiled.add_argument("spec", help="the PipelineJob JSON file")
    run_compiled.add_argument("--local-root", required=True,
                              help="directory that stands in for Cloud Storage; artifacts, "
                                   "the cache and pushed models persist there across runs")
    run_compiled.add_argument("--image-root", default=IMAGE_ROOT,
                              help="where the project is inside the image, as given to "
                                   "`compile` [default: %(default)s]")
    run_compiled.add_argument("--parallelism", type=int, default=2,
                              help="tasks run side by side when their inputs are ready "
                                   "[default: %(default)s]")
    run_compiled.add_argument("--fail-if-not-blessed", action="store_true",
                              help="exit with code 3 when the candidate is not blessed")
    add_notify_option(run_compiled)


def compile_config_from_args(args: argparse.Namespace
                             ) -> tuple[PipelineConfig, CompileOptions]:
    """Splits `compile` options and --config keys into pipeline and compile settings.

    Precedence as for `run`: command line, then --config, then defaults. The pipeline
    part goes through `cli.config_from_args`.
    """
    values: dict[str, Any] = {}
    if getattr(args, "config", None):
        values = {key.replace("-", "_"): value
                  for key, value in load_config_file(args.config).items()}
    values.update({key: value for key, value in vars(args).items() if value is not None})
    compile_values = {key: values.pop(key) for key in list(values) if key in COMPILE_KEYS}
    if isinstance(values.get("beam_pipeline_args"), list):
        values["beam_pipeline_args"] = shlex.join(values["beam_pipeline_args"])
    values.setdefault("beam_pipeline_args", None)
    values["config"] = None  # already merged above
    return config_from_args(argparse.Namespace(**values)), CompileOptions(**compile_values)
