"""Backup (`pg_dump -Fc`) and restore (`pg_restore` into a fresh database): the restored
service verifies its audit chains, and a patient crypto-shredded after the backup stays
unreadable in the restored copy.

Two patients use the real service (a login, a reading, their record); the audit heads are
signed (`healthspace audit checkpoint`); the main database is dumped. Then patient A asks
for their record to be deleted through the consent pages, and the privacy officer grants
it (docs/portability.md): A's SCR key is destroyed in the key store, which no backup of
the main database holds (docs/keystore.md). The dump is restored into a fresh database
and a HealthSpace is pointed at it, beside the live key store:

- `healthspace audit verify` passes on the restored copy (its chains and signed
  checkpoint are intact);
- none of A's clinical text is in clear anywhere in it (every column of every table);
- A's items are there but none opens (KeyDestroyed), and `healthspace export` of A
  fails; B's open and export, so the check can fail.
"""

from __future__ import annotations

from healthspace.ops import backups
from tests.reliability.harness import PG_BIN, AppServer, Browser, Service
from tests.reliability.load import Patient, write

OFFICER = "privacy@demo.healthspace.test"


def test_a_restored_backup_verifies_and_keeps_a_patient_shredded_after_it_unreadable(
    new_service, cluster, capsys
):
    service = new_service("backup")
    seeded = service.script("seed", {"patients": 2})
    a, b = seeded["users"]
    server = AppServer(service, log_name="backup")
    server.start()
    browser = Browser(server.base)
    browser.log_in(a["email"], a["password"], a["totp"])
    assert write(browser, Patient(a), "reading").acknowledged
    known = set(service.script("known-texts", {"patient_id": a["patient_id"]})["texts"])
    assert len(known) >= 3, known
    service.command("audit", "checkpoint")

    main = {"HOST": "127.0.0.1", "PORT": cluster.port, "USER": "postgres", "PASSWORD": ""}
    backup = service.data_dir / f"{service.database}-{server.port}.dump"
    backups.pg_dump_custom({**main, "NAME": service.database}, backup, tool=cluster.tool("pg_dump"))

    # after the backup: A asks for deletion on the consent pages; it is granted
    asked = browser.post("/record/consent/", {"choice": "deletion-requested"})
    assert asked.status_code == 200, asked.status_code
    confirmed = browser.post("/record/consent/confirm/", {"choice": "deletion-requested"})
    assert confirmed.headers.get("Location", "").endswith("/record/consent/saved/")
    granted = service.script("grant-deletion", {"officer": OFFICER, "patient_id": a["patient_id"]})
    assert granted["status"] == "granted"
    server.stop()
    ids = [a["patient_id"], b["patient_id"]]
    live = service.script("readable", {"patient_ids": ids})
    assert live[a["patient_id"]]["opened"] == 0 and live[b["patient_id"]]["opened"] > 0

    with backups.pg_restored({**main, "NAME": service.database}, backup, bin_dir=str(PG_BIN)) as db:
        restored = Service(
            cluster,
            db.info.dbname,
            service.data_dir,
            service.secrets,
            extra_env={"HEALTHSPACE_KEYSTORE_URL": cluster.url(service.keystore)},
        )
        verify = restored.command("audit", "verify", check=False)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert "vault_data_key" not in backups.tables(db)  # the keys were never in it
        assert not backups.clear_text_found(db, known)
        got = restored.script("readable", {"patient_ids": ids})
        shredded, kept = got[a["patient_id"]], got[b["patient_id"]]
        assert shredded["items"] > 0 and shredded["opened"] == 0, shredded
        assert shredded["error"] == "KeyDestroyed", shredded
        assert kept["items"] > 0 and kept["opened"] == kept["items"], kept
        out = service.data_dir / "export.json"
        refused = restored.command("export", a["nhs_number"], "-o", str(out), check=False)
        assert refused.returncode != 0
        assert not [t for t in known if t in refused.stdout + refused.stderr]
        exported = restored.command("export", b["nhs_number"], "-o", str(out), check=False)
        assert exported.returncode == 0, exported.stderr[-2000:]
        events = db.execute("SELECT count(*) FROM audit_event").fetchone()[0]
    with capsys.disabled():
        print(
            f"\n[reliability] pg_dump/pg_restore: restored copy ({events} audit events) "
            f"verifies; patient shredded after the backup: {shredded['items']} items, 0 open "
            f"(KeyDestroyed), export refused; the other: {kept['opened']}/{kept['items']} open"
        )
