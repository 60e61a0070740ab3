from django.db import models


class DataKey(models.Model):
    """One data key, stored only wrapped by the key-encryption key (KEK).

    Two kinds, so each can be destroyed on its own:
    - ``scr``: a patient's Summary Care Record (``patient_id`` is the Patient's id);
    - ``portal``: what an account keeps in HealthSpace itself (health organiser,
      messages), ``patient_id`` being the account's ``portal_subject``. Closing the
      account destroys this key; the SCR stays with the NHS under its own consent rules.

    Destroying a key (``wrapped_key`` set to NULL) is crypto-shredding: every ciphertext
    sealed under it, in the database and in every backup, becomes unreadable.
    """

    class Kind(models.TextChoices):
        SCR = "scr", "Summary Care Record"
        PORTAL = "portal", "Account's own data (organiser, messages)"

    patient_id = models.UUIDField(primary_key=True)  # the subject the key seals for
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.SCR)
    wrapped_key = models.BinaryField(null=True)
    kek_id = models.CharField(max_length=16)
    created_at = models.DateTimeField(auto_now_add=True)
    destroyed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "vault_data_key"

    def __str__(self) -> str:
        return f"DataKey({self.patient_id}, destroyed={self.destroyed_at is not None})"
