"""The gate's figures: one JSON document that the report, the version record and the card share.

The BlessingGate writes it (`<blessing>/figures.json` and the blessing's string
property `figures`): each model's overall metrics as TFMA measured them, every
comparison with its interval (components.evaluation.comparisons), the spans of the
window, and the settings they were decided with. Whatever shows a figure of the run
afterwards (`qqp-tfx report`, the model card and the record of the pushed version)
reads it from here, so the same number is never computed twice.
"""

from __future__ import annotations

import json
import os

from components.evaluation.comparisons import CONFIDENCE, Comparison
from components.features import CANDIDATE, NOT_FINE_TUNED, SERVED

FIGURES_KEY = "figures"  # the blessing's custom property
FIGURES_FILE = "figures.json"
# TFMA metric name -> key in the figures (and the report's JSON).
JSON_METRICS = {"binary_accuracy": "accuracy", "f1_score": "f1", "precision": "precision",
                "recall": "recall", "auc": "roc_auc", "auc_precision_recall": "pr_auc"}


def overall_metrics(evaluation_uri: str, model_name: str) -> dict[str, float]:
    """Scalar metrics of the overall slice for one model of a TFMA evaluation (TFMA names)."""
    import tensorflow_model_analysis as tfma  # pylint: disable=import-outside-toplevel

    result = tfma.load_eval_result(evaluation_uri, model_name=model_name)
    for slice_key, metrics in result.slicing_metrics:
        if slice_key == ():
            return {name: float(value["doubleValue"])
                    for name, value in metrics[""][""].items() if "doubleValue" in value}
    raise LookupError(f"{evaluation_uri}: no overall slice for model {model_name}")


def _json_metrics(metrics: dict[str, float]) -> dict[str, float]:
    return {key: metrics[name] for name, key in JSON_METRICS.items() if name in metrics}


def gate_figures(not_fine_tuned_evaluation_uri: str, served_model_evaluation_uri: str | None,
                 comparisons: list[Comparison], eval_pairs: int, margin: float,
                 served_version: int, per_span: list[dict]) -> dict:
    """The figures of one gate decision (`served_model_evaluation_uri` None: nothing served)."""
    served = (_json_metrics(overall_metrics(served_model_evaluation_uri, SERVED))
              if served_model_evaluation_uri else None)
    return {
        "eval_pairs": eval_pairs, "confidence": CONFIDENCE, "margin": margin,
        "served_version": served_version or None,
        CANDIDATE: _json_metrics(overall_metrics(not_fine_tuned_evaluation_uri, CANDIDATE)),
        NOT_FINE_TUNED: _json_metrics(overall_metrics(not_fine_tuned_evaluation_uri,
                                                      NOT_FINE_TUNED)),
        SERVED: served,
        "comparisons": [comparison.to_json() for comparison in comparisons],
        "per_span": per_span,
    }


def write_figures(blessing, figures: dict) -> None:
    """Records the figures on a ModelBlessing artifact: its property and a file in its URI."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    text = json.dumps(figures, sort_keys=True, allow_nan=False)
    blessing.set_string_custom_property(FIGURES_KEY, text)
    with tf.io.gfile.GFile(os.path.join(blessing.uri, FIGURES_FILE), "w") as stream:
        stream.write(text)
