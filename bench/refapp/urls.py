"""The application's URLconf plus the references under /bench/ref/ (bare Django) and R4
again under /bench/mw/ (through the application's middleware)."""

from django.urls import path

from healthspace.config.urls import urlpatterns as app_urlpatterns
from refapp import views

urlpatterns = [
    path("bench/ref/r2/<str:pid>", views.r2),
    path("bench/ref/r3/<str:pid>", views.r3),
    path("bench/ref/r4/<str:pid>", views.r4),
    # the same view served through the application's handler: every middleware, a session
    path("bench/mw/r4/<str:pid>", views.r4),
    *app_urlpatterns,
]
