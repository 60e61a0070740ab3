"""Fail closed, over HTTP: every URL declares what it does with patient data, and every
patient-data URL, tried as every role and as another patient, is refused unless the
access matrix allows it, with each refusal of a signed-in person in the patient's trail.

The expected grid below is written by hand from the rules (access/tests/test_matrix.py is
the specification of decide() itself); a new URL must be added here or the walk fails.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from healthspace.access.context import ConsentState
from healthspace.accounts.models import Account, PatientLink
from healthspace.accounts.sessions.testing import signed_in_client
from healthspace.audit.models import AuditEvent
from healthspace.consent.models import ConsentRecord
from healthspace.core.clock import now
from healthspace.core.nhs_numbers import format_spaced
from healthspace.ops.demo import ensure_demo_logins
from healthspace.records.models import Patient
from healthspace.staff.testing import make_staff_user

pytestmark = pytest.mark.django_db


def _walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p.callback


ROUTES = [
    (r, cb) for r, cb in _walk(get_resolver().url_patterns) if not r.startswith("operator/admin/")
]


@pytest.mark.parametrize(("route", "view"), ROUTES, ids=[r or "/" for r, _ in ROUTES])
def test_every_view_declares_its_access(route, view):
    declared = getattr(view, "access_actions", None)
    assert declared or getattr(view, "access_no_patient_data", False), (
        f"/{route} ({view.__module__}.{view.__name__}) has no @endpoint(...) declaration"
    )


def test_the_operator_admin_holds_no_patient_data():
    # Django's admin reads models around access.decide: nothing but logins and groups,
    # not even second-factor secrets.
    exposed = sorted(m._meta.label for m in admin.site._registry)
    assert exposed == ["auth.Group", "auth.User"], exposed


# --- the HTTP walk ---------------------------------------------------------------------

ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
ROLES = {
    "clinician": ("Y00001", ["clinician"]),
    "clinician-given": ("Y00001", ["clinician"]),
    "clinician-elsewhere": ("RR801", ["clinician"]),
    "clerk": ("Y00001", ["registration-clerk"]),
    "privacy-officer": ("Y00001", ["privacy-officer"]),
    "operator": ("Y00001", ["operator"]),
}
# "grantee": a third patient, to whom the owner granted medications and allergies
PATIENT_ACTORS = ["owner", "other-patient", "basic-account", "grantee", "anonymous"]
ACTORS = [*PATIENT_ACTORS, *ROLES]
STAFF_ALL = set(ROLES)

# (method, path template, who may[, POST data]) — {p} is the owner's patient id; {q}
# another patient's, whose record is waiting for a deletion decision; {i}, {c}, {d}: an
# item of the owner's record, the owner's correction request about it (sent to Y00001),
# and something the owner added (see ``owned``); {t} the owner's message thread with their
# practice and {f} its attachment (see ``thread_ids``).
TEAM = {"clinician", "clinician-given", "clerk"}  # the practice's staff who answer messages
MESSAGE = {"subject": "Walk", "body": "Every role tries this."}
GRID = [
    # the patient's own pages carry no id: only the owner ever sees the owner's record
    ("GET", "/record/", {"owner"}),
    ("GET", "/record/consent/", {"owner"}),
    ("GET", "/record/access/who-has-looked/", {"owner"}),
    # corrections and additions: the owner's own items, requests and additions only
    ("GET", "/record/corrections/", {"owner"}),
    ("GET", "/record/corrections/report/{i}/", {"owner"}),
    ("GET", "/record/corrections/{c}/", {"owner"}),
    ("GET", "/record/corrections/{c}/withdraw/", {"owner"}),
    ("GET", "/record/additions/", {"owner"}),
    ("GET", "/record/additions/add/access-needs/", {"owner"}),
    ("GET", "/record/additions/{d}/change/", {"owner"}),
    ("GET", "/record/additions/{d}/remove/", {"owner"}),
    # staff pages for one patient (found by NHS number + date of birth this session)
    ("GET", "/staff/patient/{p}/", {"clinician", "clinician-given", "clinician-elsewhere", "clerk", "privacy-officer"}),
    ("GET", "/staff/patient/{p}/relationship/", {"clinician-elsewhere"}),
    ("GET", "/staff/patient/{p}/emergency/", {"clinician", "clinician-given", "clinician-elsewhere"}),
    ("GET", "/staff/patient/{p}/scr/", {"clinician-given"}),
    # the privacy officer's console: only privacy officers (pages about one record are
    # audited in its trail; the lists show no identifiers)
    ("GET", "/staff/privacy/", {"privacy-officer"}),
    ("GET", "/staff/privacy/requests/", {"privacy-officer"}),
    ("GET", "/staff/privacy/deletions/", {"privacy-officer"}),
    ("GET", "/staff/privacy/deletions/{q}/", {"privacy-officer"}),  # {q}: deletion requested
    ("GET", "/staff/privacy/deletions/{q}/receipt.json", {"privacy-officer"}),
    # the health organiser: every account's own (basic ones too), so its pages without an
    # id show each caller only their own; {r} {a} {n} {m} are the owner's reading,
    # appointment, note and medicine, "not found" to everyone else; staff get nothing
    ("GET", "/organiser/", {"owner", "other-patient", "basic-account"}),
    ("GET", "/organiser/readings/blood-pressure/", {"owner", "other-patient", "basic-account"}),
    ("GET", "/organiser/readings/blood-pressure/add/", {"owner", "other-patient", "basic-account"}),
    ("GET", "/organiser/readings/blood-pressure/share/", {"owner", "other-patient", "basic-account"}),
    ("GET", "/organiser/readings/export.csv", {"owner", "other-patient", "basic-account"}),
    ("GET", "/organiser/readings/{r}/edit/", {"owner"}),
    ("GET", "/organiser/readings/{r}/delete/", {"owner"}),
    ("GET", "/organiser/diary/", {"owner", "other-patient", "basic-account"}),
    ("GET", "/organiser/diary/add/", {"owner", "other-patient", "basic-account"}),
    ("GET", "/organiser/diary/{a}/edit/", {"owner"}),
    ("GET", "/organiser/diary/{a}/delete/", {"owner"}),
    ("GET", "/organiser/notes/", {"owner", "other-patient", "basic-account"}),
    ("GET", "/organiser/notes/add/", {"owner", "other-patient", "basic-account"}),
    ("GET", "/organiser/notes/{n}/edit/", {"owner"}),
    ("GET", "/organiser/notes/{n}/delete/", {"owner"}),
    ("GET", "/organiser/medicines/", {"owner", "other-patient", "basic-account"}),
    ("GET", "/organiser/medicines/add/", {"owner", "other-patient", "basic-account"}),
    ("GET", "/organiser/medicines/{m}/edit/", {"owner"}),
    ("GET", "/organiser/medicines/{m}/delete/", {"owner"}),
    ("POST", "/organiser/readings/{r}/delete/", {"owner"}),
    ("POST", "/organiser/diary/{a}/delete/", {"owner"}),
    ("POST", "/organiser/notes/{n}/delete/", {"owner"}),
    ("POST", "/organiser/medicines/{m}/delete/", {"owner"}),
    # correction requests: clinicians see their own practice's queue (elsewhere: an empty
    # one); a request opens only for clinicians of the practice it went to
    ("GET", "/staff/corrections/", {"clinician", "clinician-given", "clinician-elsewhere"}),
    ("GET", "/staff/corrections/{c}/", {"clinician", "clinician-given"}),
    # Communicator: the patient's own pages (lists show only the caller's own threads)
    ("GET", "/messages/", {"owner"}),
    ("GET", "/messages/new/", {"owner"}),
    ("GET", "/messages/{t}/", {"owner"}),
    ("GET", "/messages/{t}/attachments/{f}/", {"owner"}),
    ("POST", "/messages/{t}/reply/", {"owner"}, MESSAGE),
    ("POST", "/messages/{t}/close/", {"owner"}, {}),
    ("POST", "/messages/{t}/reopen/", {"owner"}, {}),
    ("POST", "/messages/new/", {"owner"}, MESSAGE),
    # the practice's inbox: its clinicians and clerks; staff elsewhere see their own team's
    ("GET", "/staff/messages/", TEAM | {"clinician-elsewhere"}),
    ("GET", "/staff/messages/{t}/", TEAM),
    ("GET", "/staff/messages/{t}/attachments/{f}/", TEAM),
    ("POST", "/staff/messages/{t}/reply/", TEAM, MESSAGE),
    ("POST", "/staff/messages/{t}/assign/", TEAM, {"assignee": "me"}),
    ("POST", "/staff/messages/{t}/close/", TEAM, {}),
    ("POST", "/staff/messages/{t}/reopen/", TEAM, {}),
    # "Message the patient": a clinician with a legitimate relationship
    ("GET", "/staff/patient/{p}/message/", {"clinician", "clinician-given"}),
    ("POST", "/staff/patient/{p}/message/", {"clinician", "clinician-given"}, MESSAGE),
    # apps connected to the patient's own record (no id in the URL: each sees their own)
    ("GET", "/account/apps/", {"owner"}),
    # "Download your data" and "Close your account": each account's own (basic ones too:
    # their organiser readings); {x} is the owner's download, "not found" to everyone else
    ("GET", "/account/your-data/", {"owner", "other-patient", "basic-account"}),
    ("POST", "/account/your-data/", {"owner", "other-patient", "basic-account"}, {"format": "csv"}),
    ("GET", "/account/your-data/{x}/", {"owner"}),
    ("GET", "/account/your-data/{x}/file/", {"owner"}),
    ("GET", "/account/close/", {"owner", "other-patient", "basic-account"}),
    ("GET", "/account/your-data/deletion-receipt.json", {"owner", "other-patient", "basic-account"}),
    # the FHIR API answers bearer tokens only: a signed-in browser session opens nothing
    # there (no second way in), whoever it belongs to
    ("GET", "/fhir/R4/Patient/{p}", set()),
    ("GET", "/fhir/R4/Patient/{p}/$everything", set()),
    ("GET", "/fhir/R4/Patient/{p}/$summary", set()),
    ("GET", "/fhir/R4/Observation?patient={p}", set()),
    ("GET", "/fhir/R4/Consent/{p}", set()),
    ("GET", "/fhir/R4/AuditEvent?patient={p}", set()),
    ("GET", "/fhir/R4/$export", set()),
    ("GET", "/fhir/R4/Group/Y00001/$export", set()),
    # sharing (consent.sharing): the owner's own sharing pages; {g} the owner's grant to
    # the grantee (medications and allergies, accepted), {s} a share code the owner made
    # (its QR image only for the session that made it), {y} a proxy request for the owner
    # made by the other patient, waiting for the owner's practice
    ("GET", "/record/sharing/", {"owner"}),
    ("GET", "/record/sharing/new/", {"owner"}),
    ("GET", "/record/sharing/codes/new/", {"owner"}),
    ("GET", "/record/sharing/settings/", {"owner"}),
    ("GET", "/record/sharing/codes/{s}/qr.svg", set()),
    ("GET", "/shared/", {"owner", "other-patient", "basic-account", "grantee"}),
    ("GET", "/shared/proxy/", {"owner", "other-patient", "basic-account", "grantee"}),
    ("GET", "/shared/{g}/", {"grantee"}),
    ("GET", "/shared/{g}/organiser/", set()),  # not granted
    ("GET", "/shared/{g}/messages/", set()),  # not granted
    ("POST", "/shared/{g}/answer/", set(), {"answer": "decline"}),  # answered already
    # a professional's door: anyone may type a code; no code in the session, no summary
    ("GET", "/share/", set(ACTORS)),
    ("GET", "/share/summary/", set()),
    # the practice's proxy queue: its clerks and clinicians (elsewhere: their own, empty)
    ("GET", "/staff/proxies/", TEAM | {"clinician-elsewhere"}),
    ("GET", "/staff/proxies/{y}/", TEAM),
    ("POST", "/record/sharing/codes/{s}/cancel/", {"owner"}, {}),
    ("POST", "/record/sharing/{g}/stop/", {"owner"}, {}),
    # usage statistics: operators only, aggregates about no patient (docs/statistics.md)
    ("GET", "/operator/statistics/", {"operator"}),
    ("GET", "/operator/statistics/?month=2026-10", {"operator"}),
    # last: recording an answer changes what the pages above allow
    ("POST", "/staff/patient/{p}/permission/", {"clinician", "clinician-given"}),
]  # fmt: skip
# The grantee is another patient everywhere else: what they may do with their own account
GRID = [(m, t, a | {"grantee"} if "other-patient" in a else a, *d) for m, t, a, *d in GRID]
# Written into the owner's organiser: nobody else may ever be shown it.
ORGANISER_MARK = "OWNER-ORGANISER-ENTRY"


@pytest.fixture
def world(synthetic_patients, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    ensure_demo_logins(count=3)
    links = list(PatientLink.objects.select_related("patient", "user").order_by("user__username"))
    owner, other = links[0], links[1]
    users = {"owner": owner.user, "other-patient": other.user, "grantee": links[2].user}
    basic = get_user_model().objects.create(username="basic@example.test")
    Account.objects.create(user=basic, kind=Account.Kind.PATIENT)
    users["basic-account"] = basic
    for name, (ods, roles) in ROLES.items():
        users[name] = make_staff_user(*roles, ods=ods, username=f"{name}@example.nhs.uk")
    ConsentRecord.objects.create(
        patient_id=other.patient_id,
        version=1,
        state=ConsentState.DELETION_REQUESTED,
        recorded_at=now(),
        recorded_by=f"patient:user:{other.user_id}",
        source="patient-online",
    )
    return owner.patient, users, other.patient_id


@pytest.fixture
def thread_ids(world) -> dict[str, object]:
    """The owner's thread with their practice, opened with a PDF attached."""
    from healthspace.accounts.actors import actor_for_user
    from healthspace.messaging.attachments import attachment_check
    from healthspace.messaging.models import Attachment
    from healthspace.messaging.services import thread_open_by_patient
    from healthspace.messaging.tests.files import pdf

    _, users, _ = world
    owner = users["owner"]
    sent = thread_open_by_patient(
        actor=actor_for_user(owner),
        user_id=owner.pk,
        subject="Owner's thread",
        body="Owner's words",
        attachment=attachment_check(name="letter.pdf", data=pdf(), max_bytes=10**6),
    )
    return {"t": sent.thread_id, "f": Attachment.objects.get(thread_id=sent.thread_id).id}


@pytest.fixture
def organiser_ids(world):
    from healthspace.accounts.actors import actor_for_user
    from healthspace.organiser import services
    from healthspace.organiser.measures import Measure

    _, users, _ = world
    owner = users["owner"]
    actor, later = actor_for_user(owner), now() + timedelta(days=3)
    common = {"actor": actor, "owner_id": owner.pk}
    return {
        "r": services.reading_add(
            **common,
            measure=Measure.BLOOD_PRESSURE,
            taken_at=now() - timedelta(hours=1),
            values={"systolic": 128, "diastolic": 82},
            entered={"unit": "mmHg"},
            note=ORGANISER_MARK,
        ),
        "a": services.appointment_add(**common, starts_at=later, what=ORGANISER_MARK),
        "n": services.note_add(**common, title=ORGANISER_MARK, text=ORGANISER_MARK),
        "m": services.medicine_add(**common, name=ORGANISER_MARK),
    }


@pytest.fixture
def owned(world) -> dict[str, object]:
    """The owner's allergy, a correction request about it, and an access need they added."""
    from healthspace.accounts.actors import actor_for_user
    from healthspace.corrections.additions import addition_put
    from healthspace.corrections.services import correction_request
    from healthspace.records.models import ScrItem, Section

    patient, users, _ = world
    actor = actor_for_user(users["owner"])
    item = ScrItem.objects.filter(patient=patient, section=Section.ALLERGIES).first()
    request_id = correction_request(actor=actor, item_id=item.pk, wrong="Not my allergy")
    addition_id = addition_put(actor=actor, kind="access-needs", option_code="braille")
    return {"i": item.pk, "c": request_id, "d": addition_id}


@pytest.fixture
def sharing_ids(world) -> dict[str, object]:
    """The owner's accepted grant to the grantee, a share code, and a proxy request."""
    from healthspace.accounts.actors import actor_for_user
    from healthspace.consent.models import Grant
    from healthspace.consent.sharing import services

    patient, users, _ = world
    owner, actor = users["owner"], actor_for_user(users["owner"])
    grant = services.grant_create(
        actor=actor,
        user_id=owner.pk,
        email=users["grantee"].username,
        sections=["medications", "allergies"],
        until=now().date() + timedelta(days=30),
    )
    services.grant_answer(user=users["grantee"], grant_id=grant.id, accept=True)
    code = services.share_code_create(
        actor=actor, user_id=owner.pk, profession="pharmacist", minutes=30
    )
    services.proxy_request(
        actor=actor_for_user(users["other-patient"]),
        user_id=users["other-patient"].pk,
        nhs_number=patient.nhs_number,
        birth_date=patient.birth_date,
        basis="adult-lacks-capacity",
        patient_label="Owner",
    )
    proxy = Grant.objects.get(kind="proxy")
    return {"g": grant.id, "s": code.code.id, "y": proxy.id}


def _client(name, users, patient: Patient) -> Client:
    if name == "anonymous":
        return Client()
    user = users[name]
    client = signed_in_client(user, second_factor="passkey" if name in ROLES else "totp")
    if name in ROLES:
        born = patient.birth_date
        client.post(
            "/staff/",
            {
                "nhs_number": format_spaced(patient.nhs_number),
                "birth_day": born.day,
                "birth_month": born.month,
                "birth_year": born.year,
            },
        )
        if name == "clinician-given":
            client.post(f"/staff/patient/{patient.id}/permission/", {"answer": "given"})
    return client


def _label(name, users) -> str | None:
    if name == "anonymous":
        return None
    kind = "staff" if name in ROLES else "patient"
    return f"{kind}:user:{users[name].pk}"


@pytest.fixture
def download_ids(world, organiser_ids) -> dict[str, object]:
    """The owner's download of everything, ready (it holds the owner's organiser entry)."""
    from healthspace.notify.testing import run_due_tasks
    from healthspace.portability.downloads import request

    _, users, _ = world
    row = request(user=users["owner"], what="fhir")
    run_due_tasks()
    return {"x": row.id}


@pytest.mark.parametrize("actor", ACTORS)
def test_every_patient_data_url_as_every_role(
    world, owned, organiser_ids, thread_ids, download_ids, sharing_ids, actor
):
    patient, users, other = world
    client = _client(actor, users, patient)
    label = _label(actor, users)
    wrong = []
    for method, template, allowed, *data in GRID:
        path = template.format(
            p=patient.id,
            q=other,
            **owned,
            **organiser_ids,
            **thread_ids,
            **download_ids,
            **sharing_ids,
        )
        # a page about one record (or one of its threads) is refused in that record's
        # trail; a list page in the refused person's own
        of_owner = any(f"{{{k}}}" in template for k in ("p", "t", *owned))
        about = patient.id if of_owner else other if "{q}" in template else None
        scope = {"patient_id": about} if about else {}
        denied = AuditEvent.objects.filter(outcome="denied", actor=label or "-", **scope)
        before, anyone_before = denied.count(), AuditEvent.objects.filter(outcome="denied").count()
        posted = data[0] if data else {"answer": "refused"}
        response = client.post(path, posted) if method == "POST" else client.get(path)
        body = response.content.decode(errors="replace")
        if actor in allowed:
            if ORGANISER_MARK in body and actor != "owner":
                wrong.append(f"{method} {path}: {actor} was shown the owner's organiser")
            if response.status_code not in (200, 302):
                wrong.append(f"{method} {path}: allowed for {actor}, got {response.status_code}")
            if AuditEvent.objects.filter(outcome="denied").count() != anyone_before:
                wrong.append(f"{method} {path}: allowed for {actor}, but a refusal was audited")
            continue
        if format_spaced(patient.nhs_number) in body or patient.nhs_number in body:
            wrong.append(f"{method} {path}: {actor} was shown the patient's NHS number")
        if ORGANISER_MARK in body:
            wrong.append(f"{method} {path}: {actor} was shown the owner's organiser")
        if response.status_code == 200 and path.startswith(("/staff/", "/organiser/")):
            wrong.append(f"{method} {path}: {actor} got a page")
        if path.startswith("/fhir/") and response.status_code != 401:
            wrong.append(f"{method} {path}: {actor}'s session got {response.status_code}, not 401")
        if path.startswith("/staff/") and label is not None and denied.count() == before:
            wrong.append(f"{method} {path}: {actor}'s refusal was not audited")
    assert not wrong, "\n".join(wrong)


def test_the_owners_pages_show_another_patient_only_their_own_record(world):
    patient, users, _ = world
    client = _client("other-patient", users, patient)
    for path in (
        "/record/",
        "/record/consent/",
        "/record/access/who-has-looked/",
        "/record/corrections/",
        "/record/additions/",
    ):
        body = client.get(path).content.decode()
        assert format_spaced(patient.nhs_number) not in body
    assert not AuditEvent.objects.filter(
        patient_id=patient.id, actor=_label("other-patient", users)
    ).exists()
