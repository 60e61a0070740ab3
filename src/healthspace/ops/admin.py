"""The operator admin holds accounts and groups only. django-otp registers its device
models, whose rows hold second-factor secrets: an operator has no business reading them
(staff passkeys are reset with `healthspace staff-reset-passkeys`)."""

from django.contrib import admin
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

for model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
