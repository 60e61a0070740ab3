from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "healthspace.messaging"
    label = "messaging"
