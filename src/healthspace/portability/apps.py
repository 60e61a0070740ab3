from django.apps import AppConfig


class PortabilityConfig(AppConfig):
    name = "healthspace.portability"
    label = "portability"
