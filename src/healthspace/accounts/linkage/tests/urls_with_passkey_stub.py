"""The real URLs, plus a stand-in for passkey registration (built by the second-factor work)
placed before the real routes, so the real one wins once it exists."""

from django.http import HttpResponse
from django.urls import include, path

from healthspace.accounts import urls as accounts_urls
from healthspace.config.urls import urlpatterns as real


def _stub(request):
    return HttpResponse("passkey registration")


urlpatterns = [
    path(
        "account/",
        include(
            (
                [*accounts_urls.urlpatterns, path("passkeys/add/", _stub, name="passkey-add")],
                "accounts",
            )
        ),
    ),
    *[p for p in real if getattr(p, "app_name", None) != "accounts"],
]
