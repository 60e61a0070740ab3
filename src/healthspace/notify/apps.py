from django.apps import AppConfig


class NotifyConfig(AppConfig):
    name = "healthspace.notify"
    label = "notify"
    verbose_name = "Notifications"
