"""Second factors, under /account/two-factor/. No route takes an id in its path."""

from django.urls import path

from healthspace.accounts.factors import views

urlpatterns = [
    path("two-factor/", views.manage, name="two-factor"),
    path("two-factor/verify/", views.verify, name="two-factor-verify"),
    path("two-factor/verify/recovery-code/", views.verify_recovery, name="two-factor-recovery"),
    path(
        "two-factor/verify/passkey/options/",
        views.passkey_login_options,
        name="passkey-login-options",
    ),
    path("two-factor/verify/passkey/", views.passkey_login, name="passkey-login"),
    path("two-factor/set-up/", views.setup, name="two-factor-setup"),
    path("two-factor/confirm-password/", views.reauth, name="two-factor-reauth"),
    path("two-factor/totp/", views.totp_setup, name="totp-setup"),
    path("two-factor/totp/remove/", views.totp_remove, name="totp-remove"),
    path("two-factor/passkeys/add/", views.passkey_add, name="passkey-add"),
    path(
        "two-factor/passkeys/add/options/",
        views.passkey_add_options,
        name="passkey-add-options",
    ),
    path("two-factor/passkeys/add/verify/", views.passkey_add_verify, name="passkey-add-verify"),
    path("two-factor/passkeys/rename/", views.passkey_rename, name="passkey-rename"),
    path("two-factor/passkeys/remove/", views.passkey_remove, name="passkey-remove"),
    path("two-factor/recovery-codes/", views.recovery_codes, name="recovery-codes"),
]
