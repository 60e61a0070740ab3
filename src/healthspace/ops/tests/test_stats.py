"""Usage statistics (issue 9): figures counted from audit events made through the real
services, small-number suppression, no identifiers anywhere in the output, the month
filter, cost per view, and a constant number of indexed queries whatever the volume."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from healthspace.access.actors import Actor
from healthspace.access.context import Permission
from healthspace.accounts.actors import actor_for_user
from healthspace.accounts.linkage.services import patient_link_in_person
from healthspace.accounts.models import Account, PatientLink
from healthspace.accounts.sessions.testing import signed_in_client
from healthspace.audit.models import AuditEvent
from healthspace.audit.services import audit_record
from healthspace.audit.verify import verify_database
from healthspace.core.nhs_numbers import format_spaced
from healthspace.ops import stats
from healthspace.ops.demo import ensure_demo_logins
from healthspace.ops.models import MonthlyUsage
from healthspace.records.models import Patient
from healthspace.staff import selectors as staff_selectors
from healthspace.staff import services as staff_services
from healthspace.staff.testing import make_staff_user

pytestmark = pytest.mark.django_db

OCTOBER = date(2026, 10, 1)
NOVEMBER = date(2026, 11, 1)


def at(day: int, month: int = 10, hour: int = 12) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def staff_view(
    user, patient_id, *, emergency: bool = False, answer=Permission.GIVEN, session: str = "s1"
):
    """A member of staff looks at a record the way the staff pages do."""
    actor = actor_for_user(user)
    context = staff_selectors.access_context_for(
        actor=actor, user_id=user.pk, session_key_hash=session, patient_id=patient_id
    )
    if emergency:
        staff_services.emergency_access_record(
            actor=actor,
            user_id=user.pk,
            session_key_hash=session,
            patient_id=patient_id,
            context=context,
            explanation="Unconscious in A&E, allergies needed",
        )
    else:
        staff_services.permission_record(
            actor=actor,
            user_id=user.pk,
            session_key_hash=session,
            patient_id=patient_id,
            context=context,
            answer=answer,
        )
        if answer != Permission.GIVEN:
            return
    context = staff_selectors.access_context_for(
        actor=actor, user_id=user.pk, session_key_hash=session, patient_id=patient_id
    )
    staff_services.staff_scr_view(actor=actor, patient_id=patient_id, context=context)


@pytest.fixture
def october(synthetic_patients, settings):
    """A month of use: two patients linked earlier, one registering in person and one
    online in October, patients viewing their record on the web, staff of a GP practice
    and of a trust looking (with permission, refused, in an emergency)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    with time_machine.travel(at(1, 9), tick=False):
        ensure_demo_logins(count=2)
    links = list(
        PatientLink.objects.select_related("user", "patient__registered_practice").order_by(
            "user__username"
        )
    )
    first, second = links
    third = Patient.objects.exclude(pk__in=[first.patient_id, second.patient_id]).get()
    newcomer = get_user_model().objects.create(username="newcomer@example.test")
    Account.objects.create(user=newcomer, kind=Account.Kind.PATIENT, email_confirmed_at=at(1))
    basic = get_user_model().objects.create(username="basic@example.test")
    Account.objects.create(user=basic, kind=Account.Kind.PATIENT)
    gp = make_staff_user(
        "clinician", ods=first.patient.registered_practice.ods_code, username="gp@example.nhs.uk"
    )
    trust = make_staff_user("clinician", ods="RR801", username="ae@example.nhs.uk")
    practice = third.registered_practice.ods_code
    clerk = make_staff_user("registration-clerk", ods=practice, username="clerk@example.nhs.uk")
    operator = make_staff_user("operator", ods="X26", username="ops@example.nhs.uk")

    # the first patient's online linkage: written as linkage_key_redeem writes it (the real
    # redemption needs an Argon2 key and a letter; accounts/linkage tests cover it)
    with time_machine.travel(at(2), tick=False), transaction.atomic():
        audit_record(
            actor=actor_for_user(first.user),
            action="linkage.verify",
            patient_id=first.patient_id,
            outcome="success",
            reason="linkage-details-matched",
            detail={"account_id": "TESTACCOUNT"},
        )
    with time_machine.travel(at(3), tick=False):
        patient_link_in_person(
            actor=actor_for_user(clerk),
            actor_ods=practice,
            email="newcomer@example.test",
            nhs_number=third.nhs_number,
        )
    visits = [(5, first.user), (6, first.user), (20, first.user), (9, second.user)]
    for day, user in [*visits, (7, newcomer)]:
        with time_machine.travel(at(day), tick=False):
            assert signed_in_client(user).get("/record/").status_code == 200
    with time_machine.travel(at(10), tick=False):
        staff_view(gp, first.patient_id)
        staff_view(gp, first.patient_id)
        staff_view(gp, first.patient_id, answer=Permission.REFUSED, session="s2")
        staff_view(trust, second.patient_id, emergency=True)
    with time_machine.travel(at(3, 11), tick=False):  # November: not October's
        assert signed_in_client(second.user).get("/record/").status_code == 200
        staff_view(trust, first.patient_id, emergency=True)
    return {
        "operator": operator,
        "patients": [first.patient_id, second.patient_id, third.id],
        "users": [first.user, second.user, newcomer, basic, gp, trust, clerk],
    }


def test_octobers_figures_come_from_the_trail(october):
    with time_machine.travel(at(25, 11), tick=False):
        usage = stats.usage_compute(OCTOBER)
    assert (usage.accounts_basic, usage.accounts_verified) == (1, 3)
    month = usage.monthly["2026-10"]
    assert month["registrations_online"] == 1
    assert month["registrations_in_person"] == 1
    assert month["scr_views_by_patients"] == 5
    assert month["scr_views_by_staff"] == 3  # two with permission, one emergency
    assert month["emergency_accesses"] == 1
    assert month["permission_refusals"] == 1
    assert "2026-11" not in usage.monthly and next(iter(usage.monthly)) == "2025-11"
    assert usage.patients_viewed == 3
    assert usage.patients_viewed_more_than_once == 1
    assert usage.active_patients == 3
    assert usage.staff_views_by_role["clinician"] == 3
    assert usage.staff_views_by_org_type == {
        "gp-practice": 2,
        "nhs-trust": 1,
        "other": 0,
        "unknown": 0,
    }
    # registered on the 2nd (viewed on the 5th: 3 days) and the 3rd (viewed the 7th: 4)
    assert usage.registered_then_viewed == 2
    assert usage.median_days_to_first_view == pytest.approx(3.5)
    # the month filter: November holds only its own views
    november = stats.usage_compute(NOVEMBER)
    assert november.monthly["2026-11"]["scr_views_by_patients"] == 1
    assert november.monthly["2026-11"]["emergency_accesses"] == 1
    assert november.monthly["2026-10"]["scr_views_by_patients"] == 5  # the trend row
    assert november.patients_viewed == 1 and november.registered_then_viewed == 0
    assert november.median_days_to_first_view is None


def test_small_numbers_are_suppressed_and_nothing_names_anyone(october, capsys):
    call_command("stats", month="2026-10", json=True)
    figures = json.loads(capsys.readouterr().out)
    this = figures["this_month"]
    assert this["scr_views_by_patients"] == "<10"
    assert this["emergency_accesses"] == "<10"
    assert this["exports"] == 0  # none stays 0
    assert this["median_days_from_registration_to_first_view"] == "<10"
    assert this["staff_views_by_organisation_type"]["other"] == 0
    flat = json.dumps(figures)
    for value in _identifiers(october):
        assert value not in flat, value
    call_command("stats", month="2026-10")
    text = capsys.readouterr().out
    assert "Patients who viewed more than once" in text and "<10" in text
    for value in _identifiers(october):
        assert value not in text, value


def _identifiers(world) -> list[str]:
    out = []
    for patient in Patient.objects.filter(pk__in=world["patients"]):
        out += [str(patient.pk), patient.nhs_number, format_spaced(patient.nhs_number)]
    for user in world["users"]:
        out += [f"user:{user.pk}", user.username]
    return out


def test_counts_of_ten_and_more_are_exact_and_parts_do_not_give_a_small_one_away():
    assert [stats.suppress(n) for n in (0, 1, 9, 10, 11)] == [0, "<10", "<10", 10, 11]
    # one suppressed part of a shown total: the smallest other part is withheld too
    assert stats.suppress_parts({"a": 3, "b": 40, "c": 25, "d": 0}) == {
        "a": "<10",
        "b": 40,
        "c": "*",
        "d": 0,
    }
    assert stats.suppress_parts({"a": 3, "b": 4, "c": 25}) == {"a": "<10", "b": "<10", "c": 25}
    assert stats.suppress_parts({"a": 30, "b": 12}) == {"a": 30, "b": 12}


def _bulk(n: int, *, month: int, action: str = "scr.view", actor=None, **fields) -> None:
    """n events straight into the table (volume for counting; no chain needed here)."""
    AuditEvent.objects.bulk_create(
        AuditEvent(
            occurred_at=at(1 + i % 27, month, 1 + i % 20),
            patient_id=fields.get("patient_id", uuid.uuid4()),
            actor=actor or f"patient:user:{100000 + i % max(1, n // 2)}",
            action=action,
            outcome=fields.get("outcome", "success"),
            reason=fields.get("reason", "own-record"),
            detail=fields.get("detail", {}),
            chain_key=f"bulk-{uuid.uuid4()}",
            seq=1,
            prev_hash="0" * 64,
            hash="0" * 64,
        )
        for i in range(n)
    )


def test_larger_counts_are_shown_and_the_registration_route_total_does_not_leak():
    _bulk(24, month=10)
    _bulk(12, month=10, action="linkage.verify", reason="linkage-details-matched")
    _bulk(3, month=10, action="account.link-in-person", actor="staff:user:1")
    figures = stats.published(stats.usage_compute(OCTOBER))
    assert figures["this_month"]["scr_views_by_patients"] == 24
    assert figures["this_month"]["patients_who_viewed_their_record"] == 12
    assert figures["this_month"]["patients_who_viewed_more_than_once"] == 12
    october = next(r for r in figures["months"] if r["month"] == "2026-10")
    assert october["registrations"] == {"online": "*", "in_person": "<10", "total": 15}


def test_shares_count_readings_shared_grants_and_share_codes():
    _bulk(7, month=10, action="organiser.share", reason="own-account")
    _bulk(5, month=10, action="sharing.grant", reason="own-record")
    _bulk(4, month=10, action="sharing.grant", reason="own-record", outcome="refused")
    october = stats.published(stats.usage_compute(OCTOBER))["this_month"]
    assert october["shares"] == 12


@pytest.mark.parametrize("volume", [40, 400])
def test_the_query_count_does_not_grow_with_the_trail(volume, django_assert_num_queries):
    _bulk(volume, month=10)
    _bulk(volume // 4, month=10, action="permission.record", actor="staff:user:2",
          detail={"answer": "refused", "roles": ["clinician"], "org": "Y00001"})  # fmt: skip
    _bulk(volume // 4, month=10, action="linkage.verify")
    _bulk(volume, month=9)
    with django_assert_num_queries(stats.QUERIES_MAX):  # counts 12 months, keeps them
        usage = stats.usage_compute(OCTOBER)
    assert usage.monthly["2026-10"]["scr_views_by_patients"] == volume
    assert usage.monthly["2026-10"]["permission_refusals"] == volume // 4
    assert usage.monthly["2026-09"]["scr_views_by_patients"] == volume
    assert MonthlyUsage.objects.count() == stats.TREND_MONTHS
    with django_assert_num_queries(stats.QUERIES):  # the table read from the kept months
        again = stats.usage_compute(OCTOBER)
    assert again == usage


def test_ended_months_are_kept_and_the_month_in_progress_is_always_counted():
    _bulk(12, month=10)
    with time_machine.travel(at(15, 11), tick=False):
        _bulk(11, month=11)
        first = stats.usage_compute(NOVEMBER)
        assert (
            list(MonthlyUsage.objects.values_list("month", flat=True).order_by("month"))[-1]
            == OCTOBER
        )  # November has not ended: not kept
        _bulk(5, month=11)  # November goes on
        later = stats.usage_compute(NOVEMBER)
    assert first.monthly["2026-10"]["scr_views_by_patients"] == 12
    assert first.monthly["2026-11"]["scr_views_by_patients"] == 11
    assert later.monthly["2026-11"]["scr_views_by_patients"] == 16
    assert later.monthly["2026-10"] == first.monthly["2026-10"]


def test_the_monthly_counts_read_the_action_time_index():
    _bulk(50, month=10)
    # most of a real trail is actions no figure counts (the organiser, finding patients)
    for month in (8, 9, 10, 11):
        _bulk(500, month=month, action="organiser.view")
    start, end = stats.month_start(OCTOBER), stats.month_start(NOVEMBER)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_event")
        if connection.vendor == "postgresql":
            # the planner would scan a table this small; at hundreds of millions of rows it
            # must not have to: with sequential scans priced out, the plan is the index
            cursor.execute("SET LOCAL enable_seqscan = off")
        plan = stats.monthly_rows(start, end).explain()
    # On PostgreSQL the table is partitioned by month (audit.0004): each partition's copy
    # of the index is named by PostgreSQL after its columns.
    assert "audit_action_ts" in plan or "_action_occurred_at_idx" in plan, plan
    if connection.vendor == "postgresql":
        assert "Seq Scan on audit_event" not in plan, plan


def test_cost_per_view_is_a_twelfth_of_the_annual_cost_over_the_months_views(settings):
    _bulk(30, month=10)
    _bulk(20, month=10, actor="staff:user:3", detail={"roles": ["clinician"], "org": "RR801"})
    settings.HEALTHSPACE_ANNUAL_COST_GBP = Decimal("120000")
    figures = stats.published(stats.usage_compute(OCTOBER))
    assert figures["this_month"]["cost_per_view_gbp"] == "200.00"  # 10,000 / 50 views
    assert figures["this_month"]["staff_views_by_organisation_type"]["nhs-trust"] == 20
    settings.HEALTHSPACE_ANNUAL_COST_GBP = None
    assert stats.published(stats.usage_compute(OCTOBER))["this_month"]["cost_per_view_gbp"] is None
    settings.HEALTHSPACE_ANNUAL_COST_GBP = Decimal("120000")
    assert stats.published(stats.usage_compute(NOVEMBER))["this_month"]["cost_per_view_gbp"] == (
        "no views"
    )


def test_the_annual_cost_setting_is_read_as_an_amount(monkeypatch):
    from healthspace.config import env

    monkeypatch.setenv("HEALTHSPACE_ANNUAL_COST_GBP", "£250,000")
    assert env.get_decimal("HEALTHSPACE_ANNUAL_COST_GBP") == Decimal("250000")
    for bad in ("lots", "-5", "NaN"):
        monkeypatch.setenv("HEALTHSPACE_ANNUAL_COST_GBP", bad)
        with pytest.raises(env.ConfigurationError):
            env.get_decimal("HEALTHSPACE_ANNUAL_COST_GBP")


def test_the_command_refuses_a_bad_month_and_audits_a_good_one(capsys):
    for bad in ("2026-13", "October", "26-10"):
        with pytest.raises(CommandError, match="for example 2026-11"):
            call_command("stats", month=bad)
    assert not AuditEvent.objects.exists()
    call_command("stats", month="2026-10", json=True)
    event = AuditEvent.objects.get()
    assert (event.action, event.actor, event.patient_id) == ("stats.view", "system:cli:stats", None)
    assert event.detail == {"month": "2026-10"}
    assert verify_database().ok


def test_only_an_operator_may_ask():
    with pytest.raises(stats.Refused):
        stats.usage_report(actor=Actor("patient", "user:1", patient_id=uuid.uuid4()), month=OCTOBER)
    refused = AuditEvent.objects.get()
    assert (refused.action, refused.outcome) == ("stats.view", "denied")


# --- the page ------------------------------------------------------------------------------


def test_the_operator_page_shows_the_figures_suppressed(october):
    client = signed_in_client(october["operator"], second_factor="passkey")
    with time_machine.travel(at(25, 11), tick=False):
        response = client.get("/operator/statistics/?month=2026-10")
        page = response.content.decode()
        assert response.status_code == 200
        assert "Usage statistics for October 2026" in page
        assert "Patients who viewed it more than once" in page
        assert "&lt;10" in page
        assert '<option value="2026-10" selected' in page
        for value in _identifiers(october):
            assert value not in page, value
        # a month that is not one: the error summary, the current month's figures
        bad = client.get("/operator/statistics/?month=2026-99")
        assert bad.status_code == 400
        assert "There is a problem" in bad.content.decode()
        assert "Usage statistics for November 2026" in bad.content.decode()
    views = AuditEvent.objects.filter(action="stats.view", outcome="success")
    assert list(views.values_list("detail__month", flat=True).order_by("id")) == [
        "2026-10",
        "2026-11",
    ]


@pytest.mark.parametrize("role", ["clinician", "privacy-officer", "registration-clerk"])
def test_other_staff_do_not_get_the_page(role):
    client = signed_in_client(make_staff_user(role), second_factor="passkey")
    assert client.get("/operator/statistics/").status_code == 404
    assert AuditEvent.objects.filter(action="stats.view", outcome="denied").count() == 1
