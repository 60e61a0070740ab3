"""Plain SQL for the fixed-shape reads every request makes (docs/performance.md): building
and compiling the ORM's query for them cost more CPU than running them. Names come from the
models' metadata, quoted; every value is a parameter."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime


def names(model: Any) -> tuple[str, dict[str, str]]:
    """The model's quoted table and its columns, by field name and by attribute name."""
    ops = connection.ops
    meta = model._meta
    columns: dict[str, str] = {}
    for field in meta.concrete_fields:
        columns[field.name] = columns[field.attname] = ops.quote_name(field.column)
    return ops.quote_name(meta.db_table), columns


def param(model: Any, field: str, value: Any) -> Any:
    """``value`` as the database stores ``model.field`` (a UUID as SQLite's hex text, say)."""
    return model._meta.get_field(field).get_db_prep_value(value, connection)


def rows(sql: str, params: list[Any]) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def as_uuid(value: Any) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(str(value))


def as_datetime(value: Any) -> datetime | None:
    """A timestamp as read by the driver: PostgreSQL's is aware, SQLite's is UTC text."""
    if value is None or (isinstance(value, datetime) and timezone.is_aware(value)):
        return value
    moment = value if isinstance(value, datetime) else parse_datetime(str(value))
    if moment is None:
        raise ValueError("not a timestamp")
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)
