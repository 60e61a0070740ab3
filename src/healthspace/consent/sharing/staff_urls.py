from django.urls import path

from healthspace.consent.sharing import views

app_name = "proxies"
urlpatterns = [
    path("", views.proxy_queue, name="queue"),
    path("<uuid:grant_id>/", views.proxy_decide, name="decide"),
]
