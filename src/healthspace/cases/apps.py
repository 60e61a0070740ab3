from django.apps import AppConfig


class CasesConfig(AppConfig):
    name = "healthspace.cases"
    label = "cases"
