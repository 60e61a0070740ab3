"""Where notices go: Django's email backends (file outbox in the demo, SMTP in production)
or GOV.UK Notify (``notifications-python-client``), chosen by HEALTHSPACE_NOTIFY_GATEWAY."""

from __future__ import annotations

from typing import Protocol

from django.conf import settings
from django.core.mail import send_mail

from healthspace.notify import notices
from healthspace.notify.notices import Notice


class Gateway(Protocol):
    def send(self, *, to: str, notice: Notice, values: dict[str, str]) -> None: ...


class EmailGateway:
    def send(self, *, to: str, notice: Notice, values: dict[str, str]) -> None:
        subject, body = notices.render(
            notice, base_url=settings.HEALTHSPACE_BASE_URL, values=values
        )
        send_mail(subject, body, None, [to])


class GovukNotifyGateway:
    """One GOV.UK Notify email template per notice (HEALTHSPACE_NOTIFY_TEMPLATES); the
    template holds the words, we send only ((link)) and the typed values."""

    def __init__(self, api_key: str, templates: dict[str, str]) -> None:
        from notifications_python_client.notifications import NotificationsAPIClient

        self.client = NotificationsAPIClient(api_key)
        self.templates = templates

    def send(self, *, to: str, notice: Notice, values: dict[str, str]) -> None:
        template_id = self.templates.get(str(notice))
        if not template_id:
            raise RuntimeError(f"no GOV.UK Notify template configured for {notice}")
        self.client.send_email_notification(
            email_address=to,
            template_id=template_id,
            personalisation=notices.personalisation(
                notice, base_url=settings.HEALTHSPACE_BASE_URL, values=values
            ),
        )


def gateway() -> Gateway:
    if settings.HEALTHSPACE_NOTIFY_GATEWAY == "govuk-notify":
        return GovukNotifyGateway(
            settings.GOVUK_NOTIFY_API_KEY, settings.HEALTHSPACE_NOTIFY_TEMPLATES
        )
    return EmailGateway()
