"""The service's final purge (`healthspace service purge --yes-destroy-everything`).

Crypto-shreds every data key in the key store (both kinds: each patient's ``scr`` key and
each account's ``portal`` key), ends every session and OAuth token, disables every login,
records the service as purged (audited), and writes a closure report (JSON and text).
Every ciphertext, in the database and in every backup of it ever taken, is then
unreadable: the keys never lived in the main database (docs/keystore.md). The audit
trail itself is kept and stays verifiable (`healthspace audit verify`).

Run again after a crash, it finishes the job: keys already destroyed stay destroyed.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db import transaction

from healthspace.access.actors import Actor
from healthspace.accounts.models import Account, UserSession
from healthspace.audit.models import AuditEvent
from healthspace.audit.verify import verify_database
from healthspace.core.clock import now
from healthspace.core.errors import InvalidInput
from healthspace.ops import lifecycle
from healthspace.records.models import Patient
from healthspace.vault import services as keys

PURGER = Actor.system("service-purge")


@dataclass
class ClosureReport:
    started_at: str
    finished_at: str = ""
    seconds: float = 0.0
    closure_date: str | None = None
    patients: int = 0
    accounts: int = 0
    logins_disabled: int = 0
    sessions_ended: int = 0
    oauth_tokens_revoked: int = 0
    keys_destroyed: dict[str, int] = field(default_factory=dict)
    keys_left_readable: int = 0
    audit_events_kept: int = 0
    audit_verified: bool = False
    audit_summary: str = ""

    def text(self) -> str:
        destroyed = ", ".join(f"{n} {kind}" for kind, n in sorted(self.keys_destroyed.items()))
        return "\n".join(
            [
                "HealthSpace closure report",
                f"  purged: {self.finished_at} (took {self.seconds:.1f}s)",
                f"  closure date announced: {self.closure_date or '-'}",
                f"  patient records: {self.patients}",
                f"  accounts: {self.accounts} (logins disabled: {self.logins_disabled})",
                f"  sessions ended: {self.sessions_ended}; OAuth tokens revoked: "
                f"{self.oauth_tokens_revoked}",
                f"  data keys destroyed: {destroyed or 'none'}; "
                f"keys still readable: {self.keys_left_readable}",
                f"  audit events kept: {self.audit_events_kept} "
                f"(verified: {'yes' if self.audit_verified else 'NO'}; {self.audit_summary})",
            ]
        )


def _revoke_oauth() -> int:
    from oauth2_provider.models import (
        get_access_token_model,
        get_grant_model,
        get_id_token_model,
        get_refresh_token_model,
    )

    count = 0
    for model in (
        get_refresh_token_model(),
        get_access_token_model(),
        get_id_token_model(),
        get_grant_model(),
    ):
        deleted, _ = model.objects.all().delete()
        count += deleted
    return count


def purge(*, confirmed: bool, report_dir: Path | None = None) -> tuple[ClosureReport, Path]:
    """Destroy everything readable. ``confirmed`` must be True (the command's
    ``--yes-destroy-everything``); the service must be read-only first."""
    if not confirmed:
        raise InvalidInput("purge destroys every record for good: confirm it")
    current = lifecycle.status(fresh=True)
    if current.state != lifecycle.ServiceState.READ_ONLY:
        raise InvalidInput(
            "purge only a read-only service (`healthspace service read-only` first); "
            f"it is {current.state.label.lower()}"
        )
    started, clock = now(), time.monotonic()
    report = ClosureReport(
        started_at=started.isoformat(),
        closure_date=current.closure_date.isoformat() if current.closure_date else None,
        patients=Patient.objects.count(),
        accounts=Account.objects.count(),
    )
    # 1. the keys: committed in the key store at once, whatever happens next
    report.keys_destroyed = keys.datakeys_destroy_all()
    report.keys_left_readable = keys.datakeys_live()
    # 2. nobody can log in or stay logged in; no app keeps a token
    with transaction.atomic():
        report.sessions_ended = Session.objects.all().delete()[0]
        UserSession.objects.filter(ended_at__isnull=True).update(
            ended_at=started, ended_reason="service-closed"
        )
        report.logins_disabled = (
            get_user_model().objects.filter(is_active=True).update(is_active=False)
        )
        report.oauth_tokens_revoked = _revoke_oauth()
    # 3. the state, audited with what was done
    lifecycle.purged(
        actor=PURGER,
        note=(
            f"keys destroyed: {sum(report.keys_destroyed.values())}; "
            f"patients: {report.patients}; accounts: {report.accounts}"
        ),
    )
    report.audit_events_kept = AuditEvent.objects.count()
    verified = verify_database()
    report.audit_verified, report.audit_summary = verified.ok, verified.summary()
    report.finished_at = now().isoformat()
    report.seconds = round(time.monotonic() - clock, 3)
    folder = report_dir or Path(settings.HEALTHSPACE_CLOSURE_REPORT_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"closure-report-{started:%Y%m%dT%H%M%SZ}"
    stem.with_suffix(".json").write_text(json.dumps(asdict(report), indent=2, sort_keys=True))
    stem.with_suffix(".txt").write_text(report.text() + "\n")
    return report, stem.with_suffix(".json")
