"""Training hyperparameters, carried in the Trainers' `custom_config`."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from components.families.checkpoint import DEFAULT_CHECKPOINT
from components.precision.choices import MIXED_PRECISION_POLICIES

# tf.distribute strategy of the Trainer: "none" is the default strategy (one device).
DISTRIBUTION_STRATEGIES = ("none", "mirrored", "multi_worker_mirrored")
# "both": train on each pair in a random order, score the mean of both orders
# (components.model.pair_order); "given": question1 then question2 only.
PAIR_ORDERS = ("both", "given")
# Where the candidate starts: "served", the served version's weights when it is compatible
# and older than the data (components.training.warm_start); "checkpoint", the pretrained one.
WARM_STARTS = ("served", "checkpoint")


@dataclasses.dataclass(frozen=True)
class Hyperparameters:
    """What one Trainer run needs besides its data.

    The not-fine-tuned model reads only `checkpoint`, `max_train_examples` (the
    pairs its cosine -> probability map is fitted on) and `eval_batch_size`.
    """

    checkpoint: str = DEFAULT_CHECKPOINT
    learning_rate: float = 5e-5
    batch_size: int = 32
    epochs: int = 1
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    seed: int = 42
    pooling: str = "mean"
    max_train_examples: int | None = None
    eval_batch_size: int = 64
    distribution_strategy: str = "none"
    mixed_precision: str = "auto"
    pair_order: str = "given"
    max_seq_length: int = 128  # what Transform truncates to: part of a warm start's identity
    warm_start: str = "served"
    # A warm-started candidate's own schedule: a fraction (or multiple) of an epoch over the
    # window, with its own warm-up and decay (measured in docs/continuous_training.md: half an
    # epoch at 5e-5 came within 0.002 of training from scratch on the window; 2e-5, 0.008).
    warm_start_epochs: float = 0.5
    warm_start_learning_rate: float = 5e-5

    def __post_init__(self) -> None:
        for name, choices in (("distribution_strategy", DISTRIBUTION_STRATEGIES),
                              ("mixed_precision", MIXED_PRECISION_POLICIES),
                              ("pair_order", PAIR_ORDERS), ("warm_start", WARM_STARTS)):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {getattr(self, name)!r}")

    @classmethod
    def from_custom_config(cls, custom_config: Mapping[str, Any] | None) -> "Hyperparameters":
        """Reads the known keys of a Trainer `custom_config`, ignoring others."""
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in (custom_config or {}).items()
                      if key in names})

    def to_custom_config(self) -> dict[str, Any]:
        """The JSON-friendly dict passed as `custom_config`."""
        return dataclasses.asdict(self)
