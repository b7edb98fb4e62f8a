"""Horizontal bar charts drawn as SVG by the server: they need no script, weigh a few hundred
bytes per bar on a slow link, and scale to a phone's width. Each chart goes with a table of
the same figures (for screen readers and for copying); the chart itself is an image with a
title."""

from __future__ import annotations

from dataclasses import dataclass

WIDTH = 640
LABEL_WIDTH = 230  # labels end here; bars start a little after
BAR_AREA = 330
ROW = 26
BAR = 18
LABEL_CHARS = 30


@dataclass(frozen=True)
class Bar:
    label: str
    short_label: str  # what fits before the bar; the full one is in the table and the title
    value: float | None  # None: hidden or no such figure; no bar is drawn
    text: str  # the figure as shown
    y: int
    width: float


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    bars: list[Bar]

    @property
    def height(self) -> int:
        return max(1, len(self.bars)) * ROW + 8

    bar_x = LABEL_WIDTH + 10
    width = WIDTH
    bar_height = BAR


def bar_chart(chart_id: str, title: str, rows: list[tuple[str, float | None, str]]) -> Chart:
    """``rows``: each group's label, value (None for none) and the text shown for it. Bars are
    scaled to the largest value, so that differences between groups show."""
    top = max((v for _label, v, _text in rows if v is not None), default=0.0)
    bars = []
    for i, (label, value, text) in enumerate(rows):
        short = label if len(label) <= LABEL_CHARS else label[:LABEL_CHARS - 1] + "…"
        width = round(value / top * BAR_AREA, 1) if value is not None and top > 0 else 0.0
        bars.append(Bar(label, short, value, text, 4 + i * ROW, width))
    return Chart(chart_id, title, bars)
