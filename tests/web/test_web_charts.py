"""Charts as SVG: a point per value, a hover title per slot, lines told apart without colour,
the numbers as a table, and every text escaped."""

from __future__ import annotations

import re

from bullpen.web import charts, sparklines
from bullpen.web.history import WINDOWS, Chart, Line

MINUTES = list(range(29_000_000, 29_000_060))


def _chart(values: list[float | None], other: list[float | None] | None = None) -> Chart:
    lines = [Line("wait-p50", "wait p50", values)]
    if other is not None:
        lines.append(Line("wait-p95", "wait p95", other))
    return Chart("wait", "Wait <time>", "ms", lines)


def test_a_point_per_value_and_a_gap_where_there_is_none() -> None:
    values: list[float | None] = [None] * 60
    values[10], values[11], values[40] = 3.5, 12.0, 1500.0
    svg = str(charts.line_chart(_chart(values, [v and v * 2 for v in values]), MINUTES, 1, "c"))
    points = re.findall(r'class="pt" data-series="([^"]+)" data-value="([^"]+)"', svg)
    assert [value for series, value in points if series == "wait-p50"] == ["3.5", "12", "1500"]
    assert len(points) == 6
    # Two runs of values: the path lifts its pen over the gap.
    path = re.search(r'<path d="([^"]+)" fill="none" stroke="#3558d4"', svg)
    assert path and path.group(1).count("M") == 2
    assert svg.count('class="col"') == 60
    assert "21:30 UTC: wait p50 3.5 ms · wait p95 7.0 ms" in svg


def test_lines_on_one_chart_differ_in_dash_and_marker_not_only_in_colour() -> None:
    for keys in (("completed", "failed"), ("wait-p50", "wait-p95"), ("run-p50", "run-p95")):
        styles = [charts.style_of(key) for key in keys]
        assert len({style.marker for style in styles}) == 2, keys
        assert len({style.dash for style in styles}) == 2, keys
        legend = str(charts.legend(Chart("x", "x", "ms", [Line(key, key, []) for key in keys])))
        assert "stroke-dasharray" in legend and ("<rect" in legend or "<path" in legend)


def test_text_is_escaped_and_numbers_are_in_a_table() -> None:
    chart = Chart("finished", "Jobs <b>finished</b>", "jobs",
                  [Line("completed", "task <script>x</script>", [1.0] * 60)])
    svg = str(charts.line_chart(chart, MINUTES, 1, 'id"><script>'))
    table = str(charts.numbers_table(chart, MINUTES, 1, "c"))
    legend = str(charts.legend(chart))
    for html in (svg, table, legend):
        assert "<script>" not in html and "<b>" not in html
    assert table.count("<tr>") == 61  # a header and a row per minute
    assert "in all, at most 1 in one slot" in svg


def test_axes_scale_to_a_round_top() -> None:
    assert [charts.nice_ceiling(v) for v in (0, 0.3, 1, 7, 37, 100, 101, 4800)] == [
        1, 0.5, 1, 10, 50, 100, 200, 5000]
    assert charts.format_value(0.42, "ms") == "0.42 ms"
    assert charts.format_value(1234, "ms") == "1.2 s"
    assert charts.format_value(1234, "jobs") == "1,234"
    assert charts.slot_label(29_000_000, 10) == "21:20-21:30 UTC"
    day = WINDOWS["24h"]
    assert day.points * day.step_min == 24 * 60


def test_strips_hold_a_bar_per_minute_and_per_run() -> None:
    workers = str(sparklines.jobs_per_minute([0] * 58 + [4, 9], 29_000_059, "w"))
    assert workers.count('class="bar"') == 60 and 'data-value="9"' in workers
    assert "13 jobs in the last hour, at most 9 in a minute" in workers
    runs = [{"fired_at_ms": 1_740_000_000_000 + n, "lateness_ms": n * 10, "duration_ms": 5,
             "outcome": "failed" if n == 2 else "completed", "job_id": str(n)} for n in range(5)]
    strip = str(sparklines.lateness_strip(runs, "s"))
    assert strip.count('class="run completed"') == 4 and strip.count('class="run failed"') == 1
    assert 'fill="none"' in strip  # a failed run is hollow, not only red
    assert "started 20 ms late · failed after 5.0 ms" in strip
    assert sparklines.lateness_summary(runs) == (
        "last 5 run(s): median 20 ms late, worst 40 ms; 1 failed")
