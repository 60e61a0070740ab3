"""Background work of notifications, run by ``healthspace worker`` (django-tasks-db)."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.tasks import task

from healthspace.core.clock import now
from healthspace.notify.gateways import gateway
from healthspace.notify.notices import Notice

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5


@task()
def send_notice(user_id: int, notice: str, values: dict[str, str], attempt: int = 1) -> str:
    """Send one notice to a user's email address. A failed send is tried again later
    (1, 4, 9, 16 minutes); logs name the user id and the notice, never the address."""
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return "no-such-user"
    address = user.email or user.get_username()
    try:
        gateway().send(to=address, notice=Notice(notice), values=values)
    except Exception:
        if attempt >= MAX_ATTEMPTS:
            logger.exception("notice %s to user %s failed %d times", notice, user_id, attempt)
            raise
        logger.warning("notice %s to user %s failed; will try again", notice, user_id)
        send_notice.using(run_after=now() + timedelta(minutes=attempt * attempt)).enqueue(
            user_id, notice, values, attempt + 1
        )
        return "retry-queued"
    return "sent"
