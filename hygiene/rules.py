"""The built-in hygiene rules: the one place that says what each means. They are rows of the rule registry
(`hygiene.rulebook`) beside the rules stewards write; everything counts through the registry.

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
from django.db.models import Q

from catalog_sync.models import DbtTestStatus, Resource


# The built-in rules, in display order; the report command's contract names the first five.
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


def builtin_filter(key, prefix=""):
    """Q on Resource (through `prefix`) for the built-in rule `key`."""
    def failing():  # its subquery built only for the two rules that use it
        return Q(**{f"{prefix}pk__in": _dbt_ids(DbtTestStatus.FAILING)})

    if key == "stale":
        return Q(**{f"{prefix}stale": True})
    if key == "unowned":
        return Q(**{f"{prefix}is_owned": False})
    if key == "undocumented":
        return Q(**{f"{prefix}is_documented": False})
    if key == "failing_dbt_tests":
        return failing()
    if key == "warning_dbt_tests":
        return Q(**{f"{prefix}pk__in": _dbt_ids(DbtTestStatus.WARNING)}) & ~failing()
    if key == "unused":
        return _unused(prefix)
    raise KeyError(key)
