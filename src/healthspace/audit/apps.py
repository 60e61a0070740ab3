from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "healthspace.audit"
    label = "audit"
