"""Bodies over HEALTHSPACE_MAX_REQUEST_BYTES are refused from their Content-Length, before
anything reads them."""

from __future__ import annotations

import pytest
from django.test import Client


@pytest.mark.django_db
def test_an_oversized_body_is_refused_with_413_before_it_is_read(settings):
    settings.HEALTHSPACE_MAX_REQUEST_BYTES = 1000
    client = Client()
    response = client.generic(
        "POST", "/login/", b"x" * 1001, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 413
    assert "too large" in response.content.decode()
    assert response["Connection"] == "close"
    small = client.post("/login/", {"username": "a@example.test", "password": "x"})
    assert small.status_code != 413
