from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "healthspace.ops"
    label = "ops"
