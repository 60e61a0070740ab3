"""The patient's page of connected apps, under /account/apps/."""

from django.urls import path

from healthspace.smart import views

app_name = "smart"
urlpatterns = [
    path("", views.apps, name="apps"),
    path("<str:client_id>/disconnect/", views.disconnect, name="disconnect"),
]
