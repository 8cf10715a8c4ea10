"""Charts drawn on the server as inline SVG: no script, no CDN, readable without colour (each line
has its own dash and marker shape), the numbers on hover (<title>) and as a table.

A line chart marks each point with an element of class `pt` carrying `data-series` and
`data-value`; each time slot is also a hover column whose title lists every series' value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from markupsafe import Markup, escape

from bullpen.runtime.series import MINUTE_MS
from bullpen.web.history import Chart, Line

WIDTH, HEIGHT = 440, 170
LEFT, RIGHT, TOP, BOTTOM = 56, 10, 10, 24
FONT_SIZE = 12
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


@dataclass(frozen=True, slots=True)
class Style:
    colour: str
    dash: str
    marker: str  # circle, square or triangle


STYLES = {
    "completed": Style("#16794c", "", "circle"),
    "failed": Style("#b42318", "6 3", "square"),
    "p50": Style("#3558d4", "", "circle"),
    "p95": Style("#b54708", "6 3", "triangle"),
}


def style_of(key: str) -> Style:
    return STYLES.get(key.rsplit("-", 1)[-1], STYLES["p50"])


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit != "ms":
        return f"{value:,.0f}"
    if value < 10:
        return f"{value:.2g} ms" if value < 1 else f"{value:.1f} ms"
    if value < 1000:
        return f"{value:.0f} ms"
    return f"{value / 1000:.1f} s" if value < 120_000 else f"{value / 60_000:.1f} min"


def slot_label(minute: int, step_min: int) -> str:
    start = datetime.fromtimestamp(minute * MINUTE_MS / 1000, tz=UTC)
    if step_min == 1:
        return start.strftime("%H:%M UTC")
    end = datetime.fromtimestamp((minute + step_min) * MINUTE_MS / 1000, tz=UTC)
    return f"{start:%H:%M}-{end:%H:%M} UTC"


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2 or 5 times a power of ten at or above `value` (1 for nothing)."""
    if value <= 0:
        return 1.0
    scale = 10.0 ** len(str(int(value))) / 10 if value >= 1 else 10 ** -3
    while True:
        for step in (1, 2, 5, 10):
            if step * scale >= value:
                return step * scale
        scale *= 10


def _marker(shape: str, x: float, y: float, colour: str, size: float = 3) -> str:
    """The start of a marker element (the caller adds attributes and closes it)."""
    if shape == "square":
        return (f'<rect x="{x - size:.1f}" y="{y - size:.1f}" width="{2 * size:g}" '
                f'height="{2 * size:g}" fill="{colour}"')
    if shape == "triangle":
        return (f'<path d="M{x:.1f} {y - size - 1:.1f}L{x + size + 1:.1f} {y + size:.1f}'
                f'L{x - size - 1:.1f} {y + size:.1f}Z" fill="{colour}"')
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{size:g}" fill="{colour}"'


def _axes(top_value: float, unit: str, slot_count: int, step_min: int) -> list[str]:
    parts = []
    for share in (0.0, 0.5, 1.0):
        y = TOP + PLOT_H * (1 - share)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                     'stroke="#e4e7ec"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f'{escape(format_value(top_value * share, unit))}</text>')
    span_min = slot_count * step_min
    for share in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = LEFT + PLOT_W * share
        ago = span_min * (1 - share)
        text = "now" if not ago else (f"-{ago / 60:g} h" if span_min > 120 else f"-{ago:g} min")
        anchor = "start" if share == 0 else "end" if share == 1 else "middle"
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - 6}" text-anchor="{anchor}">{text}</text>')
    return parts


@dataclass(frozen=True, slots=True)
class Frame:
    """Where a chart's slots and values land in the SVG."""

    count: int
    top_value: float

    def x(self, index: int) -> float:
        return LEFT + (PLOT_W * index / (self.count - 1) if self.count > 1 else PLOT_W / 2)

    def y(self, value: float) -> float:
        return TOP + PLOT_H * (1 - value / self.top_value)


def line_chart(chart: Chart, slot_minutes: list[int], step_min: int, dom_id: str) -> Markup:
    """One chart as an SVG element (role img, titled, described)."""
    values = [value for line in chart.lines for value in line.values if value is not None]
    frame = Frame(len(slot_minutes), nice_ceiling(max(values, default=0.0)))
    ident = escape(dom_id)
    parts = [f'<svg id="{ident}" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-labelledby="{ident}-title {ident}-desc" font-size="{FONT_SIZE}" '
             'fill="#667085">',
             f'<title id="{ident}-title">{escape(chart.title)}</title>',
             f'<desc id="{ident}-desc">{escape(summary(chart))}</desc>',
             *_axes(frame.top_value, chart.unit, frame.count, step_min),
             *_columns(chart, slot_minutes, step_min, frame)]
    for line in chart.lines:
        parts.extend(_series(line, frame))
    parts.append("</svg>")
    return Markup("".join(parts))


def _columns(chart: Chart, slot_minutes: list[int], step_min: int, frame: Frame) -> list[str]:
    """A hover target per slot, titled with every series' value there."""
    width = PLOT_W / max(frame.count - 1, 1)
    parts = []
    for index, minute in enumerate(slot_minutes):
        shown = " · ".join(f"{line.label} {format_value(line.values[index], chart.unit)}"
                           for line in chart.lines)
        parts.append(f'<rect class="col" x="{frame.x(index) - width / 2:.1f}" y="{TOP}" '
                     f'width="{width:.1f}" height="{PLOT_H}" fill="transparent">'
                     f'<title>{escape(slot_label(minute, step_min))}: {escape(shown)}</title>'
                     '</rect>')
    return parts


def _series(line: Line, frame: Frame) -> list[str]:
    """A line's path (lifted over gaps) and a marker per value."""
    style = style_of(line.key)
    points = [(frame.x(index), frame.y(value), value) for index, value in enumerate(line.values)
              if value is not None]
    parts = []
    path = _path([(frame.x(index), frame.y(value)) if value is not None else None
                  for index, value in enumerate(line.values)])
    if path:
        dash = f' stroke-dasharray="{style.dash}"' if style.dash else ""
        parts.append(f'<path d="{path}" fill="none" stroke="{style.colour}" '
                     f'stroke-width="1.5"{dash} pointer-events="none"/>')
    for x, y, value in points:
        # Zeros sit on the axis: smaller, so the lines that carry data stand out.
        size = 1.5 if not value else 3
        parts.append(f'{_marker(style.marker, x, y, style.colour, size)} class="pt" '
                     f'data-series="{escape(line.key)}" data-value="{value:g}" '
                     'pointer-events="none"/>')
    return parts


def _path(points: list[tuple[float, float] | None]) -> str:
    """An SVG path through the points, lifted over the gaps (None)."""
    out, pen_down = [], False
    for point in points:
        if point is None:
            pen_down = False
            continue
        out.append(f"{'L' if pen_down else 'M'}{point[0]:.1f} {point[1]:.1f}")
        pen_down = True
    return "".join(out)


def summary(chart: Chart) -> str:
    """What a chart shows, in words: each line's peak or total."""
    said = []
    for line in chart.lines:
        values = [value for value in line.values if value is not None]
        if not values:
            said.append(f"{line.label}: no data")
        elif chart.unit == "jobs":
            said.append(f"{line.label}: {sum(values):,.0f} in all, at most "
                        f"{max(values):,.0f} in one slot")
        else:
            said.append(f"{line.label}: highest {format_value(max(values), chart.unit)}")
    return f"{chart.title}. " + "; ".join(said) + "."


def legend(chart: Chart) -> Markup:
    items = []
    for line in chart.lines:
        style = style_of(line.key)
        dash = f' stroke-dasharray="{style.dash}"' if style.dash else ""
        items.append(
            f'<span class="key"><svg width="30" height="12" aria-hidden="true">'
            f'<line x1="0" x2="30" y1="6" y2="6" stroke="{style.colour}" stroke-width="1.5"'
            f'{dash}/>{_marker(style.marker, 15, 6, style.colour)}/></svg>'
            f'{escape(line.label)}</span>')
    return Markup("".join(items))


def numbers_table(chart: Chart, slot_minutes: list[int], step_min: int, dom_id: str) -> Markup:
    """The chart's numbers, newest first, in a collapsed <details> (open for screen readers)."""
    head = "".join(f"<th>{escape(line.label)}</th>" for line in chart.lines)
    rows = []
    for index in range(len(slot_minutes) - 1, -1, -1):
        cells = "".join(f"<td>{escape(format_value(line.values[index], chart.unit))}</td>"
                        for line in chart.lines)
        rows.append(f"<tr><th>{escape(slot_label(slot_minutes[index], step_min))}</th>"
                    f"{cells}</tr>")
    return Markup(f'<details class="numbers" id="{escape(dom_id)}-numbers"><summary>Numbers'
                  f'</summary><table><thead><tr><th>Time</th>{head}</tr></thead><tbody>'
                  f'{"".join(rows)}</tbody></table></details>')
