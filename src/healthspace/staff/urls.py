from django.urls import include, path

from healthspace.staff import inbox_views, views

app_name = "staff"
urlpatterns = [
    path("", views.find, name="find"),
    path("patient/<uuid:patient_id>/", views.patient, name="patient"),
    path("patient/<uuid:patient_id>/permission/", views.permission, name="permission"),
    path("patient/<uuid:patient_id>/relationship/", views.relationship, name="relationship"),
    path("patient/<uuid:patient_id>/emergency/", views.emergency, name="emergency"),
    path("patient/<uuid:patient_id>/scr/", views.scr, name="scr"),
    path("patient/<uuid:patient_id>/message/", inbox_views.patient_message, name="message"),
    path("privacy/", include("healthspace.staff.privacy_urls")),
]
