"""The operator admin holds accounts and groups only. django-otp registers its device
models, whose rows hold second-factor secrets: an operator has no business reading them
(staff passkeys are reset with `healthspace staff-reset-passkeys`). django-tasks-db
registers its task results, whose arguments say which account was sent which notice (a
new message, a staff view of their record): not the operator's to browse either."""

from django.contrib import admin
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_tasks_db.models import DBTaskResult

for model in (TOTPDevice, StaticDevice, DBTaskResult):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
