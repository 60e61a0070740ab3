from django.urls import path

from healthspace.staff import corrections_views as views

# The practice's queue of correction requests, and one request (its id is checked
# against the clinician's practice by access.decide).
app_name = "staff-corrections"
urlpatterns = [
    path("", views.queue, name="queue"),
    path("<uuid:request_id>/", views.request_page, name="request"),
]
