"""The report's release section: the gate's comparisons with their intervals, the serving check.

Both come from what the run recorded (the BlessingGate's figures, the
ServingCheck's result), the same documents `qqp-tfx report --format json` prints.
"""

from __future__ import annotations

import html
from typing import Any

METRIC_NAMES = {"accuracy": "accuracy", "f1": "F1"}


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _versus(item: dict[str, Any]) -> str:
    return ("the not-fine-tuned model" if item["versus"] == "not_fine_tuned"
            else f"the served model (version {item['version']})")


def comparisons_table(comparisons: list[dict[str, Any]]) -> str:
    """One row per comparison: the difference, its interval and what the gate decided."""
    if not comparisons:
        return ""
    rows = []
    for item in comparisons:
        css = "pos" if item["passed"] else "neg"
        interval = (f"{round(item['confidence'] * 100)}% CI {item['ci_low']:+.4f}.."
                    f"{item['ci_high']:+.4f}")
        rows.append(f"<tr><td>{_e(_versus(item))}</td><td>{_e(item['slice'])}</td>"
                    f"<td>{_e(METRIC_NAMES.get(item['metric'], item['metric']))}</td>"
                    f"<td>{item['difference']:+.4f}</td><td>{_e(interval)}</td>"
                    f'<td class="{css}">{"passed" if item["passed"] else "failed"}</td></tr>')
    heads = "".join(f"<th>{title}</th>" for title in
                    ("versus", "pairs", "metric", "difference", "paired interval", "decided"))
    return ("<section><h2>Comparisons on the same eval pairs</h2>"
            f"<table><thead><tr>{heads}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            '<p class="note">Paired bootstrap intervals of the difference (candidate minus '
            "baseline). Better than the not-fine-tuned model means the whole interval above 0; "
            "against the served model a candidate fails only when the whole interval lies "
            "below minus the margin.</p></section>")


def serving_check_section(result: dict[str, Any] | None) -> str:
    """The serving check's verdict and the latency and memory of both versions."""
    if result is None:
        return ""
    word = "passed" if result["passed"] else "FAILED"
    latency = result.get("latency_ms") or {}
    memory = result.get("memory_mib") or {}
    rows = []
    for role, title in (("candidate", "candidate"), ("served", "served version")):
        times = latency.get(role) or {}
        cells = [times.get("b1"), times.get("b64"), memory.get(role)]
        if any(value is not None for value in cells):
            rows.append(f"<tr><td>{title}</td>" + "".join(
                f"<td>{'-' if value is None else f'{value:,.1f}'}</td>" for value in cells)
                + "</tr>")
    table = ("<table><thead><tr><th>model</th><th>latency at batch 1 (ms)</th>"
             "<th>latency at batch 64 (ms)</th><th>peak memory (MiB)</th></tr></thead>"
             f"<tbody>{''.join(rows)}</tbody></table>") if rows else ""
    return (f"<section><h2>Serving check: {word}</h2><p>{_e(result.get('why', ''))}</p>"
            f"{table}</section>")
