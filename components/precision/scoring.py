"""bf16 scoring of the float32 SavedModel where the CPU computes bf16 natively.

The exported model computes in float32, so one artifact serves on any CPU. On a
CPU with avx512_bf16 or AMX, grappler's oneDNN bf16 rewrite
(`auto_mixed_precision_onednn_bfloat16`) runs its matrix products in bf16 while
the model files stay unchanged; the rewrite happens when TensorFlow first runs
a function under the option, and a function run with and without it keeps one
instance of each, so the option can be chosen per call.

Exported models read their weights once per request (components.kernels.serving_graph),
so the rewrite casts each weight once per request, not at every sub-batch.

Precision settings: `auto` (bf16 where the CPU has it), `float32`, `bfloat16`
(forced; on a CPU without bf16 TensorFlow declines the rewrite). The
environment variable `QQP_TFX_SCORING_PRECISION` sets the default for the
pipeline's scoring steps (the not-fine-tuned model's encoding and the
Evaluators). TF Serving takes the same switch from a session
config: `serving/bf16_platform_config.pbtxt`.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import tensorflow as tf

from components.precision.choices import SCORING_PRECISIONS
from components.precision.keras_policy import has_bf16_cpu

PRECISION_ENV = "QQP_TFX_SCORING_PRECISION"
BF16_REWRITE = "auto_mixed_precision_onednn_bfloat16"


def default_precision() -> str:
    """The precision the pipeline's scoring steps use: $QQP_TFX_SCORING_PRECISION or auto."""
    precision = os.environ.get(PRECISION_ENV, "auto")
    check_precision(precision)
    return precision


def check_precision(precision: str) -> None:
    """ValueError unless `precision` is one of SCORING_PRECISIONS."""
    if precision not in SCORING_PRECISIONS:
        raise ValueError(f"scoring precision must be one of {', '.join(SCORING_PRECISIONS)}, "
                         f"got {precision!r}")


def uses_bf16(precision: str, flags: set[str] | None = None) -> bool:
    """Whether scoring at `precision` uses the bf16 rewrite (on a CPU with `flags`)."""
    check_precision(precision)
    if precision == "auto":
        return has_bf16_cpu(flags)
    return precision == "bfloat16"


@contextlib.contextmanager
def bf16_rewrite(enabled: bool) -> Iterator[None]:
    """Runs TensorFlow functions with grappler's oneDNN bf16 rewrite on (or off), then
    restores the previous setting."""
    previous = bool(tf.config.optimizer.get_experimental_options().get(BF16_REWRITE, False))
    tf.config.optimizer.set_experimental_options({BF16_REWRITE: enabled})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({BF16_REWRITE: previous})


def scoring_precision(precision: str) -> contextlib.AbstractContextManager:
    """The context to score in at `precision`."""
    return bf16_rewrite(uses_bf16(precision))
