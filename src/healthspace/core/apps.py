from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "healthspace.core"
    label = "core"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from healthspace.core import pgcursor

        connection_created.connect(pgcursor.install, dispatch_uid="healthspace.pgcursor")
