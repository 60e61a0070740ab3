from django.apps import AppConfig


class FhirApiConfig(AppConfig):
    name = "healthspace.fhir_api"
    label = "fhir_api"
