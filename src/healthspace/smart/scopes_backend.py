"""The scopes django-oauth-toolkit advertises and checks against (discovery documents).
Real checking and narrowing is in ``validator.SmartValidator.validate_scopes``."""

from __future__ import annotations

from oauth2_provider.scopes import BaseScopes

SUPPORTED = {
    "openid": "Who you are",
    "fhirUser": "Who you are, as a FHIR resource",
    "launch/patient": "The patient the app is for (you)",
    "offline_access": "Stay connected until disconnected",
    "patient/*.rs": "Read your record",
    "patient/*.read": "Read your record (SMART v1)",
    "system/*.rs": "Read the registered patients of the client's organisation",
    "system/*.read": "Read the registered patients of the client's organisation (SMART v1)",
    "system/*.cu": "Send records of the client's organisation's registered patients",
    "system/*.write": "Send records (SMART v1)",
    "system/*.cruds": "Read and send records of the client's organisation's patients",
}


class SmartScopes(BaseScopes):
    def get_all_scopes(self):
        return dict(SUPPORTED)

    def get_available_scopes(self, application=None, request=None, *args, **kwargs):
        return list(SUPPORTED)

    def get_default_scopes(self, application=None, request=None, *args, **kwargs):
        return []
