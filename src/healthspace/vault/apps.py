from django.apps import AppConfig


class VaultConfig(AppConfig):
    name = "healthspace.vault"
    label = "vault"
