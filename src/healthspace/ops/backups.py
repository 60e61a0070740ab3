"""Backups as an operator takes them, for the tests that restore one (the final purge,
tests/reliability): ``pg_dump -Fc`` of the main database to a file, ``pg_restore`` into
a fresh database, and a search of every column of a restored copy for clear text.

The key store is never in such a backup (docs/keystore.md): restoring one beside the live
key store is exactly what must open nothing of a crypto-shredded patient.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def pg_args(settings_dict: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """Connection options of the PostgreSQL client tools, and their environment."""
    args = ["-h", settings_dict["HOST"] or "127.0.0.1", "-p", str(settings_dict["PORT"] or 5432)]
    if settings_dict["USER"]:
        args += ["-U", settings_dict["USER"]]
    return args, {**os.environ, "PGPASSWORD": settings_dict["PASSWORD"] or ""}


def pg_dump_custom(settings_dict: dict[str, Any], path: Path, *, tool: str = "pg_dump") -> None:
    args, env = pg_args(settings_dict)
    subprocess.run(  # noqa: S603 - fixed argv of the PostgreSQL client
        [tool, *args, "-Fc", "-f", str(path), settings_dict["NAME"]],
        check=True,
        env=env,
        timeout=600,
    )


@contextmanager
def pg_restored(settings_dict: dict[str, Any], backup: Path, *, bin_dir: str = "") -> Iterator[Any]:
    """A fresh database on the same server restored from ``backup``, as a psycopg
    connection (its name: ``connection.info.dbname``); dropped afterwards."""
    import psycopg

    args, env = pg_args(settings_dict)
    tool = (lambda name: str(Path(bin_dir) / name)) if bin_dir else (lambda name: name)
    name = f"{settings_dict['NAME']}_restored_{uuid.uuid4().hex[:8]}"
    create = [tool("createdb"), *args, name]
    subprocess.run(create, check=True, env=env, timeout=120)  # noqa: S603 - fixed argv
    try:
        subprocess.run(  # noqa: S603 - fixed argv of the PostgreSQL client
            [tool("pg_restore"), *args, "--no-owner", "-d", name, str(backup)],
            check=True,
            env=env,
            timeout=600,
        )
        restored = psycopg.connect(
            host=settings_dict["HOST"] or "127.0.0.1",
            port=settings_dict["PORT"] or 5432,
            user=settings_dict["USER"],
            password=settings_dict["PASSWORD"] or None,
            dbname=name,
            autocommit=True,
        )
        try:
            yield restored
        finally:
            restored.close()
    finally:
        subprocess.run(  # noqa: S603 - fixed argv of the PostgreSQL client
            [tool("dropdb"), *args, "--if-exists", "--force", name], check=True, env=env
        )


def tables(db) -> list[str]:
    cursor = db.cursor()
    if isinstance(db, sqlite3.Connection):
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    else:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return sorted(row[0] for row in cursor.fetchall())


def rows(db, sql: str) -> list[tuple]:
    cursor = db.cursor()
    cursor.execute(sql)
    return cursor.fetchall()


def _as_text(value: Any) -> str:
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("latin-1")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def clear_text_found(db, known: set[str]) -> list[str]:
    """Every column of every table of a (restored) database, searched for the strings."""
    found = []
    for table in tables(db):
        text = "\n".join(
            _as_text(v)
            for row in rows(db, f'SELECT * FROM "{table}"')  # noqa: S608 - names from the catalogue
            for v in row
        )
        found += [f"{table}: {k!r}" for k in known if k in text]
    return found
