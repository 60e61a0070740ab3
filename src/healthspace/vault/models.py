from django.db import models


class DataKey(models.Model):
    """One patient's data key, stored only wrapped by the key-encryption key (KEK).

    Destroying it (``wrapped_key`` set to NULL) is crypto-shredding: every ciphertext
    sealed under it, in the database and in every backup, becomes unreadable.
    """

    patient_id = models.UUIDField(primary_key=True)
    wrapped_key = models.BinaryField(null=True)
    kek_id = models.CharField(max_length=16)
    created_at = models.DateTimeField(auto_now_add=True)
    destroyed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "vault_data_key"

    def __str__(self) -> str:
        return f"DataKey({self.patient_id}, destroyed={self.destroyed_at is not None})"
