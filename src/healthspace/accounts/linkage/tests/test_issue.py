"""Issuing linkage details: who may, what is issued, what is kept (only a hash)."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.contrib.auth.hashers import check_password
from django.core.management import CommandError, call_command
from django.db import connection

from healthspace.access.actors import Actor
from healthspace.access.roles import Role
from healthspace.accounts.linkage import services
from healthspace.accounts.linkage.services import ISSUE, LINK_IN_PERSON, LOOKUP, VERIFY
from healthspace.accounts.models import LinkageKey
from healthspace.audit.models import AuditEvent
from healthspace.core.clock import now
from healthspace.core.errors import InvalidInput, NotFound
from healthspace.records.models import Patient

pytestmark = pytest.mark.django_db

CLERK = Actor("staff", "user:1", roles=frozenset({Role.REGISTRATION_CLERK}))
CLINICIAN = Actor("staff", "user:2", roles=frozenset({Role.CLINICIAN}))
PATIENT = Actor("patient", "user:3")


@pytest.mark.parametrize(
    ("actor", "action", "actor_ods", "patient_ods", "allowed"),
    [
        (CLERK, ISSUE, "Y00001", "Y00001", True),
        (CLERK, LOOKUP, "Y00001", "Y00001", True),
        (CLERK, LINK_IN_PERSON, "Y00001", "Y00001", True),
        (CLERK, ISSUE, "Y00001", "Y00002", False),  # another practice's patient
        (CLERK, LINK_IN_PERSON, "Y00001", "Y00002", False),
        (CLERK, LOOKUP, "Y00001", "Y00002", False),
        (CLERK, ISSUE, None, "Y00001", False),  # clerk without an organisation
        (CLERK, ISSUE, "Y00001", None, False),  # patient without a practice
        (CLERK, VERIFY, "Y00001", "Y00001", False),
        (CLINICIAN, ISSUE, "Y00001", "Y00001", False),
        (PATIENT, ISSUE, "Y00001", "Y00001", False),
        (Actor.anonymous(), ISSUE, None, "Y00001", False),
        (Actor.system("linkage"), ISSUE, None, "Y00001", True),
        (Actor.system("linkage"), ISSUE, None, None, True),  # refused later, with a reason
        (Actor.system("linkage"), LINK_IN_PERSON, None, "Y00001", False),
        (Actor.system("import"), ISSUE, None, "Y00001", False),
    ],
)
def test_who_may_issue_look_up_and_link(actor, action, actor_ods, patient_ods, allowed):
    decision = services.linkage_decision(
        actor, action, actor_ods=actor_ods, patient_ods=patient_ods
    )
    assert decision.allowed is allowed


def test_issued_details_are_readable_and_expire_in_28_days(patients, issue):
    before = now()
    issued = issue(patients[0].patient)
    assert re.fullmatch(r"[23456789ABCDEFGHJKLMNPQRSTUVWXYZ]{10}", issued.account_id)
    assert re.fullmatch(
        r"([23456789ABCDEFGHJKLMNPQRSTUVWXYZ]{5}-){2}[2-9A-HJ-NP-Z]{5}", issued.linkage_key
    )
    assert issued.practice_ods == "Y00001"
    assert before + timedelta(days=28) <= issued.expires_at <= now() + timedelta(days=28)
    row = LinkageKey.objects.get(account_id=issued.account_id)
    assert row.patient_id == patients[0].patient.id
    assert row.issued_by == "system:cli:linkage"
    assert row.used_at is None


def test_only_an_argon2id_hash_of_the_key_is_stored(patients, issue):
    issued = issue(patients[0].patient)
    row = LinkageKey.objects.get(account_id=issued.account_id)
    assert row.key_hash.startswith("argon2$argon2id$")
    assert check_password(issued.linkage_key.replace("-", ""), row.key_hash)
    plain = issued.linkage_key.replace("-", "")
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 (fixed names)
            for values in cursor.fetchall():
                for value in values:
                    text = (
                        bytes(value).decode("latin-1")
                        if isinstance(value, bytes | memoryview)
                        else str(value)
                    )
                    assert plain not in text and issued.linkage_key not in text, table


def test_issuing_new_details_stops_the_earlier_unused_ones(patients, issue):
    first = issue(patients[0].patient)
    second = issue(patients[0].patient)
    old = LinkageKey.objects.get(account_id=first.account_id)
    new = LinkageKey.objects.get(account_id=second.account_id)
    assert old.expires_at <= now() < new.expires_at
    assert first.account_id != second.account_id


def test_issuing_is_audited_in_the_same_transaction(patients, issue):
    issued = issue(patients[0].patient)
    event = AuditEvent.objects.get(action=ISSUE)
    assert event.patient_id == patients[0].patient.id
    assert (event.outcome, event.actor) == ("success", "system:cli:linkage")
    assert event.detail["account_id"] == issued.account_id
    assert issued.linkage_key not in str(event.detail)


def test_a_clerk_of_another_practice_is_refused_as_if_the_patient_did_not_exist(patients):
    with pytest.raises(NotFound) as refused:
        services.linkage_key_issue(
            actor=CLERK, patient_id=patients[1].patient.id, actor_ods="Y00001"
        )
    with pytest.raises(NotFound) as absent:
        services.linkage_key_issue_for_nhs_number(
            actor=CLERK, nhs_number="9999999999", actor_ods="Y00001"
        )
    assert str(refused.value) == str(absent.value)
    assert not LinkageKey.objects.exists()
    denied = AuditEvent.objects.get(action=ISSUE)
    assert (denied.outcome, denied.patient_id) == ("denied", patients[1].patient.id)


def test_a_patient_without_a_registered_practice_cannot_be_issued_details(patients, issue):
    Patient.objects.filter(pk=patients[0].patient.id).update(registered_practice=None)
    with pytest.raises(InvalidInput, match="no registered GP practice"):
        issue(patients[0].patient)
    assert not LinkageKey.objects.exists()


def test_the_command_prints_the_details_once_and_loudly(patients):
    out = io.StringIO()
    call_command("linkage-key", patients[0].patient.nhs_number, stdout=out)
    text = out.getvalue()
    row = LinkageKey.objects.get()
    key = re.search(r"Linkage key:\s+(\S+)", text).group(1)
    assert "give these to the patient; they are not stored" in text
    assert text.count(row.account_id) == 1 and text.count(key) == 1
    assert re.search(r"Practice ODS code:\s+Y00001", text)
    assert "Use before:" in text
    assert check_password(key.replace("-", ""), row.key_hash)


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("123", "not a valid NHS number"),
        ("9434765919", "No patient with that NHS number"),  # valid, but not in the database
    ],
)
def test_the_command_refuses_unknown_or_invalid_nhs_numbers(patients, argument, message):
    with pytest.raises(CommandError, match=message):
        call_command("linkage-key", argument, stdout=io.StringIO())
    assert not LinkageKey.objects.exists()
