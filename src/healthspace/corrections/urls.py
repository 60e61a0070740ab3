from django.urls import path

from healthspace.corrections import views

# The record is always the signed-in patient's own; ids in these paths (an item, a
# request) are checked against it, and anyone else's is "not found".
app_name = "corrections"
urlpatterns = [
    path("", views.requests, name="requests"),
    path("report/<int:item_id>/", views.report, name="report"),
    path("<uuid:request_id>/", views.detail, name="detail"),
    path("<uuid:request_id>/withdraw/", views.withdraw, name="withdraw"),
]
