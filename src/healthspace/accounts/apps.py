from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "healthspace.accounts"
    label = "accounts"
