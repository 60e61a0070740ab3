"""Property-based fuzzing of the FHIR API.

1. Schemathesis, driven by the OpenAPI description the project serves
   (/fhir/R4/openapi.json), over every operation, as a patient's app and as a GP system:
   no 5xx, every response FHIR JSON (an OperationOutcome on errors), and nothing of a
   patient outside the token's reach in any body.
2. Hypothesis, as a BOLA fuzzer: every route, with ids and references drawn from the
   other patient's record mixed with the caller's own and made-up ones, through paths,
   search parameters and _include: the other patient's data never comes back.

Bounded by HEALTHSPACE_FUZZ_EXAMPLES (tests/fuzz/conftest.py).
"""

from __future__ import annotations

import json
import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from healthspace.config.wsgi import application
from healthspace.core.testing import connection_kept_across_requests
from healthspace.fhir_api import ids
from healthspace.fhir_api.testing import check
from healthspace.fhir_api.tests.conftest import OTHERS_WORDS, bearer, build_world
from healthspace.messaging.models import Message
from healthspace.records.models import Patient, ScrItem
from healthspace.smart import testing as smart_testing
from tests.fuzz.conftest import EXAMPLES

pytestmark = [pytest.mark.django_db, pytest.mark.fuzz]

schema = schemathesis.openapi.from_wsgi("/fhir/R4/openapi.json", application)
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


def _secrets(patients) -> list[str]:
    out = []
    for patient in patients:
        out += [str(patient.pk), patient.nhs_number]
        out += [
            ids.item_id(pk)
            for pk in ScrItem.objects.filter(patient_id=patient.pk).values_list("pk", flat=True)
        ]
        messages = list(Message.objects.filter(patient_id=patient.pk))
        out += [str(m.pk) for m in messages] + [str(m.thread_id) for m in messages]
        out += [OTHERS_WORDS] if messages else []
    return out


def _shown(body: bytes) -> str:
    """A body without its links (the self link repeats the caller's own request)."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode(errors="replace")
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k != "link"}
    return json.dumps(data)


@pytest.fixture(scope="module", autouse=True)
def _keep_the_test_connection():
    """Schemathesis calls the WSGI application itself: the test's connection (and on
    PostgreSQL its transaction) is kept open while this module runs."""
    with connection_kept_across_requests():
        yield


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Built once for the module (committed), emptied afterwards: the fuzzers make
    hundreds of requests, not hundreds of worlds."""
    from django.core.management import call_command
    from django.test import override_settings

    with (
        django_db_blocker.unblock(),
        override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]),
    ):
        built = build_world()
        built.tokens = {
            "patient": (
                smart_testing.issue_token(
                    built.app,
                    scope="launch/patient openid fhirUser patient/*.rs",
                    user=built.owner.user,
                ),
                _secrets([built.other.patient, built.third]),
            ),
            "feed": (
                smart_testing.issue_token(built.feed, scope="system/*.rs system/*.cu"),
                _secrets(Patient.objects.exclude(registered_practice__ods_code=built.practice)),
            ),
            "bola": smart_testing.issue_token(
                built.app, scope="patient/*.rs launch/patient", user=built.owner.user
            ),
        }
        yield built
        call_command("flush", interactive=False, verbosity=0)


@pytest.fixture(scope="module")
def tokens(world):
    return world.tokens


@schema.parametrize()
@FUZZ
def test_every_operation_survives_fuzzing_and_leaks_nothing(case, tokens):
    caller = "feed" if sum(map(ord, case.formatted_path + str(case.query))) % 2 else "patient"
    token, outside = tokens[caller]
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    headers["Authorization"] = f"Bearer {token}"
    response = case.call(headers=headers)
    case.validate_response(response, checks=[not_a_server_error])
    assert response.status_code < 500, response.text[:500]
    content_type = (response.headers.get("content-type") or [""])[0]
    if response.status_code >= 400:
        assert content_type.startswith("application/fhir+json"), content_type
        assert response.json()["resourceType"] == "OperationOutcome"
    SEEN[response.status_code == 401] += 1
    shown = _shown(response.content)
    leaked = [s for s in outside if s in shown]
    assert not leaked, f"{caller} saw {leaked[:3]} via {case.method} {case.formatted_path}"


SEEN = [0, 0]  # [authenticated, 401]: schemathesis also drops the token on purpose


def test_the_fuzzing_was_mostly_authenticated():
    """Runs after the operations above: a fuzz run that only ever got 401 tested nothing."""
    authenticated, refused = SEEN
    assert authenticated > 3 * refused, SEEN


ROUTES = [
    "{T}/{id}",
    "{T}/{id}/_history",
    "{T}/{id}/_history/1",
    "{T}?patient={pid}",
    "{T}?subject=Patient/{pid}",
    "{T}?patient={pid}&_include={T}:patient",
    "{T}?_id={id}",
    "Patient/{pid}",
    "Patient/{pid}/$everything",
    "Patient/{pid}/$summary",
    "Patient?_id={pid}",
    "Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}",
    "Consent/{pid}",
    "Consent?patient={pid}",
    "AuditEvent?patient={pid}",
    "Group/{ods}/$export",
    "Communication/{mid}",
    "Communication?_id={mid}",
    "Communication?patient={pid}&_include=Communication:subject",
    "Patient/{pid}/$everything?_type=Communication",
]
TYPES = [
    "Observation",
    "Condition",
    "AllergyIntolerance",
    "MedicationRequest",
    "Immunization",
    "Patient",
    "Communication",
]


@given(data=st.data())
@settings(
    max_examples=EXAMPLES * 10,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_ids_of_another_patient_through_every_route_find_nothing(world, data):
    owner, other = world.owner.patient, world.other.patient
    other_items = list(
        ScrItem.objects.filter(patient_id=other.pk).values_list("pk", "resource_type")
    )
    own_items = list(ScrItem.objects.filter(patient_id=owner.pk).values_list("pk", "resource_type"))
    client = bola_client(world)
    whose = data.draw(st.sampled_from(["other", "own", "made-up"]))
    pk, rtype = data.draw(st.sampled_from(other_items if whose == "other" else own_items))
    if whose == "made-up":
        pk = data.draw(st.integers(min_value=1, max_value=10**9))
    template = data.draw(st.sampled_from(ROUTES))
    target = other if whose == "other" else owner
    messages = [
        str(m) for m in Message.objects.filter(patient_id=target.pk).values_list("pk", flat=True)
    ]
    mid = data.draw(st.sampled_from(messages)) if messages and whose != "made-up" else uuid.uuid4()
    url = template.format(
        mid=mid,
        T=data.draw(st.sampled_from([rtype, *TYPES])),
        id=ids.item_id(pk),
        pid=target.pk,
        nhs=target.nhs_number,
        ods=data.draw(st.sampled_from([world.practice, "Y00002", "ZZ999"])),
    )
    response = client.get(f"/fhir/R4/{url}", HTTP_PREFER="respond-async")
    check(response)
    assert response.status_code < 500
    shown = _shown(response.content)
    leaked = [s for s in _secrets([other, world.third]) if s in shown]
    assert not leaked, f"{url}: {leaked[:3]}"


_BOLA: dict[int, object] = {}


def bola_client(world):
    """One client for every example (a Django test Client loads the middleware, and
    WhiteNoise scans the static files, each time one is made)."""
    if id(world) not in _BOLA:
        _BOLA[id(world)] = bearer(world.tokens["bola"])
    return _BOLA[id(world)]
