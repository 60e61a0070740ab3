"""A database that cannot be reached gets 503 with Retry-After (a page without the
database, or an OperationOutcome under /fhir/), logged in one line without the driver's
message; any other unhandled error a 500 page. Against a real outage, with the production
server: tests/reliability/test_pg_restart.py."""

from __future__ import annotations

import json
import logging

import pytest
from django.db import OperationalError
from django.test import Client

from healthspace.accounts.sessions.middleware import SessionGuardMiddleware


def _failing(exc: Exception):
    """A middleware that meets the error on every request (as the session or the user
    would be loaded from an unreachable database), before any view."""

    def call(self, request):
        raise exc

    return call


@pytest.fixture
def client() -> Client:
    return Client(raise_request_exception=False)


@pytest.mark.django_db
def test_a_page_meets_an_unreachable_database_with_a_503_page(client, monkeypatch, caplog):
    secret = "connection to server at 10.0.0.9 failed: patient 9990001234"
    monkeypatch.setattr(SessionGuardMiddleware, "__call__", _failing(OperationalError(secret)))
    with caplog.at_level(logging.WARNING):
        response = client.get("/record/?q=9990001234")
    assert response.status_code == 503
    assert response["Retry-After"].isdigit()
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "Sorry, there is a problem with the service" in page
    assert "Traceback" not in page and secret not in page
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "database unavailable (OperationalError) on GET /record/" in logged
    assert "9990001234" not in logged and "10.0.0.9" not in logged
    assert not any(r.exc_info for r in caplog.records)


@pytest.mark.django_db
def test_the_fhir_api_meets_it_with_an_operation_outcome(client, monkeypatch):
    monkeypatch.setattr(SessionGuardMiddleware, "__call__", _failing(OperationalError("down")))
    response = client.get("/fhir/R4/metadata")
    assert response.status_code == 503 and response["Retry-After"].isdigit()
    outcome = json.loads(response.content)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "transient"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/oauth/token/", "/oauth/.well-known/jwks.json"])
def test_the_oauth_endpoints_programs_call_meet_it_with_an_oauth_json_error(
    client, monkeypatch, path
):
    monkeypatch.setattr(SessionGuardMiddleware, "__call__", _failing(OperationalError("down")))
    response = client.post(path) if path.endswith("token/") else client.get(path)
    assert response.status_code == 503 and response["Retry-After"].isdigit()
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    assert json.loads(response.content)["error"] == "temporarily_unavailable"


@pytest.mark.django_db
def test_the_authorisation_page_a_person_sees_stays_an_html_page(client, monkeypatch):
    monkeypatch.setattr(SessionGuardMiddleware, "__call__", _failing(OperationalError("down")))
    response = client.get("/oauth/authorize/")
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.django_db
def test_any_other_unhandled_error_is_a_plain_500_page(client, monkeypatch):
    monkeypatch.setattr(SessionGuardMiddleware, "__call__", _failing(RuntimeError("bug")))
    response = client.get("/record/")
    assert response.status_code == 500 and "Retry-After" not in response
    assert "Sorry, there is a problem with the service" in response.content.decode()
