"""Trigram indexes for "title or path contains" searches (PostgreSQL only).

Django's icontains becomes UPPER(col::text) LIKE UPPER('%text%'); GIN trigram indexes on those
expressions turn a scan of the whole mirror into an index lookup. pg_trgm is a trusted extension
(PostgreSQL 13+), so a database owner can create it; if that is refused, searches still work,
only slower, and the migration says so.
"""
import logging

from django.db import migrations, transaction

logger = logging.getLogger(__name__)

INDEXES = {
    "resource_title_full_trgm": "UPPER(title_full::text) gin_trgm_ops",
    "resource_title_trgm": "UPPER(title::text) gin_trgm_ops",
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except Exception as exc:  # no permission: keep going without the speed-up
        logger.warning("pg_trgm is not available (%s); title searches will scan the mirror.", exc)
        return
    for name, expression in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON catalog_sync_resource USING gin ({expression})")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("catalog_sync", "0003_health_score")]
    operations = [migrations.RunPython(create, drop)]
