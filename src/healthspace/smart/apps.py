from django.apps import AppConfig


class SmartConfig(AppConfig):
    name = "healthspace.smart"
    label = "smart"

    def ready(self) -> None:
        # django-oauth-toolkit registers its models in the operator admin; operators manage
        # clients with `healthspace smart-client` instead, and tokens are nobody's business
        # (tests/test_every_url.py: the admin holds nothing but logins and groups).
        from django.contrib import admin
        from oauth2_provider import models

        for model in (
            models.get_application_model(),
            models.get_access_token_model(),
            models.get_refresh_token_model(),
            models.get_grant_model(),
            models.get_id_token_model(),
        ):
            if admin.site.is_registered(model):
                admin.site.unregister(model)
