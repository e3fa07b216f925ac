"""Charts drawn on the server as SVG (issue 13, "Charts"): horizontal bars, and columns per day.

No script and nothing from a CDN: a chart is inline SVG markup that scales to its container
(``viewBox``, ``width="100%"``), names itself to assistive technology (``role="img"`` labelled by
its ``<title>`` and ``<desc>``), and writes every label and value as text beside its bar, so no
meaning is carried by colour alone. The page puts a table with the same numbers next to each chart
for screen readers; the chart is for readers who would rather look than read.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

#: The drawing's width in user units; at 360 px the text is drawn at 90% of its size.
WIDTH = 400
FONT_SIZE = 16
#: Bars dark blue on white (contrast 9:1), text near black: both above WCAG's 3:1 and 4.5:1.
BAR_COLOUR = "#1f4e99"
TEXT_COLOUR = "#1a1a1a"
AXIS_COLOUR = "#595959"

_ROW = 48  # a label line above a bar
_BAR = 18
_PAD = 8
_VALUE_ROOM = 48  # room right of the longest bar for its value
_COLUMN_AREA = 160
_COLUMN_TOP = 24


def bar_chart(chart_id: str, rows: Sequence[tuple[str, int]], *, title: str, description: str, empty: str) -> Markup:
    """Draw one horizontal bar per ``(label, value)``, the label above it and the value at its end.

    Bar lengths are proportional to the values; with no value above zero the chart says *empty*.
    """
    top = max((value for _label, value in rows), default=0)
    if top <= 0:
        return _empty(chart_id, title, description, empty)
    span = WIDTH - 2 * _PAD - _VALUE_ROOM
    height = _PAD + _ROW * len(rows)
    parts = []
    for index, (label, value) in enumerate(rows):
        y = _PAD + index * _ROW
        length = span * value / top
        parts.append(_text(_PAD, y + FONT_SIZE, label))
        if value > 0:
            parts.append(
                f'<rect class="bar" data-label="{escape(label)}" data-value="{value}" x="{_PAD}" '
                f'y="{y + FONT_SIZE + 6}" width="{length:.3f}" height="{_BAR}" fill="{BAR_COLOUR}"/>'
            )
        parts.append(_text(_PAD + length + 6, y + FONT_SIZE + 6 + _BAR - 3, str(value)))
    return _svg(chart_id, title, description, height, "".join(parts))


def column_chart(
    chart_id: str, columns: Sequence[tuple[str, int]], *, title: str, description: str, empty: str
) -> Markup:
    """Draw one column per ``(day, value)`` in the order given, over a base line with its first and last day.

    Labels are ISO dates (YYYY-MM-DD), shown as MM-DD under the first and the last column; the top
    of the scale is written at the top left. With no value above zero the chart says *empty*.
    """
    top = max((value for _label, value in columns), default=0)
    if top <= 0:
        return _empty(chart_id, title, description, empty)
    slot = (WIDTH - 2 * _PAD) / len(columns)
    base = _COLUMN_TOP + _COLUMN_AREA
    parts = [
        _text(_PAD, FONT_SIZE + 2, str(top)),
        f'<line x1="{_PAD}" y1="{_COLUMN_TOP}" x2="{WIDTH - _PAD}" y2="{_COLUMN_TOP}" stroke="{AXIS_COLOUR}" '
        'stroke-dasharray="4 4" stroke-width="1"/>',
        f'<line x1="{_PAD}" y1="{base}" x2="{WIDTH - _PAD}" y2="{base}" stroke="{AXIS_COLOUR}" stroke-width="1"/>',
    ]
    for index, (label, value) in enumerate(columns):
        if value <= 0:
            continue
        height = _COLUMN_AREA * value / top
        x = _PAD + index * slot + slot * 0.15
        parts.append(
            f'<rect class="bar" data-label="{escape(label)}" data-value="{value}" x="{x:.3f}" '
            f'y="{base - height:.3f}" width="{slot * 0.7:.3f}" height="{height:.3f}" fill="{BAR_COLOUR}"/>'
        )
    parts.append(_text(_PAD, base + FONT_SIZE + 6, columns[0][0][5:]))
    if len(columns) > 1:
        parts.append(_text(WIDTH - _PAD, base + FONT_SIZE + 6, columns[-1][0][5:], anchor="end"))
    return _svg(chart_id, title, description, base + FONT_SIZE + 12, "".join(parts))


def _empty(chart_id: str, title: str, description: str, empty: str) -> Markup:
    return _svg(chart_id, title, description, 2 * _PAD + FONT_SIZE + 8, _text(_PAD, _PAD + FONT_SIZE + 4, empty))


def _text(x: float, y: float, words: str, anchor: str = "start") -> str:
    return (
        f'<text x="{x:.3f}" y="{y:.3f}" font-size="{FONT_SIZE}" fill="{TEXT_COLOUR}" '
        f'text-anchor="{anchor}">{escape(words)}</text>'
    )


def _svg(chart_id: str, title: str, description: str, height: float, body: str) -> Markup:
    chart = escape(chart_id)
    # Every piece of text in *body* and here went through escape(); the rest is our own markup.
    return Markup(  # noqa: S704
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {height:.0f}" width="100%" '
        f'role="img" aria-labelledby="{chart}-title {chart}-desc" font-family="sans-serif">'
        f'<title id="{chart}-title">{escape(title)}</title><desc id="{chart}-desc">{escape(description)}</desc>'
        f"{body}</svg>"
    )
