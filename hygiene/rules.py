"""The hygiene rules: the one place that says what "stale", "unowned",
"undocumented" and "failing" mean. The report command, the dashboard and the
e-mails all count through here.

- in scope: present upstream (not removed from the mirror) and not archived
- stale: Secoda's `stale` flag is true
- unowned: no `owners` and no `owners_groups`
- undocumented: `description` and `definition` both blank after trimming
- failing dbt tests: listed as failing by any (present) dbt integration
- warning dbt tests: listed as warning by one, and failing by none
"""
from django.db.models import Count, Q


def is_owned(owners, owners_groups):
    return bool(owners) or bool(owners_groups)


def is_documented(description, definition):
    return bool((description or "").strip()) or bool((definition or "").strip())


def in_scope():
    from catalog_sync.models import Resource

    return Resource.objects.filter(removed_at__isnull=True, archived=False)


def _dbt_ids(status):
    from catalog_sync.models import DbtTestStatus

    return DbtTestStatus.objects.filter(status=status, integration__removed_at__isnull=True).values("resource_id")


def rule_filters():
    """Name -> Q on Resource, in display order."""
    from catalog_sync.models import DbtTestStatus

    failing = Q(pk__in=_dbt_ids(DbtTestStatus.FAILING))
    return {
        "stale": Q(stale=True),
        "unowned": Q(is_owned=False),
        "undocumented": Q(is_documented=False),
        "failing_dbt_tests": failing,
        "warning_dbt_tests": Q(pk__in=_dbt_ids(DbtTestStatus.WARNING)) & ~failing,
    }


RULE_LABELS = {
    "stale": "Stale",
    "unowned": "Unowned",
    "undocumented": "Undocumented",
    "failing_dbt_tests": "Failing dbt tests",
    "warning_dbt_tests": "Warning dbt tests",
}


def summary():
    """Counts per rule, overall and per entity type, for resources in scope."""
    from catalog_sync.models import Integration

    filters = rule_filters()
    counts = {name: Count("pk", filter=q) for name, q in filters.items()}
    totals = in_scope().aggregate(resources=Count("pk"), **counts)
    per_type_rules = ("stale", "unowned", "undocumented", "failing_dbt_tests")
    by_type = (
        in_scope().order_by().values("entity_type")
        .annotate(resources=Count("pk"), **{name: counts[name] for name in per_type_rules})
        .order_by("entity_type")
    )
    return {
        "resources": totals["resources"],
        "integrations": Integration.objects.present().count(),
        **{name: totals[name] for name in filters},
        "by_entity_type": {
            row["entity_type"] or "unknown": {key: row[key] for key in ("resources", *per_type_rules)}
            for row in by_type
        },
    }
