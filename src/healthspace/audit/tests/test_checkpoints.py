"""Signed checkpoints and the `healthspace audit` command."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from io import StringIO

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command

from healthspace.audit import checkpoints
from healthspace.audit.checkpoints import checkpoint_create, checkpoint_hash
from healthspace.audit.models import AuditCheckpoint
from healthspace.audit.tests.conftest import TEST_SEED, record
from healthspace.audit.verify import verify_database

pytestmark = pytest.mark.django_db

PUBLIC = Ed25519PrivateKey.from_private_bytes(TEST_SEED).public_key()


def run(*args) -> str:
    out = StringIO()
    call_command("audit", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_first_checkpoint_covers_every_chain_and_starts_the_checkpoint_chain():
    a, b = uuid.uuid4(), uuid.uuid4()
    ea, eb = record(a), record(b)
    cp = checkpoint_create()
    assert cp.heads == {str(a): [1, ea.hash], str(b): [1, eb.hash]}
    assert cp.previous_checkpoint_hash == "0" * 64
    assert cp.key_id == checkpoints.key_id(PUBLIC)


def test_later_checkpoints_cover_chains_changed_since_and_chain_to_the_previous(monkeypatch):
    from healthspace.audit import services

    t = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

    def at(moment):
        monkeypatch.setattr(services, "now", lambda: moment)
        monkeypatch.setattr(checkpoints, "now", lambda: moment)

    a, b = uuid.uuid4(), uuid.uuid4()
    at(t)
    record(a)
    record(b)
    at(t + checkpoints.OVERLAP * 2)
    first = checkpoint_create()
    at(t + checkpoints.OVERLAP * 3)
    e = record(a)
    second = checkpoint_create()
    assert second.heads == {str(a): [2, e.hash]}
    assert second.previous_checkpoint_hash == checkpoint_hash(first)
    assert set(checkpoint_create(full=True).heads) == {str(a), str(b)}
    assert verify_database().ok


def test_heads_updated_just_before_the_previous_checkpoint_are_attested_again(monkeypatch):
    # A transaction that moved a head just before a checkpoint may commit just after it.
    a = uuid.uuid4()
    record(a)
    checkpoint_create()
    assert set(checkpoint_create().heads) == {str(a)}


def test_a_checkpoint_needs_the_signing_key(settings):
    settings.HEALTHSPACE_AUDIT_SIGNING_KEY = None
    with pytest.raises(CommandError, match="HEALTHSPACE_AUDIT_SIGNING_KEY"):
        run("checkpoint")
    assert not AuditCheckpoint.objects.exists()


def test_without_a_key_chains_verify_but_checkpoints_are_not_trusted(settings):
    record(uuid.uuid4())
    checkpoint_create()
    settings.HEALTHSPACE_AUDIT_SIGNING_KEY = None
    with pytest.raises(CommandError, match="not a trusted key"):
        run("verify")
    AuditCheckpoint.objects.all().delete()
    assert run("verify").endswith(": OK\n")


def test_checkpoint_command_prints_what_to_keep_off_box():
    record(uuid.uuid4())
    line = json.loads(run("checkpoint"))
    cp = AuditCheckpoint.objects.get()
    assert line["checkpoint_id"] == cp.pk
    assert line["checkpoint_hash"] == checkpoint_hash(cp)
    assert line["signature"] == cp.signature and line["chains"] == 1
    assert run("verify", "--expect-checkpoint", line["checkpoint_hash"]).endswith(": OK\n")


def test_public_key_command_prints_the_key_that_verifies_checkpoints():
    text, key_line = run("public-key").splitlines()
    raw = base64.b64decode(text)
    assert raw == checkpoints.public_key_raw(PUBLIC)
    assert key_line == f"key id {checkpoints.key_id(PUBLIC)}"
    record(uuid.uuid4())
    checkpoint_create()
    assert "1 checkpoints: OK" in run("verify", "--public-key", text)


def test_verify_against_an_off_box_key_rejects_checkpoints_from_a_replaced_key(settings):
    # Someone with the server (and its settings) swaps in their own key and re-signs:
    # verification with the key kept off-box still fails.
    off_box = checkpoints.public_key_text(PUBLIC)
    record(uuid.uuid4())
    settings.HEALTHSPACE_AUDIT_SIGNING_KEY = bytes(32)
    checkpoint_create()
    assert run("verify").endswith(": OK\n")
    with pytest.raises(CommandError, match="not a trusted key"):
        run("verify", "--public-key", off_box)


def test_verify_rejects_a_malformed_public_key():
    with pytest.raises(CommandError, match="--public-key"):
        run("verify", "--public-key", "not-a-key")
