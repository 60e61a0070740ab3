from django.conf import settings
from django.db import models


class PatientLink(models.Model):
    """Links a login to the one patient record it may see (a verified account).

    The identity issue adds the online (linkage key) and in-person verification routes;
    demo logins are linked by ``healthspace up``.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="patient_link"
    )
    patient = models.OneToOneField(
        "records.Patient", on_delete=models.CASCADE, related_name="account_link"
    )
    verified_at = models.DateTimeField()
    verified_by = models.CharField(max_length=100)

    def __str__(self) -> str:
        return f"link of user {self.user_id}"
