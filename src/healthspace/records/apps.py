from django.apps import AppConfig


class RecordsConfig(AppConfig):
    name = "healthspace.records"
    label = "records"
    verbose_name = "Summary Care Records"
