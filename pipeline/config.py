"""Pipeline configuration: defaults, config files and command-line overrides."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Mapping

import yaml

from components.checkpoint import DEFAULT_CHECKPOINT
from components.hyperparameters import Hyperparameters

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_SAMPLE = REPO_ROOT / "data" / "qqp_sample"
PIPELINE_NAME = "qqp-tfx"
MODEL_NAME = "qqp"


class ConfigError(ValueError):
    """A configuration file or value that cannot be used."""


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
    checkpoint: str = DEFAULT_CHECKPOINT
    max_seq_length: int = 128
    epochs: int = 3
    learning_rate: float = 5e-5
    batch_size: int = 32
    # All 8,000 pairs of the bundled sample; caps larger data (0: no cap). With bf16 and
    # no wasted work, 3 epochs fit the time 7,000 pairs x 2 epochs took before.
    max_train_examples: int | None = 8000
    # Training pairs the not-fine-tuned model's cosine -> probability map is fitted on.
    not_fine_tuned_examples: int = 4000
    seed: int = 42
    min_accuracy: float = 0.70
    min_f1: float = 0.60
    baseline_margin: float = 0.0  # how much worse than the latest blessed model is allowed
    distribution_strategy: str = "none"  # Trainer: none | mirrored | multi_worker_mirrored
    # Trainer: auto (bf16 where the hardware has it) | none | mixed_float16 | mixed_bfloat16
    mixed_precision: str = "auto"

    def __post_init__(self) -> None:
        try:
            self.hyperparameters()  # rejects unknown strategies and precision policies
        except ValueError as error:
            raise ConfigError(str(error)) from None

    def hyperparameters(self) -> Hyperparameters:
        """Hyperparameters of the fine-tuned candidate."""
        return Hyperparameters(
            checkpoint=self.checkpoint, learning_rate=self.learning_rate,
            batch_size=self.batch_size, epochs=self.epochs, seed=self.seed,
            max_train_examples=self.max_train_examples,
            distribution_strategy=self.distribution_strategy,
            mixed_precision=self.mixed_precision)

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
