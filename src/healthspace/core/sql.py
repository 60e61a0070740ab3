"""Plain SQL for the fixed-shape reads every request makes (docs/performance.md): building
and compiling the ORM's query for them cost more CPU than running them. Names come from the
models' metadata, quoted; every value is a parameter."""

from __future__ import annotations

import uuid
from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from operator import itemgetter
from types import MappingProxyType
from typing import Any

from django.db import connection, connections, router
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from healthspace.core.pgcursor import prefer_prepared


def names(model: Any) -> tuple[str, Mapping[str, str]]:
    """The model's quoted table and its columns, by field name and by attribute name."""
    return _names(model, connection.vendor)


@cache  # models are few and fixed; kept per database vendor
def _names(model: Any, vendor: str) -> tuple[str, Mapping[str, str]]:
    ops = connection.ops
    meta = model._meta
    columns: dict[str, str] = {}
    for field in meta.concrete_fields:
        columns[field.name] = columns[field.attname] = ops.quote_name(field.column)
    return ops.quote_name(meta.db_table), MappingProxyType(columns)


def param(model: Any, field: str, value: Any) -> Any:
    """``value`` as the database stores ``model.field`` (a UUID as SQLite's hex text, say)."""
    return model._meta.get_field(field).get_db_prep_value(value, connection)


def rows(
    sql: str, params: list[Any], *, using: str | None = None, prepared: bool = False
) -> list[tuple]:
    """The rows of ``sql``. ``prepared``: a fixed statement whose best plan does not
    depend on its values (a unique key's lookup), prepared on PostgreSQL (core.pgcursor)."""
    if prepared:
        prefer_prepared(sql)
    with (connections[using] if using else connection).cursor() as cursor:
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


# --- model instances from plain SQL -------------------------------------------------------

_LOOKUPS = {"": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


@dataclass(frozen=True)
class _Shape:
    sql: str
    fields: tuple[Any, ...]  # the model's selected fields, in column order
    related: tuple[tuple[Any, tuple[Any, ...]], ...]  # (foreign key, its model's fields)
    converters: tuple[tuple[Callable, ...], ...]  # per selected column
    where: tuple[Any, ...]  # the field each parameter is prepared for


_SHAPES: dict[tuple, _Shape] = {}
_MOST_SHAPES = 4096


def objects(
    model: Any,
    fields: Iterable[str] | None = None,
    *,
    where: dict[str, Any],
    related: dict[str, Iterable[str]] | None = None,
    order_by: Iterable[str] = (),
    limit: int | None = None,
    using: str | None = None,
    prepared: bool = False,
) -> list[Any]:
    """Model instances, as ``model.objects.filter(**where).only(*fields)`` would give them
    (``select_related`` one level through ``related``: a foreign key and the fields of its
    model to read), by a statement built once per shape and kept. The ORM's building and
    compiling of a fixed-shape read costs more CPU than the database's running of it
    (docs/performance.md); the rows are converted by the same converters the ORM uses.

    ``where`` holds equality or ``__gt``/``__gte``/``__lt``/``__lte``/``__in`` on concrete
    fields, and ``__isnull`` (its value is part of the shape, as is the length of an
    ``__in``); ``order_by`` field names, ``-`` for descending. Every value is a parameter,
    converted as the ORM converts it.
    ``prepared``: the statement is prepared on PostgreSQL (core.pgcursor): only for a
    lookup whose best plan does not depend on its values (a unique key, a small fixed
    join), never a list read with ``order_by`` and ``limit`` over a non-unique key."""
    using = using or router.db_for_read(model)  # the ORM's choice: key store, replica
    shape, found = _fetch(model, fields, where, related, order_by, limit, using, prepared)
    out = []
    width = len(shape.fields)
    attnames = [f.attname for f in shape.fields]
    related = [
        (
            fk,
            len(rel_fields),
            [f.attname for f in rel_fields],
            next(i for i, f in enumerate(rel_fields) if f.primary_key),
        )
        for fk, rel_fields in shape.related
    ]
    for values in found:
        instance = model.from_db(using, attnames, values[:width])
        offset = width
        for fk, count, rel_attnames, pk_at in related:
            part = values[offset : offset + count]
            offset += count
            rel = None
            if part[pk_at] is not None:  # no related row (LEFT JOIN) has no primary key
                rel = fk.related_model.from_db(using, rel_attnames, part)
            fk.set_cached_value(instance, rel)
        out.append(instance)
    return out


def records(
    model: Any,
    fields: Iterable[str],
    *,
    where: dict[str, Any],
    order_by: Iterable[str] = (),
    limit: int | None = None,
    using: str | None = None,
    prepared: bool = False,
) -> list[Any]:
    """As :func:`objects`, but each row a named tuple of the fields (by attribute name,
    and ``pk``), not a model instance: for a list read only to be shown, where building
    the instances cost as much CPU as the query (docs/performance.md)."""
    using = using or router.db_for_read(model)
    shape, found = _fetch(model, tuple(fields), where, None, order_by, limit, using, prepared)
    make = _record_type(model, shape.fields)._make
    return [make(values) for values in found]


@cache  # per model and fields: few and fixed
def _record_type(model: Any, fields: tuple[Any, ...]) -> type:
    names = [f.attname for f in fields]  # the primary key always among them (_fields)
    row = namedtuple(f"{model.__name__}Record", names)
    pk = property(itemgetter(names.index(model._meta.pk.attname)))
    return type(row.__name__, (row,), {"__slots__": (), "pk": pk})


def _fetch(model, fields, where, related, order_by, limit, using, prepared):
    """The statement's shape (built once per shape and kept) and its rows, each a list of
    values converted by the ORM's converters."""
    conn = connections[using]
    conditions = tuple(_condition(name, value) for name, value in where.items())
    key = (
        conn.vendor,
        model,
        tuple(fields) if fields is not None else None,
        conditions,
        tuple((name, tuple(cols)) for name, cols in (related or {}).items()),
        tuple(order_by),
        limit,
    )
    shape = _SHAPES.get(key)
    if shape is None:
        shape = _shape(conn, model, key)
        if len(_SHAPES) < _MOST_SHAPES:  # lengths of ``__in`` lists make new shapes
            _SHAPES[key] = shape
    if prepared:
        prefer_prepared(shape.sql)
    params = []
    for field, (name, value) in zip(shape.where, where.items(), strict=True):
        if name.endswith("__in"):
            params += [field.get_db_prep_value(v, conn) for v in value]
        elif not name.endswith("__isnull"):
            params.append(field.get_db_prep_value(value, conn))
    with conn.cursor() as cursor:
        cursor.execute(shape.sql, params)
        found = cursor.fetchall()
    converted = []
    for raw in found:
        values = list(raw)
        for i, converters in enumerate(shape.converters):
            for convert in converters:
                values[i] = convert(values[i], None, conn)
        converted.append(values)
    return shape, converted


def _condition(name: str, value: Any) -> tuple[str, Any]:
    """What of a condition is part of the statement's shape: the lookup, and for
    ``__isnull`` its value, for ``__in`` how many values."""
    if name.endswith("__isnull"):
        return name, bool(value)
    if name.endswith("__in"):
        return name, len(value)
    return name, None


def _shape(conn, model: Any, key: tuple) -> _Shape:
    _vendor, _model, field_names, conditions, related, order_by, limit = key
    meta = model._meta
    q = conn.ops.quote_name
    selected = _fields(model, field_names)
    columns = [f"t.{q(f.column)}" for f in selected]
    joins, rel_shapes = [], []
    for n, (name, rel_names) in enumerate(related):
        fk = meta.get_field(name)
        rel_model = fk.related_model
        rel_fields = _fields(rel_model, rel_names)
        alias = f"r{n}"
        columns += [f"{alias}.{q(f.column)}" for f in rel_fields]
        joins.append(
            f"LEFT JOIN {q(rel_model._meta.db_table)} {alias} "
            f"ON {alias}.{q(fk.target_field.column)} = t.{q(fk.column)}"
        )
        rel_shapes.append((fk, tuple(rel_fields)))
    where_sql, where_fields = [], []
    for name, part in conditions:
        field_name, _, lookup = name.partition("__")
        field = meta.pk if field_name == "pk" else meta.get_field(field_name)
        if lookup == "isnull":
            where_sql.append(f"t.{q(field.column)} IS {'' if part else 'NOT '}NULL")
        elif lookup == "in":
            # an empty list matches nothing, as the ORM's does
            marks = ", ".join(["%s"] * part)
            where_sql.append(f"t.{q(field.column)} IN ({marks})" if part else "1 = 0")
        else:
            where_sql.append(f"t.{q(field.column)} {_LOOKUPS[lookup]} %s")
        where_fields.append(field)
    order = []
    for name in order_by:
        field = meta.get_field(name.lstrip("-"))
        order.append(f"t.{q(field.column)}{' DESC' if name.startswith('-') else ''}")
    statement = (
        f"SELECT {', '.join(columns)} FROM {q(meta.db_table)} t {' '.join(joins)}"  # noqa: S608 - quoted names from model metadata, values are parameters
        + (f" WHERE {' AND '.join(where_sql)}" if where_sql else "")
        + (f" ORDER BY {', '.join(order)}" if order else "")
        + (f" LIMIT {int(limit)}" if limit is not None else "")
    )
    converters = _converters(conn.vendor, model, tuple(selected))
    for fk, fs in rel_shapes:
        converters += _converters(conn.vendor, fk.related_model, fs)
    return _Shape(statement, tuple(selected), tuple(rel_shapes), converters, tuple(where_fields))


def fields_of(model: Any, names: Iterable[str] | None = None) -> tuple[Any, ...]:
    """The concrete fields a plain statement reads for ``model`` (``names``, the primary
    key always among them, in the model's order): select their columns in this order and
    hand the row's values to :func:`instance`."""
    return tuple(_fields(model, names))


def instance(model: Any, fields: tuple[Any, ...], values: Iterable[Any], *, using: str) -> Any:
    """A model instance from the values of ``fields`` (:func:`fields_of`), converted by the
    ORM's own converters, as :func:`objects` builds them."""
    conn = connections[using]
    values = list(values)
    for i, converters in enumerate(_converters(conn.vendor, model, fields)):
        for convert in converters:
            values[i] = convert(values[i], None, conn)
    return model.from_db(using, [f.attname for f in fields], values)


@cache  # per vendor, model and fields: few and fixed
def _converters(
    vendor: str, model: Any, fields: tuple[Any, ...]
) -> tuple[tuple[Callable, ...], ...]:
    table = model._meta.db_table
    return tuple(
        tuple(connection.ops.get_db_converters(f.get_col(table)) + f.get_db_converters(connection))
        for f in fields
    )


def _fields(model: Any, names: Iterable[str] | None) -> list[Any]:
    """The concrete fields to read, in the model's order (``from_db`` expects it), the
    primary key always among them (as ``only()`` does)."""
    meta = model._meta
    if names is None:
        return list(meta.concrete_fields)
    wanted = {meta.get_field(n).attname for n in names if n != "pk"} | {meta.pk.attname}
    return [f for f in meta.concrete_fields if f.attname in wanted]
