from django.urls import path

from healthspace.organiser import views

app_name = "organiser"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("readings/export.csv", views.export_csv, name="export"),
    path("readings/<uuid:reading_id>/edit/", views.reading_edit, name="reading-edit"),
    path("readings/<uuid:reading_id>/delete/", views.reading_delete, name="reading-delete"),
    path("readings/<slug:measure>/", views.measure_page, name="measure"),
    path("readings/<slug:measure>/add/", views.reading_add, name="reading-add"),
    path("readings/<slug:measure>/share/", views.share, name="share"),
    path("diary/", views.diary, name="diary"),
    path("diary/add/", views.appointment_add, name="appointment-add"),
    path("diary/<uuid:appointment_id>/edit/", views.appointment_edit, name="appointment-edit"),
    path(
        "diary/<uuid:appointment_id>/delete/", views.appointment_delete, name="appointment-delete"
    ),
    path("notes/", views.notes, name="notes"),
    path("notes/add/", views.note_add, name="note-add"),
    path("notes/<uuid:note_id>/edit/", views.note_edit, name="note-edit"),
    path("notes/<uuid:note_id>/delete/", views.note_delete, name="note-delete"),
    path("medicines/", views.medicines, name="medicines"),
    path("medicines/add/", views.medicine_add, name="medicine-add"),
    path("medicines/<uuid:medicine_id>/edit/", views.medicine_edit, name="medicine-edit"),
    path("medicines/<uuid:medicine_id>/delete/", views.medicine_delete, name="medicine-delete"),
]
