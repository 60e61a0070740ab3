"""The vault's data keys live in the "keystore" database, everything else in "default"
(settings.DATABASES): a backup of one is of no use without the other, and destroying a
key in the key store makes every copy of the data it sealed unreadable."""

from __future__ import annotations

from typing import Any

KEYSTORE = "keystore"
VAULT_APP = "vault"


class KeystoreRouter:
    def db_for_read(self, model: type, **hints: Any) -> str | None:
        return KEYSTORE if model._meta.app_label == VAULT_APP else None

    def db_for_write(self, model: type, **hints: Any) -> str | None:
        return KEYSTORE if model._meta.app_label == VAULT_APP else None

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        one, two = obj1._meta.app_label == VAULT_APP, obj2._meta.app_label == VAULT_APP
        return None if one == two else False

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        if app_label == VAULT_APP:
            return db == KEYSTORE
        return db != KEYSTORE
