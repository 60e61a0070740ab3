from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "healthspace.core"
    label = "core"
