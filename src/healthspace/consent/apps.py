from django.apps import AppConfig


class ConsentConfig(AppConfig):
    name = "healthspace.consent"
    label = "consent"
    verbose_name = "Consent to the Summary Care Record"
