"""The hygiene rules: the one place that says what each rule means. The report
command, the dashboard, the snapshots and the e-mails all count through here.

- in scope: present upstream (not removed from the mirror) and not archived
- stale: Secoda's `stale` flag is true
- unowned: no `owners` and no `owners_groups`
- undocumented: `description` and `definition` both blank after trimming
- failing dbt tests: listed as failing by any (present) dbt integration
- warning dbt tests: listed as warning by one, and failing by none
- unused: no external and no internal usage (null or 0), per Secoda's
  "Identify Stale Dashboards" workflow

Every Q builder takes a `prefix` so the same rule can be applied through a
relation (for example "resource__" from ResourceRef).
"""
from django.conf import settings
from django.db.models import Case, Count, IntegerField, Q, Value, When
from django.db.models.functions import Greatest

from catalog_sync.models import DbtTestStatus, Integration, Resource


# The rules of the report command (issue contract), in display order.
REPORT_RULES = ("stale", "unowned", "undocumented", "failing_dbt_tests", "warning_dbt_tests")
RULES = REPORT_RULES + ("unused",)

RULE_LABELS = {
    "stale": "Stale",
    "unowned": "Unowned",
    "undocumented": "Undocumented",
    "failing_dbt_tests": "Failing dbt tests",
    "warning_dbt_tests": "Warning dbt tests",
    "unused": "Unused",
}

RULE_EXPLANATIONS = {
    "stale": "No longer in its source as of Secoda's last extraction (Secoda marks it stale).",
    "unowned": "No owner and no owning group: nobody to ask about it.",
    "undocumented": "Description and documentation are both blank.",
    "failing_dbt_tests": "At least one dbt test on it is failing.",
    "warning_dbt_tests": "A dbt test on it warns, and none fails.",
    "unused": "No recent use in its source or in Secoda: a candidate for deprecation.",
}


def in_scope():
    return Resource.objects.filter(removed_at__isnull=True, archived=False)


def scope_q(prefix=""):
    return Q(**{f"{prefix}removed_at__isnull": True, f"{prefix}archived": False})


def _dbt_ids(status):
    return DbtTestStatus.objects.filter(status=status, integration__removed_at__isnull=True).values("resource_id")


def _unused(prefix):
    def none_or_zero(field):
        return Q(**{f"{prefix}{field}__isnull": True}) | Q(**{f"{prefix}{field}": 0})

    return none_or_zero("external_usage") & none_or_zero("internal_usage")


def rule_filters(prefix="", rules=RULES):
    """Rule name -> Q on Resource (through `prefix`), in display order."""
    failing = Q(**{f"{prefix}pk__in": _dbt_ids(DbtTestStatus.FAILING)})
    builders = {
        "stale": lambda: Q(**{f"{prefix}stale": True}),
        "unowned": lambda: Q(**{f"{prefix}is_owned": False}),
        "undocumented": lambda: Q(**{f"{prefix}is_documented": False}),
        "failing_dbt_tests": lambda: failing,
        "warning_dbt_tests": lambda: Q(**{f"{prefix}pk__in": _dbt_ids(DbtTestStatus.WARNING)}) & ~failing,
        "unused": lambda: _unused(prefix),
    }
    return {name: builders[name]() for name in rules}


def health_weights():
    return {rule: settings.HEALTH_WEIGHTS.get(rule, 0) for rule in RULES}


def health_expression(broken):
    """A 0-100 score: 100 minus the weights of the rules a resource breaks.

    `broken` maps rule name -> Q meaning "breaks this rule" (callers decide
    whether snoozed issues count).
    """
    weights = health_weights()
    penalty = sum(
        (Case(When(q, then=Value(weights[name])), default=Value(0), output_field=IntegerField())
         for name, q in broken.items() if weights[name]),
        Value(0),
    )
    return Greatest(Value(0), Value(100) - penalty, output_field=IntegerField())


def summary():
    """The report: counts per rule, overall and per entity type, for resources in scope (snoozes ignored)."""
    filters = rule_filters(rules=REPORT_RULES)
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
