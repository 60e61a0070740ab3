"""The operator admin holds accounts and groups only.

- django-otp registers its device models, whose rows hold second-factor secrets: an
  operator has no business reading them (staff passkeys are reset with
  `healthspace staff-reset-passkeys`).
- django-tasks-db registers its task results, whose arguments name users and the times
  of their appointment reminders: queued work is seen through `healthspace worker` logs
  and counts, not browsed.
"""

from django.contrib import admin
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_tasks_db.models import DBTaskResult

for model in (TOTPDevice, StaticDevice, DBTaskResult):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
