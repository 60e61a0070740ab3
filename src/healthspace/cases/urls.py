from django.urls import path

from healthspace.cases import views

# No ids in these paths: the record is always the signed-in patient's own (IDOR), and the
# event a patient asks about travels in a POST body and is checked against their record.
app_name = "cases"
urlpatterns = [
    path("who-has-looked/", views.who_has_looked, name="who-has-looked"),
    path("not-recognised/", views.not_recognised, name="not-recognised"),
    path("reported/", views.reported, name="reported"),
    path("notify/", views.notify, name="notify"),
]
