"""The candidate and the served model on each span of the training window.

The served-model Evaluator slices its evaluation by the `span` feature; this
reads those slices back, so the gate can name the worst span and the report
can show every span: a candidate that learned the new span but forgot an older
one regresses on the older span's slice.
"""

from __future__ import annotations

from components.features import CANDIDATE, GATED_METRICS, METRIC_TITLES, SERVED, SPAN_FEATURE

# TFMA metric name -> key in the report's JSON.
SPAN_METRICS = {"binary_accuracy": "accuracy", "f1_score": "f1"}


def _span_slices(evaluation_uri: str, model_name: str) -> dict[int, dict[str, float]]:
    import tensorflow_model_analysis as tfma  # pylint: disable=import-outside-toplevel

    slices = {}
    for slice_key, metrics in tfma.load_eval_result(
            evaluation_uri, model_name=model_name).slicing_metrics:
        if len(slice_key) == 1 and slice_key[0][0] == SPAN_FEATURE:
            entry = metrics.get("", {}).get("", {})
            slices[int(slice_key[0][1])] = {
                key: float(entry[name]["doubleValue"]) for name, key in SPAN_METRICS.items()
                if "doubleValue" in entry.get(name, {})}
    return slices


def per_span(evaluation_uri: str, served_evaluation_uri: str | None) -> list[dict]:
    """[{"span": N, "candidate": {"accuracy", "f1"}, "served": {...} or None}], oldest span
    first: the candidate as `evaluation_uri` measured it, the served model as
    `served_evaluation_uri` did (None: nothing is served)."""
    candidate = _span_slices(evaluation_uri, CANDIDATE)
    served = _span_slices(served_evaluation_uri, SERVED) if served_evaluation_uri else {}
    return [{"span": span, "candidate": candidate[span], "served": served.get(span)}
            for span in sorted(candidate)]


def worst_span(rows: list[dict]) -> str | None:
    """The span where the candidate falls furthest behind the served model (its smaller
    change of accuracy and F1), in words; None when nothing is served."""
    def drop(row: dict) -> float:
        return min(row["candidate"].get(key, 0.0) - row["served"].get(key, 0.0)
                   for key in SPAN_METRICS.values())

    rows = [row for row in rows if row["served"]]
    if not rows:
        return None
    worst = min(rows, key=drop)
    changes = ", ".join(
        f"{METRIC_TITLES[name]} {worst['candidate'][key] - worst['served'][key]:+.4f}"
        for name, key in SPAN_METRICS.items() if name in GATED_METRICS.values())
    return f"worst span: {worst['span']} ({changes})"
