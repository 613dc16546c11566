"""Pipeline configuration: defaults, config files and command-line overrides.

Every option has a type and a valid range (`RULES`). Values from a YAML/JSON
file are coerced like command-line values (YAML 1.1 reads `2e-5` as a string;
here it is the float 2e-5), and a bad value is a `ConfigError` naming the
option, the value and what is allowed, before anything runs.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shlex
import urllib.parse
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from components.drift.metrics import FEATURES as DRIFT_FEATURES
from components.precision.choices import MIXED_PRECISION_POLICIES
from components.training.hyperparameters import (DISTRIBUTION_STRATEGIES, PAIR_ORDERS,
                                                 WARM_STARTS, Hyperparameters)

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_SAMPLE = REPO_ROOT / "data" / "qqp_sample"
PIPELINE_NAME = "qqp-tfx"
MODEL_NAME = "qqp"


# Every component id of the pipeline, in run order: the values `--until` accepts.
COMPONENT_IDS = ("QqpExampleGen", "ImportSchemaGen", "StatisticsGen", "ExampleValidator",
                 "DataValidationGate", "DriftGate", "TrainingWindow", "WarmStart",
                 "Transform", "Trainer", "NotFineTunedModel", "Evaluator",
                 "ServedModel", "ServedModelEvaluator", "BlessingGate", "ServingCheck",
                 "Pusher")
MIN_SEQ_LENGTH = 8


class ConfigError(ValueError):
    """A configuration file or value that cannot be used."""


@dataclasses.dataclass(frozen=True)
class Rule:
    """The type of an option and the values it allows."""

    kind: type
    allowed: str = ""  # human-readable range, e.g. ">= 1"
    check: Callable[[Any], bool] = lambda value: True
    choices: tuple[str, ...] = ()


def _at_least(bound: int) -> Rule:
    return Rule(int, f"an integer >= {bound}", lambda value: value >= bound)


def not_empty(what: str) -> Rule:
    """A string that is not empty or blank, e.g. a path."""
    return Rule(str, what, lambda value: value.strip() != "")


def _is_http_url(value: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(value)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. an unclosed [IPv6 bracket
        return False


MAX_SEED = 2**32 - 1  # numpy's and Keras's seeds are unsigned 32-bit
PATH = not_empty("a non-empty path")
FRACTION = Rule(float, "a number from 0 to 1", lambda value: 0.0 <= value <= 1.0)
POSITIVE = Rule(float, "a finite number > 0", lambda value: value > 0)
RULES: dict[str, Rule] = {
    "data": not_empty("a non-empty path or hf:NAME"), "pipeline_root": PATH, "metadata": PATH,
    "serving_dir": PATH, "checkpoint": not_empty("a checkpoint directory, package or hub id"),
    "beam_pipeline_args": Rule(list), "enable_cache": Rule(bool),
    "until": Rule(str, choices=COMPONENT_IDS),
    "max_seq_length": Rule(int, f"an integer >= {MIN_SEQ_LENGTH} (and at most the checkpoint's "
                                "max_position_embeddings)", lambda value: value >= MIN_SEQ_LENGTH),
    "epochs": _at_least(1),
    "learning_rate": POSITIVE,
    "warmup_ratio": Rule(float, "a number from 0 to less than 1", lambda value: 0 <= value < 1),
    "batch_size": _at_least(1),
    "max_train_examples": Rule(int, "an integer >= 0 (0: all pairs)", lambda value: value >= 0),
    "not_fine_tuned_examples": _at_least(1),
    "seed": Rule(int, f"an integer from 0 to {MAX_SEED}", lambda value: 0 <= value <= MAX_SEED),
    # A margin of 1 or more would bless any candidate: the gate compares metrics in [0, 1].
    "min_accuracy": FRACTION, "min_f1": FRACTION, "baseline_margin": FRACTION,
    "max_latency_ratio": Rule(float, "a number >= 1", lambda value: value >= 1),
    "max_memory_ratio": Rule(float, "a number >= 1", lambda value: value >= 1),
    "distribution_strategy": Rule(str, choices=DISTRIBUTION_STRATEGIES),
    "mixed_precision": Rule(str, choices=MIXED_PRECISION_POLICIES),
    "pair_order": Rule(str, choices=PAIR_ORDERS),
    "span": _at_least(0),
    "train_window": _at_least(1),
    "warm_start": Rule(str, choices=WARM_STARTS),
    "warm_start_epochs": POSITIVE,
    "warm_start_learning_rate": POSITIVE,
    "accept_drift": Rule(bool),
    "drift_thresholds": Rule(dict, "a mapping of drift features (" + ", ".join(DRIFT_FEATURES)
                             + ") to thresholds > 0",
                             lambda value: set(value) <= set(DRIFT_FEATURES)),
    "notify": Rule(str, "an http:// or https:// URL", _is_http_url),
}


def option_name(field: str) -> str:
    """The command-line spelling of a config field: `max_seq_length` -> `--max-seq-length`."""
    return "--" + field.replace("_", "-")


def coerce(field: str, value: Any, rules: Mapping[str, Rule] = RULES) -> Any:
    """`value` as the type of option `field`, checked against its rule; else ConfigError.

    Floats must also be finite (no inf or nan).
    """
    rule = rules[field]

    def refuse(allowed: str) -> ConfigError:
        return ConfigError(f"{option_name(field)}: {value!r} is not allowed; expected {allowed}")

    if rule.kind is bool:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):
            raise refuse("true or false")
        return value
    if rule.kind is dict:
        if not isinstance(value, dict) or not rule.check(value) or not all(
                isinstance(number, (int, float)) and not isinstance(number, bool)
                and math.isfinite(number) and number > 0 for number in value.values()):
            raise refuse(rule.allowed)
        return {str(key): float(number) for key, number in value.items()}
    if rule.kind is list:
        if isinstance(value, str):
            return shlex.split(value)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise refuse("a string of arguments or a list of strings")
        return value
    try:
        if isinstance(value, bool) or (rule.kind is int and isinstance(value, float)
                                       and not value.is_integer()):
            raise ValueError
        coerced = rule.kind(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: float(10**400)
        raise refuse(rule.allowed or f"a {rule.kind.__name__}") from None
    if rule.choices and coerced not in rule.choices:
        raise refuse("one of " + ", ".join(rule.choices))
    if (rule.kind is float and not math.isfinite(coerced)) or not rule.check(coerced):
        raise refuse(rule.allowed)
    return coerced


def coerce_fields(instance: Any, rules: Mapping[str, Rule] = RULES, prefix: str = "") -> None:
    """Coerces every field of a dataclass `instance` that is not None, in place, by the
    rule of option `prefix` + field name (see `coerce`)."""
    for field in dataclasses.fields(instance):
        value = getattr(instance, field.name)
        if value is not None:
            object.__setattr__(instance, field.name,
                               coerce(prefix + field.name, value, rules))


def _absolute(path: str) -> str:
    """Local paths absolute (so a run from another directory finds the same cache);
    URIs (gs://, s3://) and `hf:` names unchanged."""
    return path if "://" in path or path.startswith("hf:") else os.path.abspath(
        os.path.expanduser(path))


@dataclasses.dataclass
class PipelineConfig:
    """Everything a run of the pipeline needs; every field can come from a config file."""

    data: str = str(BUNDLED_SAMPLE)
    pipeline_root: str = "artifacts/pipeline"
    metadata: str = "artifacts/metadata.sqlite"
    serving_dir: str = "artifacts/serving"
    beam_pipeline_args: list[str] = dataclasses.field(default_factory=list)
    enable_cache: bool = True
    until: str | None = None  # run only this component and what it depends on
    checkpoint: str = Hyperparameters.checkpoint
    max_seq_length: int = 128
    epochs: int = Hyperparameters.epochs
    learning_rate: float = Hyperparameters.learning_rate
    warmup_ratio: float = Hyperparameters.warmup_ratio  # of the steps: linear warm-up, then decay
    batch_size: int = Hyperparameters.batch_size
    # All 24,000 pairs of the bundled sample, once; caps larger data (0: no cap). Distinct
    # pairs buy more than epochs: 24,000 x 1 beat 8,000 x 3 on dev.tsv (0.839 vs 0.822).
    max_train_examples: int | None = 24000
    # Training pairs the not-fine-tuned model's cosine -> probability map is fitted on.
    not_fine_tuned_examples: int = 4000
    seed: int = Hyperparameters.seed
    min_accuracy: float = 0.70
    min_f1: float = 0.60
    baseline_margin: float = 0.0  # how much worse than the served model is allowed
    # The serving check: how much slower (at batch 1 or 64) and how much more memory than
    # the served version a candidate may need, loaded as TF Serving loads it.
    max_latency_ratio: float = 1.5
    max_memory_ratio: float = 1.5
    distribution_strategy: str = Hyperparameters.distribution_strategy
    mixed_precision: str = Hyperparameters.mixed_precision  # auto: bf16 where native
    pair_order: str = Hyperparameters.pair_order  # both: random order in training, mean of both
    # Spans (`--data DIR` holding span-N/ folders): which one to ingest (None: the newest),
    # how many of the newest spans Transform and the Trainer read, and how the candidate
    # starts when a compatible version trained on older spans is served.
    span: int | None = None
    train_window: int = 2
    warm_start: str = Hyperparameters.warm_start
    warm_start_epochs: float = Hyperparameters.warm_start_epochs
    warm_start_learning_rate: float = Hyperparameters.warm_start_learning_rate
    accept_drift: bool = False  # a drifted span is trained on anyway (and the report says so)
    drift_thresholds: dict[str, float] = dataclasses.field(default_factory=dict)  # overrides
    notify: str | None = None  # URL POSTed a JSON document when the run ends

    def __post_init__(self) -> None:
        coerce_fields(self)

    def with_absolute_paths(self) -> "PipelineConfig":
        """A copy whose local paths are absolute."""
        return dataclasses.replace(self, **{
            name: _absolute(getattr(self, name))
            for name in ("data", "pipeline_root", "metadata", "serving_dir")})

    def hyperparameters(self) -> Hyperparameters:
        """Hyperparameters of the fine-tuned candidate."""
        return Hyperparameters(
            checkpoint=self.checkpoint, learning_rate=self.learning_rate,
            warmup_ratio=self.warmup_ratio, batch_size=self.batch_size, epochs=self.epochs,
            seed=self.seed,
            max_train_examples=self.max_train_examples,
            distribution_strategy=self.distribution_strategy,
            mixed_precision=self.mixed_precision, pair_order=self.pair_order,
            max_seq_length=self.max_seq_length,
            warm_start=self.warm_start, warm_start_epochs=self.warm_start_epochs,
            warm_start_learning_rate=self.warm_start_learning_rate)

    def not_fine_tuned_hyperparameters(self) -> Hyperparameters:
        """The not-fine-tuned model: the checkpoint, and the pairs its threshold is fitted on."""
        return Hyperparameters(checkpoint=self.checkpoint,
                               max_train_examples=self.not_fine_tuned_examples)

    @property
    def model_serving_dir(self) -> str:
        """TF Serving's base directory of this model: versions go below it."""
        return os.path.join(self.serving_dir, MODEL_NAME)

    @property
    def download_dir(self) -> str:
        """Where `hf:` datasets are written as parquet before ingestion."""
        return os.path.join(self.pipeline_root, "hf_datasets")

    def with_overrides(self, overrides: Mapping[str, Any]) -> "PipelineConfig":
        """Returns a copy with the given fields replaced; `None` values are ignored."""
        known = {field.name for field in dataclasses.fields(self)}
        values = {key.replace("-", "_"): value for key, value in overrides.items()
                  if value is not None}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown option(s) {unknown}; known: {sorted(known)}")
        return dataclasses.replace(self, **values)


def load_config_file(path: str) -> dict[str, Any]:
    """Reads a YAML or JSON config file whose keys are option names (`max-seq-length`)."""
    try:
        with open(path, encoding="utf-8") as stream:
            values = (json.load(stream) if path.endswith(".json")
                      else yaml.safe_load(stream)) or {}
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config file ({err.strerror})") from None
    except (yaml.YAMLError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: not valid YAML/JSON: {err}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of option names to values")
    return values
