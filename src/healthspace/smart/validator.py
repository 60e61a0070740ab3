"""django-oauth-toolkit's validator, taught SMART on FHIR.

- Backend Services: a system client authenticates with a signed JWT assertion
  (``assertions.verify``), never with a secret.
- Scopes are SMART scopes, narrowed to what the client may be granted
  (``scopes.narrow_for_patient_app`` / ``narrow_for_system``) instead of refused whole.
- A refresh token is issued only with ``offline_access``.
- The token response carries ``patient`` (``launch/patient``), the ID token ``fhirUser``.
"""

from __future__ import annotations

import logging

from django.conf import settings
from oauth2_provider.oauth2_validators import OAuth2Validator

from healthspace.smart import scopes as smart_scopes
from healthspace.smart.assertions import JWT_BEARER, AssertionRejected, verify
from healthspace.smart.models import AppRegistration

log = logging.getLogger(__name__)


def token_endpoint() -> str:
    return settings.HEALTHSPACE_BASE_URL.rstrip("/") + "/oauth/token/"


def fhir_base() -> str:
    return settings.HEALTHSPACE_FHIR_BASE.rstrip("/")


def registration_of(application) -> AppRegistration | None:
    try:
        return application.smart
    except AppRegistration.DoesNotExist:
        return None


def patient_id_of(user) -> str | None:
    link = getattr(user, "patient_link", None) if user is not None else None
    return str(link.patient_id) if link is not None else None


class SmartValidator(OAuth2Validator):
    oidc_claim_scope = {"sub": "openid", "fhirUser": "fhirUser"}

    def authenticate_client(self, request, *args, **kwargs):
        if getattr(request, "client_assertion_type", None) == JWT_BEARER:
            try:
                registration = verify(
                    getattr(request, "client_assertion", None) or "", audience=token_endpoint()
                )
            except AssertionRejected as exc:
                log.info("client assertion refused: %s", exc)  # no token, no patient data
                return False
            if request.client_id and request.client_id != registration.application.client_id:
                return False
            request.client = registration.application
            request.client_id = registration.application.client_id
            return True
        if not super().authenticate_client(request, *args, **kwargs):
            return False
        registration = registration_of(request.client)
        if registration is None or not registration.active:
            return False
        # a system client proves itself with its key, never with a shared secret
        return registration.kind != AppRegistration.Kind.SYSTEM

    def authenticate_client_id(self, client_id, request, *args, **kwargs):
        if not super().authenticate_client_id(client_id, request, *args, **kwargs):
            return False
        registration = registration_of(request.client)
        return (
            registration is not None
            and registration.active
            and registration.kind == AppRegistration.Kind.PATIENT_APP
        )

    def validate_client_id(self, client_id, request, *args, **kwargs):
        if not super().validate_client_id(client_id, request, *args, **kwargs):
            return False
        registration = registration_of(request.client)
        return registration is not None and registration.active

    def validate_scopes(self, client_id, scopes, client, request, *args, **kwargs):
        registration = registration_of(client)
        if registration is None or not registration.active:
            return False
        if registration.kind == AppRegistration.Kind.SYSTEM:
            narrowed = smart_scopes.narrow_for_system(list(scopes), registration.allowed_scopes)
        else:
            narrowed = smart_scopes.narrow_for_patient_app(list(scopes))
        if not any(smart_scopes.parse_resource_scope(s) for s in narrowed):
            return False  # nothing of the record asked for that may be granted
        # SMART: the server may grant fewer scopes than asked; the token says which
        request.scopes = narrowed
        return True

    def get_default_scopes(self, client_id, request, *args, **kwargs):
        return []  # a client must say what it wants

    def save_bearer_token(self, token, request, *args, **kwargs):
        granted = set(request.scopes or [])
        if smart_scopes.OFFLINE not in granted:
            # no offline_access, no refresh token: the app's access ends with the token
            token.pop("refresh_token", None)
        result = super().save_bearer_token(token, request, *args, **kwargs)
        if smart_scopes.PATIENT_CONTEXT in granted:
            patient = patient_id_of(request.user)
            if patient is not None:
                token["patient"] = patient
                token["need_patient_banner"] = False
        token["scope"] = " ".join(request.scopes or [])
        return result

    def get_additional_claims(self, request):
        patient = patient_id_of(request.user)
        return {"fhirUser": f"{fhir_base()}/Patient/{patient}"} if patient else {}
