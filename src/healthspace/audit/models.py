from django.db import models


class AuditEvent(models.Model):
    """Append-only record of who did what to which patient's record, and why.

    Written by services in the same transaction as the action. ``patient_id`` is not a
    foreign key: the audit outlives the record (deletion keeps a pseudonymous trail).
    ``detail`` holds counts and names of sections, never clinical content.

    Each event is link ``seq`` of a hash chain (``chain_key``: the patient, or the actor
    for events about no patient): ``hash`` covers the event and ``prev_hash``, so an
    edited, deleted or reordered row breaks the chain (see ``audit.chain``, docs/audit.md).
    """

    occurred_at = models.DateTimeField()
    patient_id = models.UUIDField(null=True, blank=True)
    actor = models.CharField(max_length=200)
    action = models.CharField(max_length=64)
    outcome = models.CharField(max_length=16)
    reason = models.CharField(max_length=200)
    detail = models.JSONField(default=dict)
    chain_key = models.CharField(max_length=64)
    seq = models.PositiveBigIntegerField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        db_table = "audit_event"
        indexes = [
            models.Index(fields=["patient_id", "-occurred_at"], name="audit_patient_ts"),
            # usage statistics (ops.stats): counts of one action over a month are a range
            # of this index, never a scan of the whole trail
            models.Index(fields=["action", "occurred_at"], name="audit_action_ts"),
        ]
        constraints = [
            # Also the index the verifier walks (chain_key, seq) and the guard that two
            # concurrent writers can never both append link N to one chain.
            models.UniqueConstraint(fields=["chain_key", "seq"], name="audit_chain_seq_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.outcome} at {self.occurred_at:%Y-%m-%d %H:%M}"


class AuditChainHead(models.Model):
    """The last link of one chain: locked (SELECT ... FOR UPDATE) to append the next.

    One row per chain instead of one global lock, so writers for different patients
    never wait on each other.
    """

    chain_key = models.CharField(max_length=64, primary_key=True)
    seq = models.PositiveBigIntegerField()
    head_hash = models.CharField(max_length=64)
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "audit_chain_head"
        indexes = [models.Index(fields=["updated_at"], name="audit_head_updated")]

    def __str__(self) -> str:
        return f"{self.chain_key} @ {self.seq}"


class AuditCheckpoint(models.Model):
    """A signed statement of chain heads at one moment, itself chained to the previous one.

    Copies kept off the server (with the public key) let a verifier prove that no
    checkpointed event has since been rewritten or truncated, even by someone who can
    recompute every hash in the database.
    """

    created_at = models.DateTimeField()
    # {chain_key: [seq, hash]} for the chains changed since the previous checkpoint.
    heads = models.JSONField()
    heads_digest = models.CharField(max_length=64)
    previous_checkpoint_hash = models.CharField(max_length=64)
    signature = models.CharField(max_length=128)
    key_id = models.CharField(max_length=32)
    # Set on the checkpoint written by `healthspace audit archive --before`: its signed
    # heads are the chains' last archived links (where verification resumes) plus an
    # "archive:YYYY-MM" entry [events, sha256 of the archive file]. Only a finding aid:
    # the verifier trusts the signed heads, never this column (audit.archive).
    archive_before = models.DateField(null=True, blank=True)

    class Meta:
        db_table = "audit_checkpoint"

    def __str__(self) -> str:
        return f"checkpoint {self.pk} at {self.created_at:%Y-%m-%d %H:%M}"
