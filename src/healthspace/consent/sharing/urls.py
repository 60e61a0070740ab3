from django.urls import path

from healthspace.consent.sharing import views

app_name = "sharing"
urlpatterns = [
    path("", views.home, name="home"),
    path("new/", views.grant_new, name="grant-new"),
    path("<uuid:grant_id>/stop/", views.grant_stop, name="grant-stop"),
    path("codes/new/", views.code_new, name="code-new"),
    path("codes/<uuid:code_id>/qr.svg", views.code_qr, name="code-qr"),
    path("codes/<uuid:code_id>/cancel/", views.code_cancel, name="code-cancel"),
    path("settings/", views.settings_page, name="settings"),
]
