from django.db import migrations


def store(apps, schema_editor):
    """Fill the resources' new "open since" columns from the history already kept."""
    from django.db.models import Exists, OuterRef, Subquery, Value
    from django.db.models.functions import Coalesce

    Resource = apps.get_model("catalog_sync", "Resource")
    IssueInterval = apps.get_model("lifecycle", "IssueInterval")
    oldest = (IssueInterval.objects.filter(resource_id=OuterRef("pk"), closed_at__isnull=True)
              .order_by("opened_at", "-seen_since", "id"))
    Resource.objects.filter(Exists(oldest)).update(
        issues_open_since=Subquery(oldest.values("opened_at")[:1]),
        issues_open_since_seen=Coalesce(Subquery(oldest.values("seen_since")[:1]), Value(False)))


class Migration(migrations.Migration):

    dependencies = [
        ("lifecycle", "0001_initial"),
        ("catalog_sync", "0011_resource_open_since_and_rule_indexes"),
    ]

    operations = [migrations.RunPython(store, migrations.RunPython.noop)]
