"""The patient's page of connected apps, under /account/apps/."""

from django.urls import path

from healthspace.smart import views

app_name = "smart"
urlpatterns = [
    path("", views.apps, name="apps"),
    path("disconnect/", views.disconnect, name="disconnect"),
]
