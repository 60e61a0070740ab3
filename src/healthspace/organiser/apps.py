from django.apps import AppConfig


class OrganiserConfig(AppConfig):
    name = "healthspace.organiser"
    label = "organiser"
