"""The application's settings plus the reference app (bench only)."""

from healthspace.config.settings import *  # noqa: F403
from healthspace.config.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "refapp"]
ROOT_URLCONF = "refapp.urls"

# Production's hashed static files (the manifest the templates look names up in), without
# the brotli/gzip copies: collectstatic then takes seconds, not minutes, and the pages
# measured are the same (the static files themselves are not part of any figure).
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
}
