from django.apps import AppConfig


class RefappConfig(AppConfig):
    name = "refapp"
    label = "refapp"
    default_auto_field = "django.db.models.BigAutoField"
