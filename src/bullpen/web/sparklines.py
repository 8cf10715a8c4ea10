"""Small inline SVG strips: a worker's jobs per minute, a schedule's lateness per run; each bar
titled with its numbers (hover), each strip summed up in words beside it."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup, escape

from bullpen.runtime.series import MINUTE_MS
from bullpen.web.charts import format_value, nice_ceiling, slot_label

BAR_W, GAP, STRIP_H = 3.0, 1.0, 28


def _svg(dom_id: str, bars: int, label: str, body: list[str]) -> Markup:
    width = bars * (BAR_W + GAP)
    return Markup(f'<svg id="{escape(dom_id)}" class="strip" viewBox="0 0 {width:g} {STRIP_H}" '
                  f'width="{width:g}" height="{STRIP_H}" role="img" '
                  f'aria-label="{escape(label)}">{"".join(body)}'
                  f'<line x1="0" x2="{width:g}" y1="{STRIP_H - 0.5}" y2="{STRIP_H - 0.5}" '
                  'stroke="#98a2b3"/></svg>')


def jobs_per_minute(counts: list[int], end_minute: int, dom_id: str) -> Markup:
    """Bars for the minutes ending with `end_minute` (oldest first), one per minute."""
    top = nice_ceiling(max(counts, default=0))
    body = []
    for index, count in enumerate(counts):
        minute = end_minute - len(counts) + 1 + index
        height = (STRIP_H - 2) * count / top
        body.append(f'<rect class="bar" x="{index * (BAR_W + GAP):g}" '
                    f'y="{STRIP_H - height:.1f}" width="{BAR_W:g}" height="{height:.1f}" '
                    f'fill="#3558d4" data-value="{count}"><title>'
                    f'{escape(slot_label(minute, 1))}: {count:,} job(s)</title></rect>')
    return _svg(dom_id, len(counts), jobs_summary(counts), body)


def jobs_summary(counts: list[int]) -> str:
    if not any(counts):
        return "no jobs in the last hour"
    return f"{sum(counts):,} jobs in the last hour, at most {max(counts):,} in a minute"


def _run_title(run: dict[str, Any]) -> str:
    fired = datetime.fromtimestamp(run.get("fired_at_ms", 0) / 1000, tz=UTC)
    return (f"fired {fired:%Y-%m-%d %H:%M:%S} UTC · started "
            f"{format_value(run.get('lateness_ms', 0), 'ms')} late · {run.get('outcome')} "
            f"after {format_value(run.get('duration_ms', 0), 'ms')}")


def lateness_strip(runs: list[dict[str, Any]], dom_id: str) -> Markup:
    """A bar per run (oldest first), height on a log scale of its lateness (full height: a
    second, or the worst run if later); a failed run is a hollow bar, so outcome does not rest
    on colour."""
    worst = max((max(0, int(run.get("lateness_ms", 0))) for run in runs), default=0)
    scale = math.log10(1 + max(worst, 1000))
    body = []
    for index, run in enumerate(runs):
        late = max(0, int(run.get("lateness_ms", 0)))
        height = 3 + (STRIP_H - 5) * math.log10(1 + late) / scale
        failed = run.get("outcome") != "completed"
        paint = ('fill="none" stroke="#b42318" stroke-width="1"' if failed else
                 'fill="#16794c"')
        body.append(f'<rect class="run {"failed" if failed else "completed"}" '
                    f'x="{index * (BAR_W + GAP) + 0.5:g}" y="{STRIP_H - height:.1f}" '
                    f'width="{BAR_W - 1:g}" height="{height - 0.5:.1f}" {paint} '
                    f'data-value="{late}"><title>{escape(_run_title(run))}</title></rect>')
    return _svg(dom_id, max(len(runs), 1), lateness_summary(runs), body)


def lateness_summary(runs: list[dict[str, Any]]) -> str:
    if not runs:
        return "no runs recorded yet"
    lateness = sorted(max(0, int(run.get("lateness_ms", 0))) for run in runs)
    failed = sum(run.get("outcome") != "completed" for run in runs)
    median = lateness[len(lateness) // 2]
    return (f"last {len(runs)} run(s): median {format_value(median, 'ms')} late, worst "
            f"{format_value(lateness[-1], 'ms')}; {failed} failed")


def end_minute_of(last_seen_s: float) -> int:
    return int(last_seen_s * 1000) // MINUTE_MS
