"""A share code is used once even when many people type it at the same moment (the row
is locked; PostgreSQL only: SQLite serialises every writer, so there is no race)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from healthspace.audit.models import AuditEvent
from healthspace.consent.models import ShareCode
from healthspace.consent.sharing import services
from healthspace.core.errors import InvalidInput


@pytest.mark.django_db(transaction=True)
# SQLite serialises every writer (BEGIN IMMEDIATE): eight threads cannot race there, so
# the test means something only on PostgreSQL, where CI runs it (.ci/run, second suite).
@pytest.mark.skipif(
    "connection.vendor != 'postgresql'",
    reason="needs PostgreSQL row locks; SQLite serialises every writer, so there is no race",
)
def test_a_code_typed_by_eight_people_at_once_opens_for_one(world):
    made = services.share_code_create(
        actor=world.owner_actor(), user_id=world.owner.pk, profession="doctor", minutes=30
    )
    barrier = threading.Barrier(8)
    won: list[int] = []
    errors: list[BaseException] = []

    def use(i: int) -> None:
        try:
            barrier.wait()
            services.share_code_use(
                typed=made.text, viewer_name=f"Dr {i}", viewer_organisation="Clinic"
            )
            won.append(i)
        except InvalidInput:
            pass
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=use, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(won) == 1
    code = ShareCode.objects.get(pk=made.code.id)
    assert code.viewer_name == f"Dr {won[0]}"
    uses = AuditEvent.objects.filter(action="sharing.code-use", patient_id=world.patient_id)
    assert uses.filter(outcome="success").count() == 1
    assert uses.filter(outcome="denied").count() == 7
