"""Data keys used to live in the main database; they now live in the key store
(docs/keystore.md). On an installation made before, copy them across once, check the copy,
and drop the old table from the main database, so its backups hold no keys from now on."""

from django.db import connections, migrations

TABLE = "vault_data_key"
COLUMNS = "patient_id, kind, wrapped_key, kek_id, created_at, destroyed_at"


def move_keys(apps, schema_editor):
    keystore = schema_editor.connection
    if keystore.alias == "default":
        return  # a single-database set-up (tests of old code): nothing to move
    main = connections["default"]
    if TABLE not in main.introspection.table_names():
        return
    with main.cursor() as source:
        present_columns = {c.name for c in main.introspection.get_table_description(source, TABLE)}
        # installations from before key kinds had only SCR keys
        kind = "kind" if "kind" in present_columns else "'scr'"
        query = (
            f"SELECT patient_id, {kind}, wrapped_key, kek_id, created_at, destroyed_at FROM {TABLE}"  # noqa: S608 (fixed names)
        )
        source.execute(query)
        rows = source.fetchall()
    with keystore.cursor() as target:
        target.execute(f"SELECT patient_id FROM {TABLE}")  # noqa: S608 (fixed names)
        present = {str(r[0]).replace("-", "") for r in target.fetchall()}
        todo = [r for r in rows if str(r[0]).replace("-", "") not in present]
        placeholders = ", ".join(["%s"] * 6)
        target.executemany(
            f"INSERT INTO {TABLE} ({COLUMNS}) VALUES ({placeholders})",  # noqa: S608 (fixed names)
            todo,
        )
        target.execute(f"SELECT COUNT(*) FROM {TABLE}")  # noqa: S608 (fixed names)
        (count,) = target.fetchone()
    if count < len(rows):
        raise RuntimeError("data keys were not all copied to the key store; nothing dropped")
    with main.cursor() as source:
        source.execute(f"DROP TABLE {TABLE}")


class Migration(migrations.Migration):
    dependencies = [("vault", "0002_datakey_kind")]

    operations = [migrations.RunPython(move_keys, migrations.RunPython.noop)]
