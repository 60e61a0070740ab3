from django.apps import AppConfig


class ConsentConfig(AppConfig):
    name = "healthspace.consent"
    label = "consent"
    verbose_name = "Consent to the Summary Care Record"

    def ready(self) -> None:
        # closing an account stops what it shared and what was shared with it, in the
        # closure's transaction (a failure rolls the closure back)
        from healthspace.consent.sharing.services import on_account_closing
        from healthspace.portability.signals import account_closing

        account_closing.connect(on_account_closing, dispatch_uid="consent.sharing.revoke-all")
