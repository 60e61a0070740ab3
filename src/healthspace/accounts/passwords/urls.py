from django.urls import path

from healthspace.accounts.passwords import views

# Under /account/ (namespace "accounts"). The two emailed links carry a token in the path;
# neither names a record, and the reset link moves its token into the session at once.
urlpatterns = [
    path("register/", views.register, name="register"),
    path("register/check-your-email/", views.register_sent, name="register-sent"),
    path("confirm/<str:token>/", views.confirm_email, name="confirm-email"),
    path("password/change/", views.password_change, name="password-change"),
    path("password/change/done/", views.password_change_done, name="password-change-done"),
    path("password/reset/", views.password_reset, name="password-reset"),
    path("password/reset/check-your-email/", views.password_reset_sent, name="password-reset-sent"),
    path("password/reset/new/", views.password_reset_new, name="password-reset-new"),
    path("password/reset/done/", views.password_reset_done, name="password-reset-done"),
    path("password/reset/link/<str:token>/", views.password_reset_link, name="password-reset-link"),
    path("help/passwords/", views.password_help, name="password-help"),
]
