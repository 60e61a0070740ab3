from django.urls import path

from healthspace.corrections import additions_views as views

# The signed-in patient's own additions only; an addition's id is checked against them.
app_name = "additions"
urlpatterns = [
    path("", views.home, name="home"),
    path("add/<slug:kind>/", views.add, name="add"),
    path("<uuid:addition_id>/change/", views.change, name="change"),
    path("<uuid:addition_id>/remove/", views.remove, name="remove"),
]
