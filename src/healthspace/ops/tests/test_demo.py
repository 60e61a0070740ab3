"""The demo: `healthspace up` sets up a service worth looking at, once."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django_tasks_db.models import DBTaskResult

from healthspace.access.context import ConsentState
from healthspace.accounts.models import PatientLink
from healthspace.audit.verify import verify_database
from healthspace.consent.selectors import consent_state_for
from healthspace.messaging.models import Thread
from healthspace.ops import stats
from healthspace.organiser.models import Appointment, Reading
from healthspace.records.models import Origin, ScrItem

pytestmark = pytest.mark.django_db


def test_up_without_serving_sets_up_logins_and_a_lived_in_organiser_once(
    synthetic_patients, settings, capsys
):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("up", no_serve=True)
    out = capsys.readouterr().out
    assert "DEMO LOGINS" in out and "patient1@demo.healthspace.test" in out
    assert "Demo health organiser" in out
    # the usage statistics have something to show, and an operator to show it to
    assert "operator@demo.healthspace.test" in out and "/operator/statistics/" in out
    this_month = stats.month_parse("")
    usage = stats.usage_compute(this_month)
    assert usage.monthly[stats.month_key(this_month)]["scr_views_by_patients"] == 6
    assert usage.patients_viewed == 3 and usage.patients_viewed_more_than_once == 2

    link = PatientLink.objects.get(user__username="patient1@demo.healthspace.test")
    readings = Reading.objects.filter(owner=link.user)
    assert readings.filter(measure="blood-pressure").count() == 26
    assert readings.filter(shared=True).count() == 6
    # shared readings and the access need are in the SCR, marked as the patient's
    contributed = ScrItem.objects.filter(patient=link.patient, origin=Origin.PATIENT)
    assert contributed.filter(section="results").count() == 6
    assert contributed.filter(section="access_needs").count() == 1
    appointment = Appointment.objects.get(owner=link.user)
    assert DBTaskResult.objects.filter(run_after=appointment.reminder_at).exists()
    assert consent_state_for(patient_id=link.patient_id) == ConsentState.CORE_AND_ADDITIONAL
    thread = Thread.objects.get(owner=link.user)
    assert thread.message_count == 2 and thread.team.ods_code == "Y00001"
    assert verify_database().ok

    call_command("up", no_serve=True)  # a second start adds nothing
    assert "Demo health organiser" not in capsys.readouterr().out
    assert Reading.objects.filter(owner=link.user).count() == readings.count()
