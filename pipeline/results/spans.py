"""What a run did with spans: which it ingested, its training window, where the candidate
started, the drift verdict and the comparison span by span.

Read from the run's ML Metadata records (`run_results`); each key is absent when the
node that decides it did not run (a run stopped before it, or from before spans).
The keys are those of `qqp-tfx report --format json`: `span`, `train_spans`,
`warm_start`, `drift` and `per_span`.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from pipeline.results.run_results import NodeResult, has_output


def _json_property(run: Mapping[str, NodeResult], node: str, key: str, name: str) -> Any:
    if not has_output(run, node, key):
        return None
    properties = run[node].outputs[key][0].custom_properties
    return json.loads(properties[name].string_value) if name in properties else None


def span_details(run: Mapping[str, NodeResult]) -> dict[str, Any]:
    """span, train_spans, warm_start and drift of a run, those it got to."""
    details: dict[str, Any] = {}
    for node, key in (("TrainingWindow", "examples"), ("QqpExampleGen", "examples")):
        if has_output(run, node, key):
            artifact = run[node].outputs[key][0]
            details["span"] = (artifact.custom_properties["span"].int_value
                               if "span" in artifact.custom_properties else 0)
            break
    train_spans = _json_property(run, "TrainingWindow", "examples", "train_spans")
    if train_spans is not None:
        details["train_spans"] = train_spans
    warm_start = _json_property(run, "WarmStart", "model", "warm_start")
    if warm_start is not None:
        details["warm_start"] = {key: value for key, value in warm_start.items()
                                 if key in ("from", "version", "why")}
    drift = _json_property(run, "DriftGate", "drift", "drift")
    if drift is not None:
        details["drift"] = drift
    return details


def describe(details: Mapping[str, Any]) -> list[str]:
    """The span lines of the run summary, in words."""
    lines = []
    if details.get("span"):
        lines.append(f"span {details['span']}, training window: spans "
                     + ", ".join(map(str, details.get("train_spans", []))))
    drift = details.get("drift")
    if drift:
        worst = max(drift["features"].items(), default=None,
                    key=lambda item: item[1]["divergence"] / item[1]["threshold"])
        lines.append(f"drift: {drift['verdict']}" + (
            f" (largest: {worst[0]} {worst[1]['divergence']:.4f}, threshold "
            f"{worst[1]['threshold']:.4f})" if worst else f" ({drift.get('why', '')})"))
    start = details.get("warm_start")
    if start:
        lines.append(f"started from: the served version {start['version']}"
                     if start["from"] == "served" else f"started from: the checkpoint "
                                                       f"({start.get('why', '')})")
    return lines
