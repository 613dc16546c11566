"""Inline SVG charts of the report: precision-recall and calibration curves."""

from __future__ import annotations

import dataclasses
import html
import math
from typing import Sequence

from pipeline.report.data import CALIBRATION_BINS, ModelReport

GUIDE_COLOR = "#9ca3af"


@dataclasses.dataclass
class Series:
    """One line of a chart; `markers` are (x, y, radius, tooltip) circles."""

    name: str
    color: str
    points: Sequence[tuple[float, float]]
    markers: Sequence[tuple[float, float, float, str]] = ()
    dashed: bool = False


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def svg_chart(series: Sequence[Series], *, title: str, x_label: str, y_label: str,
              width: int = 520, height: int = 420) -> str:
    """A line chart on the unit square [0, 1] x [0, 1] as an inline SVG element.

    The legend lists `series` in order; earlier series are drawn on top of later ones.
    """
    esc = html.escape
    left, right, top, bottom = 62, 18, 44 + 20 * _legend_rows(series, width), 54
    plot_w, plot_h = width - left - right, height - top - bottom

    def x_px(x: float) -> float:
        return left + min(max(x, 0.0), 1.0) * plot_w

    def y_px(y: float) -> float:
        return top + (1.0 - min(max(y, 0.0), 1.0)) * plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
             f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'aria-label="{esc(title)}">',
             f'<title>{esc(title)}</title>',
             f'<text class="chart-title" x="{width / 2:.1f}" y="22" text-anchor="middle">'
             f'{esc(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#ffffff" '
             f'stroke="#d1d5db"/>']
    for step in range(6):
        tick = step / 5
        parts.append(f'<line x1="{x_px(tick):.1f}" y1="{top}" x2="{x_px(tick):.1f}" '
                     f'y2="{top + plot_h}" stroke="#eef0f3"/>')
        parts.append(f'<line x1="{left}" y1="{y_px(tick):.1f}" x2="{left + plot_w}" '
                     f'y2="{y_px(tick):.1f}" stroke="#eef0f3"/>')
        parts.append(f'<text class="tick" x="{x_px(tick):.1f}" y="{top + plot_h + 16}" '
                     f'text-anchor="middle">{_fmt(tick)}</text>')
        parts.append(f'<text class="tick" x="{left - 8}" y="{y_px(tick) + 4:.1f}" '
                     f'text-anchor="end">{_fmt(tick)}</text>')
    parts.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
                 f'stroke="#9ca3af"/>')
    parts.append(f'<text class="axis-label" x="{left + plot_w / 2:.1f}" y="{height - 12}" '
                 f'text-anchor="middle">{esc(x_label)}</text>')
    parts.append(f'<text class="axis-label" x="16" y="{top + plot_h / 2:.1f}" '
                 f'text-anchor="middle" transform="rotate(-90 16 {top + plot_h / 2:.1f})">'
                 f'{esc(y_label)}</text>')
    for line in reversed(series):
        group = [f'<g class="series" data-name="{esc(line.name)}">']
        if len(line.points) > 1:
            coordinates = " ".join(f"{x_px(x):.1f},{y_px(y):.1f}" for x, y in line.points)
            dash = ' stroke-dasharray="6 4"' if line.dashed else ""
            width_px = 1.5 if line.dashed else 2.2
            group.append(f'<polyline points="{coordinates}" fill="none" stroke="{line.color}" '
                         f'stroke-width="{width_px}" stroke-linejoin="round"{dash}/>')
        for x, y, radius, tooltip in line.markers:
            group.append(f'<circle cx="{x_px(x):.1f}" cy="{y_px(y):.1f}" r="{radius:.1f}" '
                         f'fill="{line.color}" fill-opacity="0.8" stroke="#ffffff">'
                         f'<title>{esc(tooltip)}</title></circle>')
        group.append("</g>")
        parts.extend(group)
    parts.extend(_legend(series, x=left, y=40, width=plot_w))
    parts.append("</svg>")
    return "".join(parts)


def _legend_entry_width(entry: Series) -> int:
    return 34 + round(6.5 * len(entry.name)) + 20


def _legend_rows(series: Sequence[Series], width: int) -> int:
    rows, used = 1, 0
    for entry in series:
        if used and used + _legend_entry_width(entry) > width - 80:
            rows, used = rows + 1, 0
        used += _legend_entry_width(entry)
    return rows


def _legend(series: Sequence[Series], *, x: int, y: int, width: int) -> list[str]:
    """A horizontal legend above the plot area, wrapped to `width`."""
    parts, cursor, row = [], 0, 0
    for entry in series:
        if cursor and cursor + _legend_entry_width(entry) > width:
            cursor, row = 0, row + 1
        base_x, base_y = x + cursor, y + 20 * row
        dash = ' stroke-dasharray="6 4"' if entry.dashed else ""
        parts.append(f'<g class="legend-entry"><line x1="{base_x}" y1="{base_y}" '
                     f'x2="{base_x + 26}" y2="{base_y}" stroke="{entry.color}" '
                     f'stroke-width="{1.5 if entry.dashed else 3}"{dash}/>'
                     f'<text class="legend" x="{base_x + 32}" y="{base_y + 4}">'
                     f'{html.escape(entry.name)}</text></g>')
        cursor += _legend_entry_width(entry)
    return parts


def pr_chart(models: Sequence[ModelReport], threshold: float = 0.5) -> str:
    """Precision vs recall of all models, with each model's operating point."""
    series = []
    for model in models:
        markers = []
        if model.operating_point:
            recall, precision = model.operating_point
            markers.append((recall, precision, 5.0,
                            f"{model.title} at threshold {threshold}: recall {recall:.3f}, "
                            f"precision {precision:.3f}"))
        series.append(Series(model.title, model.color, model.pr_curve, markers))
    positive_rate = _positive_rate(models)
    if positive_rate is not None:
        series.append(Series(f"no skill (duplicate rate {positive_rate:.2f})", GUIDE_COLOR,
                             [(0.0, positive_rate), (1.0, positive_rate)], dashed=True))
    return svg_chart(series, title="Precision-recall curve (eval split)",
                     x_label="recall", y_label="precision")


def _positive_rate(models: Sequence[ModelReport]) -> float | None:
    for model in models:
        rate = model.overall.get("mean_label", math.nan)
        if not math.isnan(rate):
            return rate
    return None


def calibration_chart(models: Sequence[ModelReport]) -> str:
    """Reliability curves of all models and the diagonal of perfect calibration."""
    series = []
    for model in models:
        largest = max((count for _, _, count in model.calibration), default=1.0)
        markers = [(prediction, positive, 3.0 + 4.0 * math.sqrt(count / largest),
                    f"{model.title}: {count:,.0f} pairs, mean prediction {prediction:.3f}, "
                    f"duplicates {positive:.3f}")
                   for prediction, positive, count in model.calibration]
        points = [(prediction, positive) for prediction, positive, _ in model.calibration]
        series.append(Series(model.title, model.color, points, markers))
    series.append(Series("perfectly calibrated", GUIDE_COLOR, [(0.0, 0.0), (1.0, 1.0)],
                         dashed=True))
    return svg_chart(series, title=f"Calibration ({CALIBRATION_BINS} bins, eval split)",
                     x_label="mean predicted probability of duplicate",
                     y_label="fraction of duplicates")
