"""Closing an account: its own data shredded and deleted, the SCR kept, a signed receipt
that verifies (and fails when changed); a granted deletion request shreds the SCR."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from healthspace.access.actors import Actor
from healthspace.accounts.actors import actor_for_user
from healthspace.accounts.models import Account, PatientLink
from healthspace.accounts.portal import portal_cipher_for
from healthspace.audit.models import AuditEvent
from healthspace.core.errors import NotFound
from healthspace.messaging.models import Message, Thread
from healthspace.organiser.models import Reading
from healthspace.portability import receipts
from healthspace.portability.closure import account_close
from healthspace.portability.models import DeletionReceipt
from healthspace.portability.services import export_fhir_bundle
from healthspace.portability.signals import account_closing
from healthspace.records.models import ScrItem
from healthspace.vault import services as vault
from healthspace.vault.crypto import KeyDestroyed, VaultError
from healthspace.vault.models import DataKey

pytestmark = pytest.mark.django_db


def _close(link):
    return account_close(actor=actor_for_user(link.user), user=link.user)


def test_closing_shreds_the_accounts_own_data_and_keeps_the_scr(person):
    user_id, patient_id = person.user_id, person.patient_id
    subject = Account.objects.get(user_id=user_id).portal_subject
    items = ScrItem.objects.filter(patient_id=patient_id).count()
    seen = []

    def receiver(sender, *, user_id, patient_id, **kwargs):
        from django.db import connection

        seen.append((user_id, patient_id, connection.in_atomic_block))
        return {"sharing_grants": 2}

    account_closing.connect(receiver)
    try:
        receipt = _close(person)
    finally:
        account_closing.disconnect(receiver)
    assert seen == [(user_id, patient_id, True)]  # inside the closure's transaction
    assert receipt["deleted"]["organiser_readings"] == 2
    assert receipt["deleted"]["message_threads"] == 1 and receipt["deleted"]["messages"] == 1
    assert receipt["deleted"]["sharing_grants"] == 2
    assert receipt["keys_destroyed"][0]["kind"] == "portal"
    assert receipt["keys_destroyed"][0]["key_id"] == str(subject)
    assert not Reading.objects.filter(owner_id=user_id).exists()
    assert not Thread.objects.filter(owner_id=user_id).exists() and not Message.objects.exists()
    assert DataKey.objects.get(patient_id=subject).wrapped_key is None
    with pytest.raises(KeyDestroyed):
        portal_cipher_for(user_id=user_id)
    user = get_user_model().objects.get(pk=user_id)
    assert not user.is_active and not user.has_usable_password() and user.email == ""
    assert not PatientLink.objects.filter(user_id=user_id).exists()
    # the SCR stays with the NHS
    assert ScrItem.objects.filter(patient_id=patient_id).count() == items
    vault.cipher_for(patient_id=patient_id)
    assert AuditEvent.objects.filter(action="account.close", patient_id=patient_id).count() == 1
    # the receipt names no clinical content
    text = receipts.dumps(receipt)
    assert "PORTABILITY" not in text and person.patient.nhs_number not in text
    assert DeletionReceipt.objects.get(pk=receipt["receipt_id"]).document == text


def test_a_receiver_that_fails_rolls_the_closure_back(person):
    def receiver(**kwargs):
        raise RuntimeError("sharing is down")

    account_closing.connect(receiver)
    try:
        with pytest.raises(RuntimeError):
            _close(person)
    finally:
        account_closing.disconnect(receiver)
    assert Reading.objects.filter(owner_id=person.user_id).count() == 2
    portal_cipher_for(user_id=person.user_id)  # the key is still there
    assert get_user_model().objects.get(pk=person.user_id).is_active


def test_the_receipt_verifies_and_a_changed_one_fails(person, tmp_path, capsys):
    receipt = _close(person)
    good = tmp_path / "receipt.json"
    good.write_text(receipts.dumps(receipt))
    call_command("verify-receipt", str(good))
    assert "receipt valid" in capsys.readouterr().out

    for change in (
        lambda r: r["deleted"].__setitem__("organiser_readings", 0),
        lambda r: r.__setitem__("issued_at", "2020-01-01T00:00:00.000000+00:00"),
        lambda r: r["keys_destroyed"].clear(),
        lambda r: r.__setitem__("extra", 1),
    ):
        tampered = json.loads(good.read_text())
        change(tampered)
        bad = tmp_path / "tampered.json"
        bad.write_text(json.dumps(tampered))
        with pytest.raises(CommandError, match="NOT valid"):
            call_command("verify-receipt", str(bad))
    # signed by another key: refused against the configured one, accepted with its own
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    with pytest.raises(CommandError, match="another key"):
        call_command(
            "verify-receipt",
            str(good),
            "--public-key",
            receipts.public_key_text(Ed25519PrivateKey.generate().public_key()),
        )
    call_command("verify-receipt", str(good), "--public-key", receipts.public_key_text())


def test_the_command_exits_non_zero_on_a_tampered_receipt(person, tmp_path):
    import subprocess
    import sys

    receipt = _close(person)
    receipt["deleted"]["messages"] = 99
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(receipt))
    from django.conf import settings

    env = {
        "HEALTHSPACE_RECEIPT_SIGNING_KEY": __import__("base64")
        .urlsafe_b64encode(settings.HEALTHSPACE_RECEIPT_SIGNING_KEY)
        .decode(),
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "HEALTHSPACE_DATA_DIR": str(tmp_path),
    }
    run = subprocess.run(
        [sys.executable, "-m", "healthspace.cli", "verify-receipt", str(bad)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert run.returncode != 0 and "NOT valid" in run.stderr


def test_granting_a_deletion_request_shreds_the_scr_with_a_receipt(person):
    from healthspace.access.context import ConsentState
    from healthspace.cases.services import deletion_request_decide
    from healthspace.consent.models import Source
    from healthspace.consent.services import consent_change
    from healthspace.staff.testing import make_staff_user

    patient_id = person.patient_id
    me = actor_for_user(person.user)
    consent_change(
        actor=me,
        patient_id=patient_id,
        new_state=ConsentState.DELETION_REQUESTED,
        source=Source.PATIENT_ONLINE,
    )
    officer_user = make_staff_user("privacy-officer", ods="Y00001")
    officer = actor_for_user(officer_user)
    items = ScrItem.objects.filter(patient_id=patient_id).count()
    request = deletion_request_decide(
        actor=officer, patient_id=patient_id, grant=True, note="Asked"
    )
    assert request.status == "granted"
    row = DeletionReceipt.objects.get(patient_id=patient_id)
    receipt = receipts.verify(row.document)
    assert receipt["kind"] == "record-deletion"
    assert receipt["deleted"]["scr_items"] == items > 0
    assert receipt["keys_destroyed"] == [
        {
            "kind": "scr",
            "key_id": str(patient_id),
            "destroyed_at": receipt["keys_destroyed"][0]["destroyed_at"],
        }
    ]
    with pytest.raises(VaultError):
        vault.cipher_for(patient_id=patient_id)
    with pytest.raises(NotFound):
        export_fhir_bundle(actor=Actor.system("export"), patient_id=patient_id)
    # the account itself is not closed by it
    assert Reading.objects.filter(owner_id=person.user_id).count() == 2
    # the privacy officer and the patient can download the receipt; the patient's
    # downloads are the organiser's only now
    from healthspace.accounts.sessions.testing import signed_in_client

    po = signed_in_client(officer_user, second_factor="passkey")
    page = po.get(f"/staff/privacy/deletions/{patient_id}/").content.decode()
    assert "Download the signed deletion receipt" in page
    got = po.get(f"/staff/privacy/deletions/{patient_id}/receipt.json")
    assert receipts.verify(got.content)["receipt_id"] == receipt["receipt_id"]
    mine = signed_in_client(person.user)
    page = mine.get("/account/your-data/").content.decode()
    assert "was deleted, as you asked" in page and 'value="pdf"' not in page
    got = mine.get("/account/your-data/deletion-receipt.json")
    assert receipts.verify(got.content)["receipt_id"] == receipt["receipt_id"]
    assert mine.post("/account/your-data/", {"format": "pdf"}).status_code == 400


def test_refusing_a_deletion_request_shreds_nothing(person):
    from healthspace.access.context import ConsentState
    from healthspace.cases.services import deletion_request_decide
    from healthspace.consent.models import Source
    from healthspace.consent.services import consent_change
    from healthspace.staff.testing import make_staff_user

    consent_change(
        actor=actor_for_user(person.user),
        patient_id=person.patient_id,
        new_state=ConsentState.DELETION_REQUESTED,
        source=Source.PATIENT_ONLINE,
    )
    officer = actor_for_user(make_staff_user("privacy-officer", ods="Y00001"))
    deletion_request_decide(actor=officer, patient_id=person.patient_id, grant=False, note="No")
    vault.cipher_for(patient_id=person.patient_id)
    assert not DeletionReceipt.objects.exists()
