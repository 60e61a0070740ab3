"""The operator's pages (names ``ops:*``): usage statistics, aggregates only."""

from django.urls import path

from healthspace.ops import views

app_name = "ops"

urlpatterns = [
    path("", views.statistics, name="statistics"),
]
