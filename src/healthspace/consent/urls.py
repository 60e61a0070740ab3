from django.urls import path

from healthspace.consent import views

app_name = "consent"
urlpatterns = [
    path("", views.choices, name="choices"),
    path("confirm/", views.confirm, name="confirm"),
    path("saved/", views.saved, name="saved"),
]
