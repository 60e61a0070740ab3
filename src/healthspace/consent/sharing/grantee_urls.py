from django.urls import path

from healthspace.consent.sharing import views

app_name = "shared"
urlpatterns = [
    path("", views.shared_list, name="list"),
    path("proxy/", views.proxy_request, name="proxy-request"),
    path("<uuid:grant_id>/", views.shared_record, name="record"),
    path("<uuid:grant_id>/answer/", views.shared_answer, name="answer"),
    path("<uuid:grant_id>/organiser/", views.shared_organiser, name="organiser"),
    path("<uuid:grant_id>/messages/", views.shared_messages, name="messages"),
]
