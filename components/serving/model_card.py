"""The model card of a pushed version: `assets.extra/model_card.md`, written with the version.

Like a Hugging Face model card, a YAML header (base model, task, dataset, a
`model-index` with the eval metrics) and then Markdown for people: what the model
does and how to call it, where it comes from, its figures against the
not-fine-tuned model and the version it replaced with their intervals, span by
span, and its limits. Every figure comes from the version record
(`components.serving.history`) and the gate's figures (`components.evaluation.figures`,
the same document `qqp-tfx report` reads); nothing is typed by hand.
"""

from __future__ import annotations

import json
from typing import Any

TITLES = {"accuracy": "accuracy", "f1": "F1", "precision": "precision", "recall": "recall",
          "roc_auc": "ROC AUC", "pr_auc": "PR AUC"}
LIMITATIONS = (
    "Trained and measured on Quora question pairs (GLUE QQP): English questions of a "
    "general-knowledge forum. Other domains, languages or very long questions were not "
    "measured; questions longer than the model's max_seq_length are truncated.",
    "QQP's labels are noisy (its authors say so); figures on the eval pairs carry that noise, "
    "and the intervals only cover the sampling of the eval pairs.",
    "The decision threshold is 0.5 on the probability; the probability is not calibrated "
    "beyond what the eval figures show.",
)


def _yaml(value: Any) -> str:
    """A YAML scalar: JSON strings and numbers are valid YAML."""
    return "null" if value is None else json.dumps(value)


def _header(record: dict, figures: dict) -> list[str]:
    candidate = figures.get("candidate") or {}
    metrics = [f"        - {{type: {key}, value: {_yaml(candidate[key])}}}"
               for key in ("accuracy", "f1", "roc_auc") if candidate.get(key) is not None]
    return ["---", "language: en", "library_name: tensorflow",
            "pipeline_tag: text-classification",
            "tags: [tfx, tf-serving, qqp, duplicate-questions]",
            f"base_model: {_yaml(record.get('checkpoint'))}",
            "datasets: [glue]",
            "model-index:",
            f"  - name: {_yaml('qqp-tfx version ' + str(record.get('version')))}",
            "    results:",
            "      - task: {type: text-classification, name: Duplicate question detection}",
            "        dataset: {type: glue, name: QQP, config: qqp, split: eval}",
            "        metrics:", *(metrics or ["          []"]), "---"]


def _metrics_table(figures: dict) -> list[str]:
    roles = [("candidate", "this version"), ("not_fine_tuned", "not fine-tuned (cosine)"),
             ("served", f"version {figures.get('served_version')} (replaced)")]
    rows = ["| model | " + " | ".join(TITLES.values()) + " |",
            "|---|" + "---|" * len(TITLES)]
    for role, title in roles:
        metrics = figures.get(role)
        if metrics:
            rows.append(f"| {title} | " + " | ".join(
                "-" if metrics.get(key) is None else f"{metrics[key]:.4f}" for key in TITLES)
                + " |")
    return rows


def _comparison_rows(figures: dict) -> list[str]:
    rows = ["| versus | pairs | metric | difference | interval | decided |",
            "|---|---|---|---|---|---|"]
    for item in figures.get("comparisons", []):
        versus = ("the not-fine-tuned model" if item["versus"] == "not_fine_tuned"
                  else f"version {item['version']}")
        percent = round(item["confidence"] * 100)
        rows.append(f"| {versus} | {item['slice']} | {TITLES[item['metric']]} | "
                    f"{item['difference']:+.4f} | {percent}% CI {item['ci_low']:+.4f}.."
                    f"{item['ci_high']:+.4f} | {'passed' if item['passed'] else 'failed'} |")
    return rows


def _span_rows(figures: dict) -> list[str]:
    spans = [row for row in figures.get("per_span", []) if row.get("span")]
    if not spans:
        return ["The eval pairs were not laid out in spans."]
    rows = ["| span | accuracy | F1 | replaced version's accuracy | its F1 |",
            "|---|---|---|---|---|"]
    for row in spans:
        served = row.get("served") or {}
        cells = [row["candidate"].get("accuracy"), row["candidate"].get("f1"),
                 served.get("accuracy"), served.get("f1")]
        rows.append(f"| {row['span']} | " + " | ".join(
            "-" if value is None else f"{value:.4f}" for value in cells) + " |")
    return rows


def model_card(record: dict, figures: dict | None) -> str:
    """The card of the version `record` describes, with the gate's `figures` (None: the
    version was pushed without them, e.g. by an older pipeline; the card says so)."""
    figures = figures or {}
    data = record.get("data") or {}
    lines = _header(record, figures) + [
        f"# qqp-tfx version {record.get('version')}", "",
        "Tells whether two questions ask the same thing (Quora Question Pairs): the "
        "probability that they are duplicates, and the label at 0.5.", "",
        "## How to call it", "",
        "TF Serving REST, signature `predict_text` (raw strings in, one row per pair):", "",
        "```",
        "curl -d '{\"signature_name\": \"predict_text\", \"inputs\": {\"question1\": "
        "[\"How do I learn Python?\"], \"question2\": [\"How can I learn Python?\"]}}' \\",
        "  http://localhost:8501/v1/models/qqp:predict",
        "```", "",
        "Also `serving_default` (serialized tf.Examples), `classification` (TF Serving's "
        "Classify API) and `transform_features`.", "",
        "## Where it comes from", "",
        f"- checkpoint: `{record.get('checkpoint')}` (family `{record.get('family')}`)",
        f"- pipeline run: `{record.get('run_id')}`; pushed {record.get('pushed_at')} by "
        f"{record.get('pushed_by')}",
        f"- data: span {data.get('span', '-')}, fingerprint `{data.get('fingerprint')}`",
        f"- eval pairs: {figures.get('eval_pairs', '-')}",
    ]
    if record.get("rollback_of"):
        lines.append(f"- a rollback to version {record['rollback_of']}: "
                     f"{record.get('reason') or 'no reason given'}")
    lines += ["", "## Eval figures", ""]
    if not figures:
        lines.append("This version was pushed without the gate's figures.")
    else:
        lines += _metrics_table(figures) + ["", "Comparisons on the same eval pairs, with "
                                            "paired bootstrap intervals (the gate decides on "
                                            "them):", ""]
        lines += _comparison_rows(figures) + ["", "### By span", ""] + _span_rows(figures)
    lines += ["", "## Limitations", "", *(f"- {text}" for text in LIMITATIONS), ""]
    return "\n".join(lines)
