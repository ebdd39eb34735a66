"""Tiny inline-SVG charts for the audit report: bars (grouped or stacked) and lines. No JavaScript, no
external resource: the report must open on a machine without network."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["Series", "bar_chart", "line_chart", "nice_ceiling"]

_W, _H = 560, 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 36, 64
_FONT = 'font-family="system-ui, sans-serif"'


@dataclass(frozen=True)
class Series:
    """One named series of values (None: not measured), drawn in `color`."""

    name: str
    values: Sequence[float | None]
    color: str


def nice_ceiling(value: float) -> float:
    """A round number >= value (1, 2, 2.5, 5 times a power of ten) for an axis maximum."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value * (1 - 1e-12):
            return float(step * power)
    return float(10 * power)


def _tick(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e6 or abs(value) < 1e-3:
        return f"{value:.2g}"
    return f"{value:.4g}"


def _frame(title: str, y_max: float, y_label: str, labels: Sequence[str], chart_id: str) -> list[str]:
    plot_h = _H - _TOP - _BOTTOM
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{escape(chart_id)}" class="chart" width="{_W}" '
        f'height="{_H}" viewBox="0 0 {_W} {_H}" role="img" aria-label="{escape(title)}">',
        f'<rect x="0" y="0" width="{_W}" height="{_H}" fill="#ffffff"/>',
        f'<text x="{_W / 2}" y="20" text-anchor="middle" font-size="14" font-weight="600" {_FONT}>'
        f"{escape(title)}</text>",
    ]
    for k in range(5):
        value = y_max * k / 4
        y = _TOP + plot_h - plot_h * k / 4
        out.append(f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_W - _RIGHT}" y2="{y:.1f}" stroke="#e3e3e3"/>')
        out.append(
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" {_FONT}>'
            f"{_tick(value)}</text>"
        )
    out.append(
        f'<text x="14" y="{_TOP + plot_h / 2:.1f}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 14 {_TOP + plot_h / 2:.1f})" {_FONT}>{escape(y_label)}</text>'
    )
    out.append(
        f'<line x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{_W - _RIGHT}" y2="{_TOP + plot_h}" stroke="#555"/>'
    )
    return out


def _legend(series: Sequence[Series]) -> list[str]:
    out, x = [], _LEFT
    for s in series:
        out.append(f'<rect x="{x}" y="{_H - 18}" width="10" height="10" fill="{escape(s.color)}"/>')
        out.append(f'<text x="{x + 14}" y="{_H - 9}" font-size="11" {_FONT}>{escape(s.name)}</text>')
        x += 24 + 7 * len(s.name)
    return out


def _x_labels(labels: Sequence[str], centers: Sequence[float]) -> list[str]:
    step = max(1, math.ceil(len(labels) / 16))
    y = _H - _BOTTOM + 16
    return [
        f'<text x="{x:.1f}" y="{y}" text-anchor="middle" font-size="10" {_FONT}>{escape(label)}</text>'
        for i, (label, x) in enumerate(zip(labels, centers, strict=True))
        if i % step == 0
    ]


def bar_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    y_label: str = "",
    stacked: bool = False,
    chart_id: str = "chart",
) -> str:
    """Bars per label: grouped side by side, or `stacked`. Missing values (None) draw nothing."""
    n = max(1, len(labels))
    if stacked:
        totals = [sum(v or 0.0 for v in (s.values[i] for s in series)) for i in range(len(labels))]
        peak = max(totals, default=0.0)
    else:
        peak = max((v or 0.0 for s in series for v in s.values), default=0.0)
    y_max = nice_ceiling(peak)
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    slot = plot_w / n
    out = _frame(title, y_max, y_label, labels, chart_id)
    centers = [_LEFT + slot * (i + 0.5) for i in range(len(labels))]
    groups = 1 if stacked else max(1, len(series))
    width = slot * 0.8 / groups
    for i in range(len(labels)):
        base = 0.0
        for k, s in enumerate(series):
            value = s.values[i]
            if value is None or value <= 0:
                continue
            height = plot_h * value / y_max
            x = _LEFT + slot * i + slot * 0.1 + (0 if stacked else k * width)
            y = _TOP + plot_h - base - height
            out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(width, 1.0):.1f}" height="{height:.1f}" '
                f'fill="{escape(s.color)}"><title>{escape(s.name)} {escape(labels[i])}: '
                f"{_tick(value)}</title></rect>"
            )
            if stacked:
                base += height
    out += _x_labels(labels, centers)
    out += _legend(series)
    out.append("</svg>")
    return "\n".join(out)


def line_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    y_label: str = "",
    y_max: float | None = None,
    chart_id: str = "chart",
) -> str:
    """Lines with point markers over the labels; None values break nothing, they are skipped."""
    peak = max((v for s in series for v in s.values if v is not None), default=0.0)
    top = y_max if y_max is not None else nice_ceiling(peak)
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    n = max(1, len(labels))
    xs = [_LEFT + plot_w * (i + 0.5) / n for i in range(len(labels))]
    out = _frame(title, top, y_label, labels, chart_id)
    for s in series:
        points = [
            (xs[i], _TOP + plot_h - plot_h * min(v, top) / top)
            for i, v in enumerate(s.values)
            if v is not None
        ]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{escape(s.color)}" stroke-width="2.5"/>'
            )
        for (x, y), v in zip(points, [v for v in s.values if v is not None], strict=True):
            out.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{escape(s.color)}"><title>{escape(s.name)}: '
                f"{_tick(v)}</title></circle>"
            )
    if not any(v is not None for s in series for v in s.values):
        out.append(
            f'<text x="{_W / 2}" y="{_TOP + plot_h / 2}" text-anchor="middle" font-size="13" fill="#888" '
            f"{_FONT}>not measured</text>"
        )
    out += _x_labels(labels, xs)
    out += _legend(series)
    out.append("</svg>")
    return "\n".join(out)
