"""The plain-text table of `qqp-tfx runs` and its cells, which the HTML report shows too.

Works on `runs.RunSummary` objects (read by `pipeline.results.runs`, which
re-exports `COLUMNS`, `COLUMN_NOTE`, `table_rows`, `why` and `format_table`);
this module imports nothing of the pipeline, so the imports stay one-way.
"""

from __future__ import annotations

from typing import Any, Sequence

UNKNOWN = "unknown"
MISSING = "-"

# Table columns: (title, right-aligned).
COLUMNS = (("run", False), ("started (UTC)", False), ("checkpoint", False), ("family", False),
           ("data", False), ("span", False), ("drift", False), ("train", True),
           ("eval", True), ("len", True), ("epochs", True), ("lr", True), ("time", True),
           ("start", False),
           ("acc", True), ("F1", True), ("nft acc", True), ("nft F1", True),
           ("verdict", False), ("pushed", True))
COLUMN_NOTE = ("span: the span ingested [the spans of the training window] (- for data not "
               "in spans); drift: the drift gate's verdict on that span against the previous "
               "one (passed, stopped or accepted); start: what the candidate started from "
               "(vN: the served version N, ckpt: the checkpoint); acc, F1: the fine-tuned "
               "candidate on the eval split; nft: the not-fine-tuned model; time: how long "
               "the Trainer ran (training and export; - when reused from the cache); len: "
               "max_seq_length; pushed: the serving version (same: identical to the version "
               "already served, nothing new written)")
_WIDEST = 32


def _shorten(text: str | None) -> str:
    """A long path or name cut from the left, keeping its end."""
    if text is None:
        return MISSING
    return text if len(text) <= _WIDEST else "\u2026" + text[-(_WIDEST - 1):]


def _count(value: int | None) -> str:
    return MISSING if value is None else f"{value:,}"


def _metric(value: float | None) -> str:
    return MISSING if value is None else f"{value:.4f}"


def _span_list(spans: Sequence[int]) -> str:
    """1-3 for consecutive spans, else the numbers: 1,3."""
    numbers = sorted(spans)
    if len(numbers) > 1 and numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"{numbers[0]}-{numbers[-1]}"
    return ",".join(map(str, numbers))


def span_cell(summary: Any) -> str:
    """"2 [1-2]": span 2, trained on spans 1 to 2; "-" for data not in spans (span 0)."""
    if not summary.span:
        return MISSING
    return (f"{summary.span} [{_span_list(summary.train_spans)}]" if summary.train_spans
            else str(summary.span))


def start_cell(summary: Any) -> str:
    """"v1": warm-started from the served version 1; "ckpt": from the checkpoint."""
    start = summary.warm_start
    if not start:
        return MISSING
    if start.get("from") == "served":
        return f"v{start['version']}" if start.get("version") is not None else "served"
    return "ckpt" if start.get("from") == "checkpoint" else MISSING


def duration_cell(seconds: float | None) -> str:
    """"45s", "12.5m", "2.1h"; "-" when unknown."""
    if seconds is None:
        return MISSING
    if seconds < 60:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.1f}m" if seconds < 3600 else f"{seconds / 3600:.1f}h"


def verdict_word(summary: Any) -> str:
    """blessed / not blessed, or the run's status when the gate did not decide."""
    if summary.blessed is not None:
        return "blessed" if summary.blessed else "not blessed"
    return summary.status


def pushed_cell(summary: Any) -> str:
    """The pushed version, "(same)" when it was already served; "-" when none."""
    if summary.pushed_version is None:
        return MISSING if summary.pushed_to is None else _shorten(summary.pushed_to)
    return f"{summary.pushed_version} (same)" if summary.already_served \
        else str(summary.pushed_version)


def table_rows(summaries: Sequence[Any]) -> list[list[str]]:
    """The cells of each run's row, in `COLUMNS` order."""
    rows = []
    for summary in summaries:
        checkpoint = summary.checkpoint
        rows.append([
            summary.run_id, summary.started.replace("T", " ").rstrip("Z"),
            _shorten(checkpoint),
            MISSING if checkpoint is None else (summary.family or UNKNOWN),
            _shorten(summary.data), span_cell(summary), summary.drift or MISSING,
            _count(summary.train_pairs), _count(summary.eval_pairs),
            _count(summary.max_seq_length), _count(summary.epochs),
            MISSING if summary.learning_rate is None else f"{summary.learning_rate:g}",
            duration_cell(summary.training_seconds), start_cell(summary),
            _metric(summary.candidate_accuracy), _metric(summary.candidate_f1),
            _metric(summary.not_fine_tuned_accuracy), _metric(summary.not_fine_tuned_f1),
            verdict_word(summary), pushed_cell(summary)])
    return rows


def why(summary: Any) -> str:
    """The verdict's reasons, or what became of a run the gate did not decide."""
    if summary.verdict is not None:
        return "; ".join(summary.verdict) or MISSING
    if summary.status == "failed":
        return f"failed at {', '.join(summary.failed_components)}"
    if summary.unfinished_components:
        return (f"incomplete: {', '.join(summary.unfinished_components)} did not finish "
                "(still running, or the run was killed)")
    if summary.status == "incomplete":
        return "incomplete: stopped before the BlessingGate decided (--until, or killed)"
    return "no verdict recorded"


def format_table(summaries: Sequence[Any]) -> str:
    """The plain-text table of `qqp-tfx runs`, then each run's verdict in words."""
    if not summaries:
        return "No pipeline runs recorded yet."
    titles = [title for title, _ in COLUMNS]
    rows = table_rows(summaries)
    widths = [max(len(row[index]) for row in [titles] + rows) for index in range(len(titles))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.rjust(width) if right else cell.ljust(width)
                         for cell, width, (_, right) in zip(cells, widths, COLUMNS)).rstrip()

    lines = [line(titles), "  ".join("-" * width for width in widths)]
    lines += [line(row) for row in rows]
    lines += ["", COLUMN_NOTE, "", "Why:"]
    for summary in summaries:
        extra = []
        start = summary.warm_start or {}
        if start.get("from") == "checkpoint" and start.get("why"):
            extra.append(f"started from the checkpoint: {start['why']}")
        if summary.cached_components:
            extra.append(f"reused from cache: {', '.join(summary.cached_components)}")
        if summary.problems:
            extra.append(f"unreadable: {'; '.join(summary.problems)}")
        lines.append(f"  {summary.run_id}: {why(summary)}"
                     + "".join(f"\n      {item}" for item in extra))
    return "\n".join(lines)
