"""Demo data and demo logins for ``healthspace up``. Never run against real data."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Count, Q

from healthspace.access.actors import Actor
from healthspace.access.roles import Activity, Role
from healthspace.accounts.models import Account, PatientLink
from healthspace.core.clock import now
from healthspace.records import synthetic
from healthspace.records.importer import ImportReport, import_paths
from healthspace.records.models import Patient, Section
from healthspace.records.services import organisation_get_or_create, patient_register_practice

DEMO_DOMAIN = "demo.healthspace.test"
SYNTHEA_FOLDERS = ("synthea-smart-generated-sample-data", "synthea-jddamore-ips-server")
DEMO_PRACTICE = ("Y00001", "Riverside Medical Practice")
# Loudly marked demo passwords: printed by `healthspace up`, only for the demo database.
DEMO_PASSWORD_PATIENT = "demo-patient-not-a-real-password"  # noqa: S105 (demo)
DEMO_PASSWORD_CLINICIAN = "demo-clinician-not-a-real-password"  # noqa: S105 (demo)
# Demo patient 1 has an authenticator app with this secret (printed by `healthspace up`),
# so the demo shows a login with a second factor without setting one up first.
DEMO_TOTP_SECRET = "HSDEMOHSDEMOHSDEMOHSDEMOHSDEMO22"  # noqa: S105 (demo)


# Staff of the demo: (login name, roles and activities, organisation or None for the
# demo practice). The A&E clinician is outside every patient's care team: they show the
# self-claimed relationship and emergency access.
DEMO_STAFF: list[tuple[str, tuple[str, ...], tuple[str, str] | None]] = [
    ("clinician", (Role.CLINICIAN, Activity.ADDITIONAL_INFORMATION), None),
    ("a-and-e", (Role.CLINICIAN,), ("RXD01", "Riverside Hospital Emergency Department")),
    ("clerk", (Role.REGISTRATION_CLERK,), None),
    ("privacy", (Role.PRIVACY_OFFICER,), None),
    ("operator", (Role.OPERATOR,), None),  # usage statistics: /operator/statistics/
]


@dataclass
class DemoLogin:
    email: str
    password: str
    role: str
    nhs_number: str | None = None
    totp_secret: str | None = None
    birth_date: date | None = None  # staff find a patient by NHS number and birth date


def load_demo_records() -> tuple[str, ImportReport | None]:
    """Import Synthea patients when the shared data is there, else a synthetic set."""
    if Patient.objects.exists():
        return "existing records kept", None
    base = Path(settings.HEALTHSPACE_DEMO_DATA)
    folders = [base / f for f in SYNTHEA_FOLDERS if (base / f).is_dir()]
    actor = Actor.system("demo")
    if folders:
        report = import_paths(folders, assign_nhs_numbers=True, actor=actor)
        return f"Synthea patients from {base}", report
    with tempfile.TemporaryDirectory() as tmp:
        for i, bundle in enumerate(synthetic.population(8)):
            (Path(tmp) / f"synthetic-{i:02d}.json").write_text(json.dumps(bundle))
        report = import_paths([Path(tmp)], source=synthetic.SOURCE, actor=actor)
    return "generated synthetic patients (shared Synthea data not found)", report


def ensure_demo_logins(count: int = 3, *, with_totp: bool = False) -> list[DemoLogin]:
    user_model = get_user_model()
    logins: list[DemoLogin] = []
    practice = organisation_get_or_create(ods_code=DEMO_PRACTICE[0], name=DEMO_PRACTICE[1])
    with transaction.atomic():
        for pid in Patient.objects.filter(registered_practice__isnull=True).values_list(
            "id", flat=True
        ):
            patient_register_practice(patient_id=pid, practice=practice)
        # Demo patients with something in the core sections, so the first look shows a record.
        candidates = (
            Patient.objects.annotate(
                core=Count(
                    "items",
                    filter=Q(items__section__in=[Section.ALLERGIES, Section.MEDICATIONS]),
                ),
                allergies=Count("items", filter=Q(items__section=Section.ALLERGIES)),
            )
            .filter(core__gt=0)
            .order_by("-allergies", "nhs_number")[:count]
        )
        for n, patient in enumerate(candidates, 1):
            email = f"patient{n}@{DEMO_DOMAIN}"
            user = user_model.objects.filter(username=email).first()
            if user is None:
                user = user_model.objects.create_user(
                    username=email, email=email, password=DEMO_PASSWORD_PATIENT
                )
            if (
                not hasattr(user, "patient_link")
                and not PatientLink.objects.filter(patient=patient).exists()
            ):
                PatientLink.objects.create(
                    user=user,
                    patient=patient,
                    verified_at=now(),
                    verified_by="demo set-up",
                    method=PatientLink.Method.DEMO,
                )
            Account.objects.get_or_create(
                user=user, defaults={"kind": Account.Kind.PATIENT, "email_confirmed_at": now()}
            )
            linked = (
                PatientLink.objects.filter(user=user)
                .values_list("patient__nhs_number", "patient__birth_date")
                .first()
            ) or (None, None)
            secret = None
            if n == 1 and with_totp:
                from healthspace.accounts.factors.services import totp_demo_device

                totp_demo_device(user, DEMO_TOTP_SECRET)
                secret = DEMO_TOTP_SECRET
            logins.append(
                DemoLogin(email, DEMO_PASSWORD_PATIENT, "patient", linked[0], secret, linked[1])
            )
        for local, roles, org in DEMO_STAFF:
            organisation = (
                practice
                if org is None
                else organisation_get_or_create(ods_code=org[0], name=org[1])
            )
            email = f"{local}@{DEMO_DOMAIN}"
            user = user_model.objects.filter(username=email).first()
            if user is None:
                user = user_model.objects.create_user(
                    username=email, email=email, password=DEMO_PASSWORD_CLINICIAN
                )
            Account.objects.get_or_create(
                user=user,
                defaults={
                    "kind": Account.Kind.STAFF,
                    "email_confirmed_at": now(),
                    "organisation": organisation,
                },
            )
            for role in roles:
                user.groups.add(Group.objects.get_or_create(name=role)[0])
            logins.append(DemoLogin(email, DEMO_PASSWORD_CLINICIAN, local))
    return logins


def ensure_demo_portal(email: str) -> bool:
    """Give one demo patient a lived-in space on first run: three months of home blood
    pressure, weight and height (some shared with the care team), an appointment next
    week with a reminder, a note, their own medicines list and an access need. Through
    the real services (decided and audited), so the demo shows what patients see.
    Returns False when there was nothing to do (already there, or no such login)."""
    from datetime import timedelta

    from healthspace.access.context import ConsentState
    from healthspace.accounts.actors import actor_for_user
    from healthspace.consent.models import Source
    from healthspace.consent.services import consent_change
    from healthspace.corrections.additions import addition_put
    from healthspace.organiser import services as organiser
    from healthspace.organiser.measures import Measure
    from healthspace.organiser.models import Reading

    user = get_user_model().objects.filter(username=email).first()
    if user is None or Reading.objects.filter(owner_id=user.pk).exists():
        return False
    actor = actor_for_user(user)
    common = {"actor": actor, "owner_id": user.pk}
    today = now().replace(hour=8, minute=30, second=0, microsecond=0)
    organiser.reading_add(
        **common,
        measure=Measure.HEIGHT,
        taken_at=today - timedelta(days=95),
        values={"cm": 168},
        entered={"unit": "cm"},
    )
    # home readings twice a week, settling after a change of medicine half way through
    bp_ids = []
    for n in range(26):
        day = today - timedelta(days=91 - n * 3.5)
        high = n < 13
        systolic = (146 if high else 131) + (n * 7) % 9 - 4
        diastolic = (92 if high else 83) + (n * 5) % 7 - 3
        bp_ids.append(
            organiser.reading_add(
                **common,
                measure=Measure.BLOOD_PRESSURE,
                taken_at=day,
                values={"systolic": systolic, "diastolic": diastolic},
                entered={"unit": "mmHg"},
                note="After a walk" if n == 20 else "",
            )
        )
    for n in range(4):
        organiser.reading_add(
            **common,
            measure=Measure.WEIGHT,
            taken_at=today - timedelta(days=84 - n * 28),
            values={"kg": [82.4, 81.6, 80.9, 80.1][n]},
            entered={"unit": "kg"},
        )
    if actor.patient_id is not None:
        # they agreed to share additional information, so the care team sees what they
        # add and share (the default, implied consent, shows staff the core SCR only)
        consent_change(
            actor=actor,
            patient_id=actor.patient_id,
            new_state=ConsentState.CORE_AND_ADDITIONAL,
            source=Source.PATIENT_ONLINE,
        )
        organiser.readings_share_set(
            **common, measure=Measure.BLOOD_PRESSURE, shown_ids=bp_ids, shared_ids=bp_ids[-6:]
        )
        addition_put(actor=actor, kind="access-needs", option_code="step-free")
    start = (today + timedelta(days=7)).replace(hour=10, minute=15)
    organiser.appointment_add(
        **common,
        starts_at=start,
        what="Blood pressure review with the practice nurse",
        where="Riverside Medical Practice",
        notes="Bring the home readings (download them as a spreadsheet).",
        reminder="1d",
        reminder_at=start - timedelta(days=1),
    )
    organiser.note_add(
        **common,
        title="Questions for the nurse",
        text="Is the new dose working? Should I keep measuring twice a week?",
    )
    organiser.medicine_add(
        **common,
        name="Amlodipine 5mg tablets",
        how="One in the morning",
        what_for="Blood pressure",
        since="August",
    )
    organiser.medicine_add(
        **common, name="Vitamin D 10 micrograms", how="One a day in winter", what_for="Bones"
    )
    if actor.patient_id is not None:
        _demo_conversation(actor, user.pk)
        _demo_sharing(actor, user.pk)
    return True


def _demo_sharing(patient_actor, user_id: int) -> None:
    """Demo patient 1 shares medications, allergies and their readings with demo patient
    2 (say, a daughter who helps with their medicines) for three months; patient 2 has
    accepted, so logging in as patient 2 shows "Records shared with you"."""
    from datetime import timedelta

    from healthspace.consent.sharing import services as sharing

    grantee = get_user_model().objects.filter(username=f"patient2@{DEMO_DOMAIN}").first()
    if grantee is None:
        return
    grant = sharing.grant_create(
        actor=patient_actor,
        user_id=user_id,
        email=grantee.username,
        sections=["medications", "allergies", "organiser"],
        until=now().date() + timedelta(days=90),
    )
    sharing.grant_answer(user=grantee, grant_id=grant.id, accept=True)


def ensure_demo_usage(emails: list[str]) -> int:
    """Some history for the usage statistics (docs/statistics.md): each demo patient with a
    record looks at it a few times, through the same selector as the web page (decided and
    audited). Call once, on the first run. Returns the number of views made."""
    from healthspace.accounts.actors import actor_for_user
    from healthspace.records.selectors import scr_for

    views = 0
    users = get_user_model().objects.filter(username__in=emails).order_by("username")
    for times, user in zip((3, 2, 1), users, strict=False):
        actor = actor_for_user(user)
        if actor.patient_id is None:
            continue
        for _ in range(times):
            scr_for(actor=actor, patient_id=actor.patient_id)
            views += 1
    return views


def _demo_conversation(patient_actor, user_id: int) -> None:
    """A question to the practice, answered by the demo registration clerk (its email
    notice is queued like any other: the worker writes it to the demo outbox)."""
    from healthspace.accounts.actors import actor_for_user
    from healthspace.messaging.services import message_send, thread_open_by_patient

    sent = thread_open_by_patient(
        actor=patient_actor,
        user_id=user_id,
        subject="Home blood pressure readings",
        body=(
            "I have shared my last six home readings. The nurse asked me to take them "
            "twice a week. Are they good enough for my review next week?"
        ),
    )
    clerk = get_user_model().objects.filter(username=f"clerk@{DEMO_DOMAIN}").first()
    if clerk is None:
        return
    message_send(
        actor=actor_for_user(clerk),
        user_id=clerk.pk,
        thread_id=sent.thread_id,
        body=(
            "Thank you, the nurse can see them. Please keep taking them twice a week and "
            "bring any questions to your review."
        ),
    )
