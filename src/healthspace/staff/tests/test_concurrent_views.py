"""20 clinicians viewing 20 patients' records at once, through the real read path
(decide, decryption, chained audit event): every chain verifies, and no view waits on a
view of another patient (PostgreSQL row locks; SQLite serialises every writer)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections

from healthspace.access.actors import Actor
from healthspace.access.context import AccessContext, Permission, Relationship
from healthspace.access.roles import Role
from healthspace.audit.models import AuditEvent
from healthspace.audit.verify import verify_database
from healthspace.records.models import Patient
from healthspace.staff.selectors import StaffContext
from healthspace.staff.services import staff_scr_view

THREADS = PATIENTS = 20

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL row locks; SQLite serialises all writers",
    ),
]


@pytest.fixture
def twenty_patients(write_bundles):
    from healthspace.records import synthetic
    from healthspace.records.importer import import_paths

    report = import_paths([write_bundles(synthetic.population(PATIENTS))], source=synthetic.SOURCE)
    assert report.ok, report.errors
    ids = list(Patient.objects.values_list("id", flat=True))
    assert len(ids) == PATIENTS
    return ids


def test_twenty_threads_viewing_twenty_patients_keep_every_chain_whole(twenty_patients):
    context = StaffContext(
        AccessContext(relationship=Relationship.CARE_TEAM, permission=Permission.GIVEN)
    )

    def clinician(n: int) -> int:
        actor = Actor("staff", f"user:{n}", roles=frozenset({Role.CLINICIAN}), organisation="Y1")
        try:
            for i in range(PATIENTS):
                staff_scr_view(
                    actor=actor, patient_id=twenty_patients[(i + n) % PATIENTS], context=context
                )
            return PATIENTS
        finally:
            connections.close_all()

    with ThreadPoolExecutor(THREADS) as pool:
        assert sum(pool.map(clinician, range(THREADS))) == THREADS * PATIENTS

    assert AuditEvent.objects.filter(action="scr.view", outcome="success").count() == 400
    report = verify_database()
    assert report.ok, report.first
