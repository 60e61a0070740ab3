"""Account pages. Each area keeps its own URL list; all live under /account/."""

from django.urls import include, path

app_name = "accounts"
urlpatterns = [
    path("", include("healthspace.accounts.passwords.urls")),
    path("", include("healthspace.accounts.linkage.urls")),
    path("", include("healthspace.accounts.factors.urls")),
    path("", include("healthspace.accounts.sessions.urls")),
]
