from django.apps import AppConfig


class StaffConfig(AppConfig):
    name = "healthspace.staff"
    label = "staff"
