from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("healthspace.web.urls")),
    path("account/", include("healthspace.accounts.urls")),
    path("record/consent/", include("healthspace.consent.urls")),
    path("record/access/", include("healthspace.cases.urls")),
    path("staff/", include("healthspace.staff.urls")),
    path("operator/admin/", admin.site.urls),
]
