"""From readings to what a page shows: charts (with their words), table rows, advice.
Pure: takes the selectors' views, returns plain values and safe SVG markup."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo

from markupsafe import Markup

from healthspace.organiser import charts
from healthspace.organiser import values as V
from healthspace.organiser.measures import (
    BMI_SOURCES,
    BMI_TARGET,
    GENERAL_TARGETS_NOTE,
    INFO,
    Measure,
)
from healthspace.organiser.selectors import ReadingView

MEASURE_ORDER = (
    Measure.BLOOD_PRESSURE,
    Measure.WEIGHT,
    Measure.HEIGHT,
    Measure.PEAK_FLOW,
    Measure.BLOOD_GLUCOSE,
    Measure.HEART_RATE,
)


@dataclass(frozen=True)
class TableRow:
    when: str  # ISO, for <time>
    when_text: str
    values: tuple[str, ...]  # one per column


@dataclass(frozen=True)
class Chart:
    svg: Markup
    title: str
    caption: str  # the table's caption
    columns: tuple[str, ...]  # value columns of the table alternative
    rows: tuple[TableRow, ...]
    sources: tuple[str, ...]
    has_targets: bool
    note: str = GENERAL_TARGETS_NOTE


def _fmt(value: float) -> str:
    return f"{value:g}"


def reading_chart(
    measure: Measure,
    readings: Sequence[ReadingView],
    *,
    tz: tzinfo,
    chart_id: str,
    small: bool = False,
) -> Chart:
    """The chart of one measure (newest reading first in ``readings``) and its table."""
    spec = INFO[measure]
    latest_unit = readings[0].unit if readings else None
    unit = V.chart_unit(measure, latest_unit)
    ordered = sorted(readings, key=lambda r: r.taken_at)
    keys = [(key, label) for key, label, _code in spec.components]
    series = []
    for key, label in keys:
        points = []
        for r in ordered:
            value = V.in_chart_unit(measure, r.values, unit)[key]
            points.append(charts.Point(r.taken_at, value, f"{_fmt(value)} {unit}"))
        series.append(charts.Series(label, tuple(points)))
    bands = []
    for target in spec.targets:
        low = V.target_in_chart_unit(measure, target.low, unit)
        high = V.target_in_chart_unit(measure, target.high, unit)
        label = target.label
        if unit != spec.canonical_unit:
            label = f"{label.split(':')[0]}: {_fmt(low)} to {_fmt(high)}{unit}"
        bands.append(charts.Band(low, high, label))
    latest = readings[0].text if readings else ""
    description = charts.summary(series, tz=tz, latest=latest)
    svg = charts.render(
        chart_id=chart_id,
        title=f"{spec.title} over time",
        description=description,
        series=series,
        bands=bands,
        tz=tz,
        unit=unit,
        width=420 if small else 640,
        height=200 if small else 280,
        font_size=13 if small else 16,
    )
    columns = tuple(f"{label} ({unit})" for _key, label in keys)
    rows = tuple(
        TableRow(
            r.taken_at.isoformat(),
            charts.when_text(r.taken_at, tz),
            tuple(_fmt(p.value) for p in (s.points[i] for s in series)),
        )
        for i, r in enumerate(ordered)
    )
    return Chart(
        svg=svg,
        title=spec.title,
        caption=f"{spec.title} readings shown in the chart, oldest first",
        columns=columns,
        rows=rows,
        sources=spec.sources,
        has_targets=bool(bands),
    )


def bmi_chart(
    weights: Sequence[ReadingView], *, tz: tzinfo, chart_id: str, small: bool = False
) -> Chart | None:
    """BMI of every weight (from the latest height); None without a height."""
    with_bmi = sorted((w for w in weights if w.bmi is not None), key=lambda w: w.taken_at)
    if not with_bmi:
        return None
    points = tuple(charts.Point(w.taken_at, w.bmi, f"BMI {_fmt(w.bmi)}") for w in with_bmi)
    series = [charts.Series("BMI", points)]
    band = charts.Band(BMI_TARGET.low, BMI_TARGET.high, BMI_TARGET.label)
    svg = charts.render(
        chart_id=chart_id,
        title="Body mass index (BMI) over time",
        description=charts.summary(series, tz=tz, latest=f"BMI {_fmt(with_bmi[-1].bmi)}"),
        series=series,
        bands=[band],
        tz=tz,
        unit="BMI",
        width=420 if small else 640,
        height=200 if small else 280,
        font_size=13 if small else 16,
    )
    rows = tuple(
        TableRow(w.taken_at.isoformat(), charts.when_text(w.taken_at, tz), (_fmt(w.bmi),))
        for w in with_bmi
    )
    return Chart(
        svg=svg,
        title="Body mass index (BMI)",
        caption="BMI worked out from each weight and your latest height, oldest first",
        columns=("BMI",),
        rows=rows,
        sources=BMI_SOURCES,
        has_targets=True,
    )


# --- advice shown with a reading ------------------------------------------------------


def advice_for(reading: ReadingView | None) -> str:
    """Words for a reading that needs acting on (very high or low): "" for the rest."""
    if reading is None:
        return ""
    if reading.measure == Measure.BLOOD_PRESSURE:
        sys, dia = reading.values["systolic"], reading.values["diastolic"]
        if sys >= 180 or dia >= 120:
            return "very-high-bp"
        if sys < 90 or dia < 60:
            return "low-bp"
    if reading.measure == Measure.BLOOD_GLUCOSE and reading.values["mmol_l"] < 4:
        return "low-glucose"
    return ""
