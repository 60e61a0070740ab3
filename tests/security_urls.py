"""A URLconf for tests/test_security_headers.py: the service's own, plus one view that
fails (to see the 500 page's headers)."""

from django.urls import path

from healthspace.access.endpoints import endpoint
from healthspace.config.urls import urlpatterns as service


@endpoint(no_patient_data=True)
def boom(request):
    raise RuntimeError("a view that fails (test)")


urlpatterns = [path("test-boom/", boom), *service]
