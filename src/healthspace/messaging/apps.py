from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "healthspace.messaging"
    label = "messaging"

    def ready(self) -> None:
        # the Communicator's messages in the FHIR API (docs/fhir-api.md, "Communication")
        from healthspace.fhir_api import communication
        from healthspace.messaging.fhir import MessagingCommunications

        communication.register(MessagingCommunications())
