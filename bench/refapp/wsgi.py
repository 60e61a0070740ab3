"""One WSGI application serving both: the references outside the middleware (bare
Django, as the anchors measured them), everything else through the application's own
handler, with all of its middleware."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "refapp.settings")

from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application

app = get_wsgi_application()


class BareHandler(WSGIHandler):
    """Django with no middleware at all: URL resolution, the view, the response."""

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        self._middleware_chain = convert_exception_to_response(self._get_response)


bare = BareHandler()
REF_PREFIX = "/bench/ref/"


def application(environ, start_response):
    handler = bare if environ.get("PATH_INFO", "").startswith(REF_PREFIX) else app
    return handler(environ, start_response)
