"""The privacy officer's console, inside the staff URLconf (names ``staff:privacy-*``).

Ids in these paths are case, request and record ids: every page asks access.decide about
the record behind the id and audits it, and a privacy officer may act on any record."""

from django.urls import path

from healthspace.staff import privacy_views as views

urlpatterns = [
    path("", views.queue, name="privacy-queue"),
    path("case/<int:case_id>/", views.case, name="privacy-case"),
    path("requests/", views.requests, name="privacy-requests"),
    path("requests/new/", views.request_new, name="privacy-request-new"),
    path("requests/<int:request_id>/", views.request_detail, name="privacy-request"),
    path("deletions/", views.deletions, name="privacy-deletions"),
    path("deletions/<uuid:record_id>/", views.deletion, name="privacy-deletion"),
    path(
        "deletions/<uuid:record_id>/receipt.json",
        views.deletion_receipt,
        name="privacy-deletion-receipt",
    ),
]
