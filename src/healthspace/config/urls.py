from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("healthspace.web.urls")),
    path("account/apps/", include("healthspace.smart.urls")),
    path("account/", include("healthspace.accounts.urls")),
    path("account/", include("healthspace.portability.urls")),
    path("oauth/", include("healthspace.smart.oauth_urls")),
    path("fhir/R4/", include("healthspace.fhir_api.urls")),
    path("record/consent/", include("healthspace.consent.urls")),
    path("record/sharing/", include("healthspace.consent.sharing.urls")),
    path("shared/", include("healthspace.consent.sharing.grantee_urls")),
    path("share/", include("healthspace.consent.sharing.code_urls")),
    path("staff/proxies/", include("healthspace.consent.sharing.staff_urls")),
    path("record/access/", include("healthspace.cases.urls")),
    path("record/corrections/", include("healthspace.corrections.urls")),
    path("record/additions/", include("healthspace.corrections.additions_urls")),
    path("organiser/", include("healthspace.organiser.urls")),
    path("messages/", include("healthspace.messaging.urls")),
    path("staff/messages/", include("healthspace.staff.inbox_urls")),
    path("staff/corrections/", include("healthspace.staff.corrections_urls")),
    path("staff/", include("healthspace.staff.urls")),
    path("operator/statistics/", include("healthspace.ops.urls")),
    path("operator/admin/", admin.site.urls),
]

# An error nobody handled: a page (or an OperationOutcome under /fhir/) that needs no
# database; 503 with Retry-After when the database cannot be reached, also when Django
# reports it as a 400 (a session that could not be saved). web/errors.py
handler500 = "healthspace.web.errors.server_error"
handler400 = "healthspace.web.errors.bad_request"
