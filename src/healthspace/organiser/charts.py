"""Line charts as SVG, drawn on the server.

Pure Python, no JavaScript and no ``style`` attributes: presentation attributes only, so
a chart passes the strict Content-Security-Policy (``style-src 'self'``), prints, and needs
nothing from outside. The output is deterministic (same data, same bytes), which the
tests rely on.

A chart has a time axis (ticks at whole hours, days, weeks, months or years), a value axis
with "nice" ticks (1, 2, 2.5 or 5 times a power of ten), one line with point markers per
series (each series a different colour, marker shape and dash, so colour is never the only
difference), optional target bands and a legend. The ``<svg>`` has ``role="img"`` and is
labelled by its ``<title>`` and ``<desc>``; pages put the same points in a table beside it.

Ticks carry ``data-value`` / ``data-time`` and markers ``data-value`` / ``data-time`` so that
a test (or an integrator) can check every marker against the axes.

Why not a library: pygal writes ``<style>`` elements and scripts, matplotlib ``style=``
attributes; both are blocked by the CSP, and both are large for what is needed here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from html import escape

from markupsafe import Markup

TEXT = "#212b32"  # NHS.UK text colour
SECONDARY = "#4c6272"  # NHS.UK secondary text
GRID = "#d8dde0"  # NHS.UK grey 4
AXIS = "#768692"  # NHS.UK grey 1 (3:1 against white)
# Series: NHS blue, solid line, circles; dark pink, dashed line, squares; then others.
SERIES_STYLES = (
    ("#005eb8", "circle", None),
    ("#ae2573", "square", "6 4"),
    ("#007f3b", "diamond", "2 3"),
    ("#330072", "triangle", "8 3 2 3"),
)
BAND_COLOURS = ("#007f3b", "#41b6e6", "#ffb81c")
BAND_OPACITY = "0.14"
FONT = "Frutiger W01, Arial, sans-serif"


@dataclass(frozen=True)
class Point:
    at: datetime  # aware
    value: float
    text: str = ""  # how the value is said in the marker's tooltip ("128mmHg")


@dataclass(frozen=True)
class Series:
    name: str
    points: tuple[Point, ...]


@dataclass(frozen=True)
class Band:
    low: float
    high: float
    label: str


@dataclass(frozen=True)
class Tick:
    position: float  # SVG coordinate
    label: str


def _num(value: float) -> str:
    """An SVG number: at most 2 decimals, no trailing zeros, no "-0"."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _value_text(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.10g}"


# --- value axis -----------------------------------------------------------------------


def nice_step(span: float, count: int) -> float:
    """A step of 1, 2, 2.5 or 5 times a power of ten giving about ``count`` intervals."""
    if span <= 0:
        return 1.0
    raw = span / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power * (1 + 1e-9):
            return factor * power
    return 10 * power  # pragma: no cover - the loop always returns


def value_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Nice ticks covering [low, high]; equal values get a band around them."""
    if high < low:
        low, high = high, low
    if math.isclose(low, high):
        pad = max(abs(low) * 0.1, 1.0)
        low, high = low - pad, high + pad
    step = nice_step(high - low, count)
    first = math.floor(low / step + 1e-9) * step
    last = math.ceil(high / step - 1e-9) * step
    ticks = []
    n = round((last - first) / step)
    for i in range(n + 1):
        ticks.append(round(first + i * step, 10))
    return ticks


# --- time axis ------------------------------------------------------------------------

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# (kind, size): candidate tick intervals, smallest first
INTERVALS: tuple[tuple[str, int], ...] = (
    ("hour", 1),
    ("hour", 3),
    ("hour", 6),
    ("hour", 12),
    ("day", 1),
    ("day", 2),
    ("week", 1),
    ("week", 2),
    ("month", 1),
    ("month", 2),
    ("month", 3),
    ("month", 6),
    ("year", 1),
    ("year", 2),
    ("year", 5),
    ("year", 10),
)
_APPROX = {"hour": HOUR, "day": DAY, "week": 7 * DAY, "month": 30.44 * DAY, "year": 365.25 * DAY}


def _floor(moment: datetime, kind: str, size: int) -> datetime:
    if kind == "hour":
        return moment.replace(
            minute=0, second=0, microsecond=0, hour=moment.hour - moment.hour % size
        )
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if kind == "day":
        return day
    if kind == "week":
        return day - timedelta(days=day.weekday())  # Mondays
    if kind == "month":
        month0 = (day.month - 1) - (day.month - 1) % size
        return day.replace(month=month0 + 1, day=1)
    return day.replace(month=1, day=1, year=day.year - day.year % size)


def _next(moment: datetime, kind: str, size: int, tz: tzinfo) -> datetime:
    if kind in ("hour", "day", "week"):
        step = {"hour": HOUR, "day": DAY, "week": 7 * DAY}[kind] * size
        if kind == "hour":
            # hours are counted in real time (across clock changes)
            return (moment.astimezone(UTC) + step).astimezone(tz)
        local = moment.replace(tzinfo=None) + step
        return local.replace(tzinfo=tz)
    if kind == "month":
        months = moment.month - 1 + size
        return moment.replace(year=moment.year + months // 12, month=months % 12 + 1)
    return moment.replace(year=moment.year + size)


def _label(moment: datetime, kind: str, previous: datetime | None) -> str:
    if kind == "hour":
        if previous is None or previous.date() != moment.date():
            return f"{moment.day} {moment:%b} {moment:%H:%M}"
        return f"{moment:%H:%M}"
    if kind in ("day", "week"):
        if previous is None or previous.year != moment.year:
            return f"{moment.day} {moment:%b %Y}"
        return f"{moment.day} {moment:%b}"
    if kind == "month":
        if previous is None or previous.year != moment.year:
            return f"{moment:%b %Y}"
        return f"{moment:%b}"
    return f"{moment:%Y}"


def time_ticks(start: datetime, end: datetime, tz: tzinfo, most: int = 6) -> list[datetime]:
    """Tick moments inside [start, end] at whole hours, days, Mondays, months or years,
    the smallest interval that gives at most ``most`` ticks."""
    span = end - start
    kind, size = INTERVALS[-1]
    for kind, size in INTERVALS:
        if span / (_APPROX[kind] * size) <= most:
            break
    local_start = start.astimezone(tz)
    moment = _floor(local_start, kind, size)
    ticks = []
    while moment <= end:
        if moment >= start:
            ticks.append(moment)
        moment = _next(moment, kind, size, tz)
    return ticks


def _tick_kind(start: datetime, end: datetime, most: int) -> str:
    span = end - start
    for kind, size in INTERVALS:
        if span / (_APPROX[kind] * size) <= most:
            return kind
    return "year"


# --- the chart ------------------------------------------------------------------------


def _marker(
    shape: str, x: float, y: float, colour: str, attrs: str, tip: str, css: str = "hs-chart__point"
) -> str:
    title = f"<title>{escape(tip)}</title>" if tip else ""
    common = f'fill="{colour}" stroke="#ffffff" stroke-width="1" class="{css}" {attrs}'
    if shape == "square":
        return (
            f'<rect x="{_num(x - 4)}" y="{_num(y - 4)}" width="8" height="8" '
            f'data-cx="{_num(x)}" data-cy="{_num(y)}" {common}>{title}</rect>'
        )
    if shape == "diamond":
        pts = f"{_num(x)},{_num(y - 5)} {_num(x + 5)},{_num(y)} {_num(x)},{_num(y + 5)} {_num(x - 5)},{_num(y)}"
        return (
            f'<polygon points="{pts}" data-cx="{_num(x)}" data-cy="{_num(y)}" {common}>'
            f"{title}</polygon>"
        )
    if shape == "triangle":
        pts = f"{_num(x)},{_num(y - 5)} {_num(x + 5)},{_num(y + 4)} {_num(x - 5)},{_num(y + 4)}"
        return (
            f'<polygon points="{pts}" data-cx="{_num(x)}" data-cy="{_num(y)}" {common}>'
            f"{title}</polygon>"
        )
    return (
        f'<circle cx="{_num(x)}" cy="{_num(y)}" r="4.5" data-cx="{_num(x)}" '
        f'data-cy="{_num(y)}" {common}>{title}</circle>'
    )


def when_text(moment: datetime, tz: tzinfo) -> str:
    local = moment.astimezone(tz)
    return f"{local.day} {local:%B %Y} {local:%H:%M}"


def day_text(moment: datetime, tz: tzinfo) -> str:
    local = moment.astimezone(tz)
    return f"{local.day} {local:%B %Y}"


def summary(series: Sequence[Series], *, tz: tzinfo, latest: str = "") -> str:
    """The chart's <desc>: how many readings, over which dates, and the latest."""
    moments = sorted({p.at for s in series for p in s.points})
    if not moments:
        return "No readings to show."
    count = len(moments)
    noun = "reading" if count == 1 else "readings"
    if count == 1:
        text = f"1 reading on {day_text(moments[0], tz)}"
    elif day_text(moments[0], tz) == day_text(moments[-1], tz):
        text = f"{count} {noun} on {day_text(moments[0], tz)}"
    else:
        text = f"{count} {noun} from {day_text(moments[0], tz)} to {day_text(moments[-1], tz)}"
    return f"{text}; latest {latest}." if latest else f"{text}."


def render(
    *,
    chart_id: str,
    title: str,
    description: str,
    series: Sequence[Series],
    tz: tzinfo,
    unit: str = "",
    bands: Sequence[Band] = (),
    width: int = 640,
    height: int = 280,
    font_size: int = 13,
) -> Markup:
    """One chart as an inline ``<svg>`` element (safe markup: every text is escaped)."""
    left, right, bottom = 8 + font_size * 4, font_size * 2, font_size * 2 + 14
    top = font_size * 2 if unit else 14  # room for the unit above the value axis
    legend_items = [(s.name, "series", i) for i, s in enumerate(series) if s.points] + [
        (b.label, "band", i) for i, b in enumerate(bands)
    ]
    row = font_size + 10
    legend_height = row * len(legend_items) + (6 if legend_items else 0)
    total_height = height + legend_height
    plot_w, plot_h = width - left - right, height - top - bottom
    ident = escape(chart_id)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {total_height}" '
        f'width="100%" role="img" aria-labelledby="{ident}-title {ident}-desc" '
        f'focusable="false" class="hs-chart" font-family="{FONT}" font-size="{font_size}" '
        f'id="{ident}">',
        f'<title id="{ident}-title">{escape(title)}</title>',
        f'<desc id="{ident}-desc">{escape(description)}</desc>',
    ]
    points = [p for s in series for p in s.points]
    if not points:
        out.append(
            f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#f0f4f5" />'
            f'<text x="{_num(left + plot_w / 2)}" y="{_num(top + plot_h / 2)}" '
            f'text-anchor="middle" fill="{SECONDARY}">No readings to show</text></svg>'
        )
        return Markup("".join(out))  # noqa: S704 (every text in it was escaped)

    # value axis: the data and the bands, on nice ticks
    values = [p.value for p in points] + [v for b in bands for v in (b.low, b.high)]
    ticks = value_ticks(min(values), max(values), count=max(3, plot_h // 55))
    y_low, y_high = ticks[0], ticks[-1]

    def y_of(value: float) -> float:
        return top + plot_h - (value - y_low) / (y_high - y_low) * plot_h

    # time axis: the readings' span, padded so no marker sits on the edge
    first, last = min(p.at for p in points), max(p.at for p in points)
    if last - first < HOUR:
        first, last = first - 12 * HOUR, last + 12 * HOUR
    pad = (last - first) * 0.04
    start, end = first - pad, last + pad
    span = (end - start).total_seconds()

    def x_of(moment: datetime) -> float:
        return left + (moment - start).total_seconds() / span * plot_w

    # target bands, under everything else
    for i, band in enumerate(bands):
        y1, y2 = y_of(max(band.low, band.high)), y_of(min(band.low, band.high))
        colour = BAND_COLOURS[i % len(BAND_COLOURS)]
        out.append(
            f'<rect class="hs-chart__band" x="{left}" y="{_num(y1)}" width="{plot_w}" '
            f'height="{_num(y2 - y1)}" fill="{colour}" fill-opacity="{BAND_OPACITY}" '
            f'data-low="{_value_text(band.low)}" data-high="{_value_text(band.high)}" />'
        )
    # value ticks and grid
    out.append('<g class="hs-chart__y-axis">')
    for value in ticks:
        y = _num(y_of(value))
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y}" y2="{y}" stroke="{GRID}" '
            f'stroke-width="1" data-value="{_value_text(value)}" />'
            f'<text x="{left - 6}" y="{y}" dy="0.35em" text-anchor="end" '
            f'fill="{SECONDARY}">{escape(_value_text(value))}</text>'
        )
    if unit:
        out.append(
            f'<text x="4" y="{top - font_size}" text-anchor="start" '
            f'fill="{SECONDARY}" font-size="{font_size - 1}">{escape(unit)}</text>'
        )
    out.append("</g>")
    # time ticks
    most = max(2, plot_w // (font_size * 7))
    kind = _tick_kind(start, end, most)
    out.append('<g class="hs-chart__x-axis">')
    previous = None
    axis_y = top + plot_h
    for moment in time_ticks(start, end, tz, most=most):
        x = _num(x_of(moment))
        out.append(
            f'<line x1="{x}" x2="{x}" y1="{axis_y}" y2="{axis_y + 5}" stroke="{AXIS}" '
            f'stroke-width="1" data-time="{moment.astimezone(UTC).isoformat()}" />'
            f'<text x="{x}" y="{axis_y + 8 + font_size}" text-anchor="middle" '
            f'fill="{SECONDARY}">{escape(_label(moment, kind, previous))}</text>'
        )
        previous = moment
    out.append("</g>")
    out.append(
        f'<line x1="{left}" x2="{left + plot_w}" y1="{axis_y}" y2="{axis_y}" '
        f'stroke="{AXIS}" stroke-width="1" />'
        f'<line x1="{left}" x2="{left}" y1="{top}" y2="{axis_y}" stroke="{AXIS}" '
        f'stroke-width="1" />'
    )
    # series: line first, then markers on top
    for i, s in enumerate(series):
        if not s.points:
            continue
        colour, shape, dash = SERIES_STYLES[i % len(SERIES_STYLES)]
        ordered = sorted(s.points, key=lambda p: p.at)
        out.append(f'<g class="hs-chart__series" data-series="{escape(s.name)}">')
        if len(ordered) > 1:
            coords = " ".join(f"{_num(x_of(p.at))},{_num(y_of(p.value))}" for p in ordered)
            dashed = f' stroke-dasharray="{dash}"' if dash else ""
            out.append(
                f'<polyline points="{coords}" fill="none" stroke="{colour}" '
                f'stroke-width="2" stroke-linejoin="round"{dashed} />'
            )
        for p in ordered:
            attrs = (
                f'data-time="{p.at.astimezone(UTC).isoformat()}" '
                f'data-value="{_value_text(p.value)}"'
            )
            tip = f"{s.name}, {when_text(p.at, tz)}: {p.text or _value_text(p.value)}"
            out.append(_marker(shape, x_of(p.at), y_of(p.value), colour, attrs, tip))
        out.append("</g>")
    # legend, below the time axis
    out.append('<g class="hs-chart__legend">')
    y = height + 4
    for label, kind_, i in legend_items:
        cy = y + row / 2
        if kind_ == "series":
            colour, shape, dash = SERIES_STYLES[i % len(SERIES_STYLES)]
            dashed = f' stroke-dasharray="{dash}"' if dash else ""
            out.append(
                f'<line x1="{left}" x2="{left + 28}" y1="{_num(cy)}" y2="{_num(cy)}" '
                f'stroke="{colour}" stroke-width="2"{dashed} />'
            )
            out.append(_marker(shape, left + 14, cy, colour, "", "", css="hs-chart__legend-marker"))
        else:
            colour = BAND_COLOURS[i % len(BAND_COLOURS)]
            out.append(
                f'<rect x="{left}" y="{_num(cy - 7)}" width="28" height="14" fill="{colour}" '
                f'fill-opacity="0.3" stroke="{colour}" stroke-width="1" />'
            )
        out.append(
            f'<text x="{left + 36}" y="{_num(cy)}" dy="0.35em" fill="{TEXT}">{escape(label)}</text>'
        )
        y += row
    out.append("</g></svg>")
    return Markup("".join(out))  # noqa: S704 (every text in it was escaped)


def local_date(moment: datetime, tz: tzinfo) -> date:
    return moment.astimezone(tz).date()
