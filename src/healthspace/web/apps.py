from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "healthspace.web"
    label = "web"
