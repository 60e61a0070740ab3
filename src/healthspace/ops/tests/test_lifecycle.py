"""The service's lifecycle: transitions and their audit, the cached state, registration,
the closure banner, read-only mode (pages, the FHIR API, the importer)."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver

from healthspace.accounts.models import Account
from healthspace.accounts.sessions.testing import signed_in_client
from healthspace.audit.models import AuditEvent
from healthspace.core.clock import now
from healthspace.core.errors import InvalidInput
from healthspace.ops import lifecycle
from healthspace.ops.lifecycle import ServiceReadOnly, ServiceState
from healthspace.ops.models import ServiceStateChange

pytestmark = pytest.mark.django_db

LATER = now().date() + dt.timedelta(days=60)


def _announced() -> None:
    lifecycle.closure_announce(closure_date=LATER)


def _read_only() -> None:
    _announced()
    lifecycle.read_only()


# --- transitions ---------------------------------------------------------------------


def test_the_service_is_open_until_told_otherwise():
    current = lifecycle.status()
    assert current.state == ServiceState.OPEN and current.registrations_open
    assert not current.read_only and not current.closing


def test_each_step_towards_closing_is_recorded_and_audited_as_the_operator():
    lifecycle.registrations_close()
    lifecycle.closure_announce(closure_date=LATER)
    lifecycle.read_only()
    states = list(ServiceStateChange.objects.values_list("state", "closure_date", "changed_by"))
    assert states == [
        ("registrations-closed", None, "system:cli:service"),
        ("closure-announced", LATER, "system:cli:service"),
        ("read-only", LATER, "system:cli:service"),
    ]
    events = AuditEvent.objects.filter(action=lifecycle.STATE_CHANGE).order_by("occurred_at", "seq")
    assert [(e.actor, e.detail["from"], e.detail["to"]) for e in events] == [
        ("system:cli:service", "open", "registrations-closed"),
        ("system:cli:service", "registrations-closed", "closure-announced"),
        ("system:cli:service", "closure-announced", "read-only"),
    ]
    assert lifecycle.status().read_only


@pytest.mark.parametrize(
    ("steps", "attempt", "message"),
    [
        ([], lambda: lifecycle.reopen(), "already open"),
        ([], lambda: lifecycle.read_only(), "announce the closure first"),
        ([lifecycle.registrations_close], lambda: lifecycle.read_only(), "announce the closure"),
        ([], lambda: lifecycle.closure_announce(closure_date=now().date()), "in the future"),
        ([_announced], lambda: lifecycle.registrations_close(), "only go on towards closing"),
        ([_read_only], lambda: lifecycle.closure_announce(closure_date=LATER), "only go on"),
        ([_announced], lambda: lifecycle.purged(actor=lifecycle.OPERATOR, note=""), "read-only"),
    ],
)
def test_transitions_out_of_order_are_refused_and_change_nothing(steps, attempt, message):
    for step in steps:
        step()
    before = ServiceStateChange.objects.count(), AuditEvent.objects.count()
    with pytest.raises(InvalidInput, match=message):
        attempt()
    assert (ServiceStateChange.objects.count(), AuditEvent.objects.count()) == before


def test_registrations_can_reopen_at_any_time_before_the_purge():
    _read_only()
    assert lifecycle.reopen().state == ServiceState.OPEN
    assert lifecycle.status().registrations_open and lifecycle.status().closure_date is None


def test_nothing_changes_once_purged():
    _read_only()
    lifecycle.purged(actor=lifecycle.OPERATOR, note="test")
    for attempt in (lifecycle.reopen, lifecycle.read_only, lifecycle.registrations_close):
        with pytest.raises(InvalidInput, match="purged"):
            attempt()


def test_the_command_walks_the_steps_and_says_what_it_did(capsys):
    call_command("service", "close-registrations")
    call_command("service", "announce-closure", LATER.isoformat())
    call_command("service", "status")
    out = capsys.readouterr().out
    assert "now registrations closed" in out and f"closure date {LATER}" in out
    assert "closure-announced" in out and "Closure emails" in out
    with pytest.raises(CommandError, match="not a date"):
        call_command("service", "announce-closure", "next tuesday")
    with pytest.raises(CommandError, match="--yes-destroy-everything"):
        call_command("service", "purge")
    with pytest.raises(CommandError, match="read-only"):
        call_command("service", "purge", "--yes-destroy-everything")


# --- the cached state ----------------------------------------------------------------


def test_the_state_costs_no_query_per_request_once_read(client, settings):
    settings.HEALTHSPACE_SERVICE_STATE_SECONDS = 600  # a slow machine must not expire it
    lifecycle.status()
    with CaptureQueriesContext(connection) as captured:
        for _ in range(3):
            client.get("/")
            client.post("/login/", {"username": "nobody@example.test", "password": "x"})
    assert not [q for q in captured.captured_queries if "ops_service_state" in q["sql"]]


def test_a_change_in_this_process_is_seen_at_once_and_others_within_the_ttl(settings):
    settings.HEALTHSPACE_SERVICE_STATE_SECONDS = 3600
    assert not lifecycle.status().closing
    _announced()  # this process: the cache is refreshed
    assert lifecycle.status().closing
    # another process's change: seen when this process's cached copy expires
    ServiceStateChange.objects.create(
        state=ServiceState.READ_ONLY, closure_date=LATER, changed_at=now(), changed_by="other"
    )
    assert not lifecycle.status().read_only
    settings.HEALTHSPACE_SERVICE_STATE_SECONDS = 0
    assert lifecycle.status().read_only


# --- registration --------------------------------------------------------------------


def test_registration_is_refused_with_a_clear_page_once_closed(client, mailoutbox):
    lifecycle.registrations_close()
    page = client.get("/account/register/")
    assert page.status_code == 200 and "You cannot create a new account" in page.content.decode()
    posted = client.post(
        "/account/register/",
        {"email": "new@example.test", "password": "a long enough passphrase 42"},
    )
    assert posted.status_code == 403 and "Nothing was saved" in posted.content.decode()
    assert not get_user_model().objects.filter(username="new@example.test").exists()
    assert not mailoutbox


def test_registration_works_again_after_reopening(client, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    lifecycle.registrations_close()
    lifecycle.reopen()
    client.post(
        "/account/register/",
        {"email": "new@example.test", "password": "a long enough passphrase 42"},
    )
    assert get_user_model().objects.filter(username="new@example.test").exists()


# --- the banner ----------------------------------------------------------------------


def test_no_banner_while_open_and_a_banner_with_date_and_export_link_once_announced(client):
    assert "hs-closure-banner" not in client.get("/").content.decode()
    _announced()
    body = client.get("/").content.decode()
    assert "hs-closure-banner" in body and "HealthSpace will close on" in body
    assert lifecycle.date_in_words(LATER) in body
    assert f'href="{lifecycle.EXPORT_PATH}"' in body
    lifecycle.read_only()
    body = client.get("/login/").content.decode()
    assert "You can no longer make changes" in body and lifecycle.date_in_words(LATER) in body


# --- read-only -----------------------------------------------------------------------


@pytest.fixture
def patient_user():
    user = get_user_model().objects.create_user(username="pat@example.test", password="x")
    Account.objects.create(user=user, kind=Account.Kind.PATIENT, email_confirmed_at=now())
    return user


def test_read_only_refuses_a_write_with_a_clear_page_and_keeps_reads(patient_user):
    from healthspace.organiser.models import Note

    client = signed_in_client(patient_user)
    _read_only()
    refused = client.post("/organiser/notes/add/", {"title": "Knee", "text": "sore"})
    body = refused.content.decode()
    assert refused.status_code == 503
    assert "you cannot make changes" in body and "Nothing was saved" in body
    assert not Note.objects.exists()
    assert client.get("/organiser/notes/").status_code == 200


def test_logging_in_and_out_still_work_when_read_only(patient_user, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    patient_user.set_password("a long enough passphrase 42")
    patient_user.save()
    _read_only()
    client = Client()
    response = client.post(
        "/login/", {"username": "pat@example.test", "password": "a long enough passphrase 42"}
    )
    assert response.status_code == 302
    assert client.post("/logout/").status_code == 302


def test_the_fhir_api_refuses_writes_with_an_operation_outcome_when_read_only():
    _read_only()
    client = Client()
    response = client.post("/fhir/R4/", b"{}", content_type="application/fhir+json")
    assert response.status_code == 503
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "read-only" in outcome["issue"][0]["diagnostics"]
    # reads are not refused by the lifecycle (here: no token, so 401 as ever)
    assert client.get("/fhir/R4/metadata").status_code == 200
    assert client.get("/fhir/R4/Patient/x").status_code == 401


def test_once_purged_nothing_is_written_not_even_a_login(patient_user):
    _read_only()
    lifecycle.purged(actor=lifecycle.OPERATOR, note="test")
    response = Client().post("/login/", {"username": "pat@example.test", "password": "x"})
    assert response.status_code == 503 and "HealthSpace has closed" in response.content.decode()


def test_the_importer_refuses_when_read_only(write_bundles):
    from healthspace.records import synthetic
    from healthspace.records.importer import import_paths
    from healthspace.records.models import Patient

    folder = write_bundles(synthetic.population(1))
    _read_only()
    with pytest.raises(ServiceReadOnly, match="importing records is not possible"):
        import_paths([folder], source=synthetic.SOURCE)
    with pytest.raises(CommandError, match="read-only"):
        call_command("import", str(folder))
    assert not Patient.objects.exists()


# --- every POST route: refused or allowed as declared ----------------------------------


def _walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p.callback


FILL = {"int": "1", "uuid": str(uuid.UUID(int=1)), "slug": "blood-pressure", "str": "x"}


def _path_of(route: str) -> str:
    path = re.sub(r"<(?:(\w+):)?\w+>", lambda m: FILL[m.group(1) or "str"], route)
    return "/" + path.replace("^.*$", "anything")


ROUTES = [
    (route, view)
    for route, view in _walk(get_resolver().url_patterns)
    if not route.startswith("operator/admin/")
]
# What must keep working while the service closes (docs/lifecycle.md).
ALLOWED = {
    "login/",
    "logout/",
    "account/two-factor/verify/",
    "account/two-factor/verify/recovery-code/",
    "account/two-factor/verify/passkey/options/",
    "account/two-factor/verify/passkey/",
    "account/password/change/",
    "account/password/reset/",
    "account/password/reset/new/",
    "account/security/someone-has-seen-my-record/",
    "account/sessions/<int:session_id>/end/",
    "account/sessions/end-others/",
    "account/sessions/logout-everywhere/",
    "account/apps/disconnect/",
    "oauth/authorize/",
    "oauth/token/",
    "oauth/revoke/",
    "fhir/R4/<str:rtype>/_search",
    "fhir/R4/$export-poll/<str:job_id>",
    # taking one's data away (portability)
    "account/your-data/",
    "account/your-data/deletion-receipt.json",
    "account/your-data/<uuid:download_id>/",
    "account/your-data/<uuid:download_id>/file/",
    # staff reading an SCR: finding the patient (a look-up by POST) and recording what
    # must be recorded before a view (permission, relationship, emergency access)
    "staff/",
    "staff/patient/<uuid:patient_id>/permission/",
    "staff/patient/<uuid:patient_id>/relationship/",
    "staff/patient/<uuid:patient_id>/emergency/",
}


def test_every_allowed_route_is_real():
    assert not ALLOWED - {route for route, _ in ROUTES}


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_every_write_is_refused_when_read_only_unless_declared_allowed(method):
    _read_only()
    client = Client()
    wrong = []
    for route, view in ROUTES:
        declared = getattr(view, "allowed_when_read_only", False)
        if declared != (route in ALLOWED):
            wrong.append(f"/{route}: marked {declared}, expected {route in ALLOWED}")
        response = getattr(client, method)(_path_of(route))
        refused = response.status_code == 503 and (
            "read-only" in response.content.decode()
            or "cannot make changes" in response.content.decode()
        )
        if refused == declared:
            wrong.append(f"{method.upper()} /{route}: refused={refused}, allowed={declared}")
    assert not wrong, "\n".join(wrong)
    assert client.post("/operator/admin/login/").status_code == 503


def test_no_write_is_refused_while_open():
    client = Client()
    for route, _ in ROUTES:
        assert client.post(_path_of(route)).status_code != 503, route
