from django.db import migrations, models

OPEN_SINCE_DESC = ("CREATE INDEX IF NOT EXISTS resource_open_since_desc ON catalog_sync_resource "
                   "(issues_open_since DESC NULLS LAST, id DESC)")


def add_descending_index(apps, schema_editor):
    """PostgreSQL only: SQLite cannot index NULLS LAST (see Resource.Meta.indexes)."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(OPEN_SINCE_DESC)


def drop_descending_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS resource_open_since_desc")


class Migration(migrations.Migration):

    dependencies = [
        ("catalog_sync", "0010_resource_changed_removed_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="resource",
            name="issues_open_since",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="resource",
            name="issues_open_since_seen",
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.AddIndex(
            model_name="resource",
            index=models.Index(condition=models.Q(("archived", False), ("is_owned", False),
                                                  ("removed_at__isnull", True)),
                               fields=["integration", "entity_type"], name="resource_unowned"),
        ),
        migrations.AddIndex(
            model_name="resource",
            index=models.Index(condition=models.Q(("archived", False), ("is_documented", False),
                                                  ("removed_at__isnull", True)),
                               fields=["integration", "entity_type"], name="resource_undocumented"),
        ),
        migrations.AddIndex(
            model_name="resource",
            index=models.Index(fields=["issues_open_since", "id"], name="resource_open_since"),
        ),
        migrations.RunPython(add_descending_index, drop_descending_index),
    ]
