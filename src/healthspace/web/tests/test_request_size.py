"""Bodies over their limit are refused from their Content-Length, before anything reads
them: forms over DATA_UPLOAD_MAX_MEMORY_SIZE, uploads (multipart) over
HEALTHSPACE_MAX_REQUEST_BYTES; a body without a length (chunked) gets 411. The same
against the production server: tests/reliability/test_size_limits.py."""

from __future__ import annotations

import pytest
from django.test import Client


@pytest.mark.django_db
def test_an_oversized_body_is_refused_with_413_before_it_is_read(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    client = Client()
    response = client.generic(
        "POST", "/login/", b"x" * 1001, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 413
    assert "too large" in response.content.decode()
    assert response["Connection"] == "close"
    small = client.post("/login/", {"username": "a@example.test", "password": "x"})
    assert small.status_code != 413


@pytest.mark.django_db
def test_an_upload_has_the_larger_limit_of_an_attachment(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    settings.HEALTHSPACE_MAX_REQUEST_BYTES = 5000
    client = Client()
    body = b"--b\r\nContent-Disposition: form-data; name=x\r\n\r\n" + b"y" * 3000 + b"\r\n--b--\r\n"
    fits = client.generic("POST", "/login/", body, content_type="multipart/form-data; boundary=b")
    assert fits.status_code != 413
    body = body.replace(b"y" * 3000, b"y" * 6000)
    big = client.generic("POST", "/login/", body, content_type="multipart/form-data; boundary=b")
    assert big.status_code == 413


@pytest.mark.django_db
def test_a_body_without_a_length_is_refused_with_411():
    response = Client().generic(
        "POST",
        "/login/",
        b"",
        content_type="application/x-www-form-urlencoded",
        HTTP_TRANSFER_ENCODING="chunked",
        CONTENT_LENGTH="",
    )
    assert response.status_code == 411
    assert "could not be read" in response.content.decode()
