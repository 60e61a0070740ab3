"""Small account preferences. (Identity flows live in their own packages.)"""

from __future__ import annotations

from django.db import transaction

from healthspace.accounts.models import Account


def staff_view_emails_set(*, user, wanted: bool) -> None:
    """'Email me when staff look at my record' (the email never says who or what)."""
    with transaction.atomic():
        Account.objects.filter(user_id=user.pk).update(notify_staff_views=wanted)
