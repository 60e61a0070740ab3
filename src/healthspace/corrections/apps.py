from django.apps import AppConfig


class CorrectionsConfig(AppConfig):
    name = "healthspace.corrections"
    label = "corrections"
