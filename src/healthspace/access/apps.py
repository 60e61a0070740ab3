from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "healthspace.access"
    label = "access"
