"""The SVG charts: every marker where the axes say its reading belongs, ticks that make
sense, nothing the strict CSP would block, and the words a screen reader gets."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from healthspace.organiser import charts
from healthspace.organiser.charts import Band, Point, Series

NS = {"svg": "http://www.w3.org/2000/svg"}
LONDON = ZoneInfo("Europe/London")
T0 = datetime(2026, 3, 3, 8, 15, tzinfo=UTC)


def parse(svg) -> ET.Element:
    return ET.fromstring(str(svg))  # noqa: S314 (our own output)


def draw(series, bands=(), **kwargs) -> ET.Element:
    return parse(svg_text(series, bands, **kwargs))


def svg_text(series, bands=(), **kwargs) -> str:
    return str(
        charts.render(
            chart_id="c",
            title="Blood pressure over time",
            description=charts.summary(series, tz=LONDON, latest="128/82mmHg"),
            series=series,
            bands=bands,
            tz=LONDON,
            unit="mmHg",
            **kwargs,
        )
    )


def linear(pairs: list[tuple[float, float]]):
    """The axis as a function, from two of its ticks: (data value, SVG coordinate)."""
    (v1, p1), (v2, p2) = pairs[0], pairs[-1]
    return lambda v: p1 + (v - v1) * (p2 - p1) / (v2 - v1)


def y_axis(root):
    ticks = root.findall(".//svg:g[@class='hs-chart__y-axis']/svg:line", NS)
    return linear([(float(t.get("data-value")), float(t.get("y1"))) for t in ticks]), ticks


def x_axis(root):
    ticks = root.findall(".//svg:g[@class='hs-chart__x-axis']/svg:line", NS)
    pairs = [
        (datetime.fromisoformat(t.get("data-time")).timestamp(), float(t.get("x1"))) for t in ticks
    ]
    return linear(pairs), ticks


def markers(root) -> list[ET.Element]:
    return [e for e in root.iter() if e.get("class") == "hs-chart__point"]


def bp_series(n: int, *, step=timedelta(days=3)) -> list[Series]:
    sys = [Point(T0 + i * step, 120 + (i * 7) % 25, "") for i in range(n)]
    dia = [Point(T0 + i * step, 75 + (i * 3) % 12, "") for i in range(n)]
    return [Series("Systolic", tuple(sys)), Series("Diastolic", tuple(dia))]


@pytest.mark.parametrize("count", [1, 2, 12, 200])
def test_chart_svg_checked_for_the_plotted_points(count):
    """Each marker's coordinates, read back from the SVG, are where the axes put its data."""
    series = bp_series(count)
    root = draw(series, bands=[Band(90, 135, "Systolic target"), Band(60, 85, "Diastolic")])
    y_of, y_ticks = y_axis(root)
    x_of, x_ticks = x_axis(root)
    assert len(y_ticks) >= 3 and len(x_ticks) >= 2
    found = markers(root)
    assert len(found) == 2 * count
    expected = {(s.name, p.at.isoformat(), p.value) for s in series for p in s.points}
    seen = set()
    for marker in found:
        group = next(
            g for g in root.iter(f"{{{NS['svg']}}}g") if marker in list(g)
        )  # the series the marker belongs to
        at = datetime.fromisoformat(marker.get("data-time"))
        value = float(marker.get("data-value"))
        seen.add((group.get("data-series"), at.isoformat(), value))
        assert float(marker.get("data-cy")) == pytest.approx(y_of(value), abs=0.02)
        assert float(marker.get("data-cx")) == pytest.approx(x_of(at.timestamp()), abs=0.02)
        if marker.tag.endswith("circle"):
            assert (marker.get("cx"), marker.get("cy")) == (
                marker.get("data-cx"),
                marker.get("data-cy"),
            )
        else:  # squares: the rectangle is centred on the point
            assert float(marker.get("x")) + 4 == pytest.approx(
                float(marker.get("data-cx")), abs=0.01
            )
            assert float(marker.get("y")) + 4 == pytest.approx(
                float(marker.get("data-cy")), abs=0.01
            )
    assert seen == expected
    # every marker lies inside the plot area (between the outermost ticks)
    top = min(float(t.get("y1")) for t in y_ticks)
    bottom = max(float(t.get("y1")) for t in y_ticks)
    for marker in found:
        assert top <= float(marker.get("data-cy")) <= bottom


def test_the_lines_join_the_points_in_time_order():
    series = [
        Series(
            "Weight",
            (Point(T0 + timedelta(days=9), 71), Point(T0, 70), Point(T0 + timedelta(days=2), 72)),
        )
    ]
    root = draw(series)
    (line,) = root.findall(".//svg:polyline", NS)
    xs = [float(p.split(",")[0]) for p in line.get("points").split()]
    assert xs == sorted(xs)


def test_target_bands_span_their_values_on_the_axis():
    root = draw(bp_series(5), bands=[Band(90, 135, "Systolic target")])
    y_of, _ = y_axis(root)
    (band,) = [e for e in root.iter() if e.get("class") == "hs-chart__band"]
    assert float(band.get("y")) == pytest.approx(y_of(135), abs=0.02)
    assert float(band.get("y")) + float(band.get("height")) == pytest.approx(y_of(90), abs=0.02)
    assert (band.get("data-low"), band.get("data-high")) == ("90", "135")


def test_equal_values_get_an_axis_around_them():
    points = tuple(Point(T0 + timedelta(hours=i), 72) for i in range(4))
    root = draw([Series("Heart rate", points)])
    y_of, ticks = y_axis(root)
    values = [float(t.get("data-value")) for t in ticks]
    assert min(values) < 72 < max(values)
    for m in markers(root):
        assert float(m.get("data-cy")) == pytest.approx(y_of(72), abs=0.02)


def test_no_points_draws_an_empty_chart_that_says_so():
    root = draw([Series("Systolic", ())])
    assert markers(root) == []
    assert "No readings to show" in "".join(root.itertext())
    assert root.find("svg:desc", NS).text == "No readings to show."


def test_a_single_point_is_in_the_middle_of_a_day_either_side():
    root = draw([Series("Weight", (Point(T0, 70.5),))])
    _, ticks = x_axis(root)
    (marker,) = markers(root)
    left = float(root.find(".//svg:line[@x1]", NS).get("x1"))
    assert float(marker.get("data-cx")) > left
    assert len(ticks) >= 2


def test_no_style_attributes_no_scripts_no_external_references():
    svg = svg_text(bp_series(30), bands=[Band(90, 135, "target")])
    root = parse(svg)
    for element in root.iter():
        assert "style" not in element.attrib, element.tag
        assert not element.tag.endswith(("script", "style", "foreignObject", "image", "use"))
        assert not any(k.endswith("href") for k in element.attrib)
        assert not any(k.startswith("on") for k in element.attrib)


def test_the_output_is_deterministic():
    assert svg_text(bp_series(20)) == svg_text(bp_series(20))


def test_it_is_an_image_with_a_title_and_a_summary():
    root = draw(bp_series(12))
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "c-title c-desc"
    assert root.find("svg:title", NS).text == "Blood pressure over time"
    assert root.find("svg:desc", NS).text == (
        "12 readings from 3 March 2026 to 5 April 2026; latest 128/82mmHg."
    )


def test_text_is_escaped():
    series = [Series("<script>alert(1)</script>", (Point(T0, 1),))]
    svg = str(
        charts.render(
            chart_id='x" onload="y', title="<b>", description="&", series=series, tz=LONDON
        )
    )
    assert "<script>" not in svg and "<b>" not in svg and 'onload="y' not in svg
    parse(svg)  # still well-formed


@pytest.mark.parametrize(
    ("low", "high", "ticks"),
    [
        (62, 138, [60, 80, 100, 120, 140]),
        (0.6, 9.7, [0, 2, 4, 6, 8, 10]),
        (70.2, 71.9, [70, 70.5, 71, 71.5, 72]),
        (72, 72, [60, 65, 70, 75, 80]),  # equal values: a band around them
        (150, 620, [100, 200, 300, 400, 500, 600, 700]),
    ],
)
def test_value_ticks_are_nice(low, high, ticks):
    assert charts.value_ticks(low, high, count=5) == ticks


@pytest.mark.parametrize(
    ("span", "first_label"),
    [
        (timedelta(hours=10), "3 Mar 09:00"),  # hours, the first labelled with its day
        (timedelta(days=5), "4 Mar 2026"),  # days
        (timedelta(days=30), "9 Mar 2026"),  # weeks, on Mondays
        (timedelta(days=200), "Mar 2026"),  # months
        (timedelta(days=3000), "2026"),  # years
    ],
)
def test_time_ticks_fall_on_whole_hours_days_mondays_months_or_years(span, first_label):
    root = draw([Series("x", (Point(T0, 1), Point(T0 + span, 2)))])
    _, ticks = x_axis(root)
    labels = root.findall(".//svg:g[@class='hs-chart__x-axis']/svg:text", NS)
    assert labels[0].text == first_label
    moments = [datetime.fromisoformat(t.get("data-time")).astimezone(LONDON) for t in ticks]
    assert all(m.minute == 0 and m.second == 0 for m in moments)
    if span >= timedelta(days=1):
        assert all(m.hour == 0 for m in moments)
    if timedelta(days=20) < span < timedelta(days=60):
        assert all(m.weekday() == 0 for m in moments)
    if span > timedelta(days=100):
        assert all(m.day == 1 for m in moments)


def test_ticks_across_the_clocks_going_forward_stay_on_local_midnight():
    start = datetime(2026, 3, 26, 12, tzinfo=UTC)  # British Summer Time starts on the 29th
    root = draw([Series("x", (Point(start, 1), Point(start + timedelta(days=6), 2)))])
    _, ticks = x_axis(root)
    local = [datetime.fromisoformat(t.get("data-time")).astimezone(LONDON) for t in ticks]
    assert all(m.hour == 0 for m in local)
    assert local == sorted(local) and len(local) == len(set(local))
    assert {m.utcoffset() for m in local} == {timedelta(0), timedelta(hours=1)}
