"""The (action, occurred_at) index the usage statistics read (ops.stats, docs/statistics.md).

On PostgreSQL it is built CONCURRENTLY, so adding it to a trail of hundreds of millions of
events does not lock out the writers (every action appends to this table); SQLite has no
such option and builds it in place.
"""

from django.db import migrations, models


class AddIndexConcurrentlyWherePossible(migrations.AddIndex):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.add_index(model, self.index, concurrently=True)
        else:
            schema_editor.add_index(model, self.index)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.remove_index(model, self.index, concurrently=True)
        else:
            schema_editor.remove_index(model, self.index)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [("audit", "0002_hash_chain")]

    operations = [
        AddIndexConcurrentlyWherePossible(
            model_name="auditevent",
            index=models.Index(fields=["action", "occurred_at"], name="audit_action_ts"),
        ),
    ]
