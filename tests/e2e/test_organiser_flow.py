"""End-to-end: a patient in a real browser adds a blood pressure reading (after a typing
mistake the form explains), sees it on the chart and in the table, and shares it with their
care team; it then shows in their Summary Care Record as added by them. axe-core (WCAG 2.2
AA) on every page of the journey; the chart page also loads under the real CSP."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_pages import demo_patient, describe, log_in  # noqa: F401 (fixture)

try:
    from playwright.sync_api import expect
except ImportError:  # conftest.py skips these tests (fails them in CI) without Playwright
    expect = None

pytestmark = pytest.mark.e2e

SERIOUS = ("serious", "critical")


def test_patient_adds_a_blood_pressure_reading_sees_it_charted_and_shares_it(
    page: Any,
    axe,
    demo_patient,  # noqa: F811
):
    found: dict[str, list[dict[str, Any]]] = {}
    log_in(page, demo_patient.email, demo_patient.password)
    page.wait_for_url("**/record/")

    page.goto("/organiser/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your health organiser")
    found["overview"] = axe(page)

    page.goto("/organiser/readings/blood-pressure/")
    found["measure (empty)"] = axe(page)
    page.get_by_role("button", name="Add a blood pressure reading").click()
    page.wait_for_url("**/readings/blood-pressure/add/")
    expect(page.locator("#taken-day")).not_to_have_value("")  # today, filled in
    page.locator("#id_systolic").fill("400")
    page.locator("#id_diastolic").fill("20")
    page.get_by_role("button", name="Save reading").click()
    summary = page.locator(".nhsuk-error-summary")
    expect(summary).to_contain_text("Systolic (top number) must be between 50mmHg and 300mmHg")
    expect(summary).to_be_focused()
    found["form with errors"] = axe(page)

    page.locator("#id_systolic").fill("128")
    page.locator("#id_diastolic").fill("82")
    page.locator("#id_note").fill("Morning, left arm")
    page.get_by_role("button", name="Save reading").click()
    page.wait_for_url("**/readings/blood-pressure/?saved=*")
    expect(page.get_by_role("status").first).to_contain_text("128/82mmHg")

    chart = page.get_by_role("img", name="Blood pressure over time")
    expect(chart).to_be_visible()
    expect(chart.locator("desc")).to_contain_text("latest 128/82mmHg")
    expect(chart.locator(".hs-chart__point")).to_have_count(2)
    page.get_by_text("Show blood pressure as a table").click()
    alternative = page.get_by_role("table", name="Blood pressure readings shown in the chart")
    expect(alternative).to_contain_text("128")
    readings = page.locator("#readings + table")
    expect(readings).to_contain_text("128/82mmHg")
    expect(readings).to_contain_text("Morning, left arm")
    found["measure"] = axe(page)

    page.get_by_role("link", name="Choose blood pressure readings to share").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Share blood pressure readings with your care team"
    )
    found["share"] = axe(page)
    page.get_by_role("checkbox", name="128/82mmHg").check()
    page.get_by_role("button", name="Save sharing choices").click()
    page.wait_for_url("**/readings/blood-pressure/?shared=1*")
    expect(page.locator("#readings + table")).to_contain_text("Shared")

    page.goto("/record/")
    results = page.get_by_role("region", name="Test results and observations", exact=True)
    expect(results).to_contain_text("Added by you")
    expect(results).to_contain_text("Systolic: 128 mmHg")
    found["record"] = axe(page)

    serious = {
        name: [v for v in found_violations if v["impact"] in SERIOUS]
        for name, found_violations in found.items()
    }
    report = "\n".join(f"[{name}]\n{describe(v)}" for name, v in serious.items() if v)
    assert not report, report


def test_the_chart_page_loads_under_the_strict_csp(strict_context: Any, demo_patient):  # noqa: F811
    from datetime import timedelta

    from django.contrib.auth import get_user_model

    from healthspace.accounts.actors import actor_for_user
    from healthspace.core.clock import now
    from healthspace.organiser import services
    from healthspace.organiser.measures import Measure

    user = get_user_model().objects.get(username=demo_patient.email)
    for day in range(5):
        services.reading_add(
            actor=actor_for_user(user),
            owner_id=user.pk,
            measure=Measure.BLOOD_PRESSURE,
            taken_at=now() - timedelta(days=day),
            values={"systolic": 120 + day, "diastolic": 80},
            entered={"unit": "mmHg"},
        )
    page = strict_context.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    log_in(page, demo_patient.email, demo_patient.password)
    page.wait_for_url("**/record/")
    page.goto("/organiser/readings/blood-pressure/")
    expect(
        page.get_by_role("img", name="Blood pressure over time").locator(".hs-chart__point")
    ).to_have_count(10)
    page.screenshot(path="/tmp/organiser-bp.png", full_page=True)
    assert problems == []
