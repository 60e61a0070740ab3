from django.urls import path

from healthspace.consent.sharing import views

app_name = "share"
urlpatterns = [
    path("", views.share_entry, name="entry"),
    path("summary/", views.share_summary, name="summary"),
]
