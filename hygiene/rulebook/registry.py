"""The rules in force, read from the registry once per request or task.

`rules()` lists the enabled rules in display order, built-in and custom alike, each able to say which
resources break it (`RuleDef.q`). `labels()` also names disabled and deleted rules, so the snapshots and trends
that counted them stay readable. A built-in rule whose row is missing (a database flushed by a test, say)
counts with its defaults: the built-in rules never silently vanish."""
import logging
import threading
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Case, Count, IntegerField, Q, Value, When
from django.db.models.functions import Greatest

from hygiene import rules as builtin
from hygiene.dashboard.filtersets import filterset_from_query
from hygiene.rulebook import conditions
from catalog_sync.models import Integration
from hygiene.rulebook.models import Rule

logger = logging.getLogger(__name__)
_local = threading.local()


@dataclass(frozen=True)
class RuleDef:
    key: str
    label: str
    explanation: str
    weight: int
    builtin: bool = True
    enabled: bool = True
    deleted: bool = False
    scope: str = ""
    match: str = Rule.ALL
    clauses: tuple = field(default_factory=tuple)
    pk: int | None = None
    sla_days: int | None = None  # fix within this many days (None: no time limit)

    def q(self, prefix=""):
        if self.builtin:
            return builtin.builtin_filter(self.key, prefix)
        return custom_q(self, prefix)

    @property
    def moves_by_itself(self):
        """Whether a resource can start or stop breaking it without changing: dbt results come from elsewhere,
        and "older than N days" turns true with time."""
        if self.builtin:
            return self.key in ("failing_dbt_tests", "warning_dbt_tests")
        return any(clause.get("op") in ("older_than", "newer_than") for clause in self.clauses)

    @property
    def css(self):
        """The class suffix of its pills: a built-in's own colour, one shared colour for custom rules."""
        return self.key if self.builtin else "custom"

    @property
    def condition(self):
        """The condition in plain words ("PII is yes and Verified is no")."""
        joiner = " and " if self.match == Rule.ALL else " or "
        return joiner.join(conditions.describe(clause) for clause in self.clauses)


def forget(*args, **kwargs):
    _local.__dict__.pop("rows", None)


def _defaults():
    return {key: RuleDef(key=key, label=builtin.RULE_LABELS[key], explanation=builtin.RULE_EXPLANATIONS[key],
                         weight=settings.HEALTH_WEIGHTS.get(key, 0)) for key in builtin.RULES}


def _from_row(row):
    return RuleDef(key=row.key, label=row.name, explanation=row.explanation or builtin.RULE_EXPLANATIONS.get(row.key, ""),
                   weight=row.weight, builtin=row.builtin and row.key in builtin.RULES, enabled=row.enabled,
                   deleted=row.deleted_at is not None, scope=row.scope, match=row.match,
                   clauses=tuple(row.clauses or ()), pk=row.pk, sla_days=row.sla_days)


def everything():
    """Every rule ever defined, in display order (one query per request)."""
    rows = getattr(_local, "rows", None)
    if rows is None:
        defaults = _defaults()
        loaded = [_from_row(row) for row in Rule.objects.all()]
        known = {rule.key for rule in loaded}
        missing = [rule for key, rule in defaults.items() if key not in known]
        rows = missing + loaded if missing else loaded
        _local.rows = rows
    return rows


def rules():
    """The rules in force: enabled and not deleted, in display order."""
    return [rule for rule in everything() if rule.enabled and not rule.deleted]


def keys():
    return tuple(rule.key for rule in rules())


def get(key):
    """The rule in force with this key, or None."""
    return next((rule for rule in rules() if rule.key == key), None)


def known(key):
    """Any rule ever defined with this key (disabled and deleted ones too), or None."""
    return next((rule for rule in everything() if rule.key == key), None)


def labels():
    """Key -> name for every rule ever defined (history names deleted ones too)."""
    return {rule.key: rule.label for rule in everything()}


def explanations():
    return {rule.key: rule.explanation for rule in everything()}


def history_keys(points):
    """The rules a trend draws: those in force, then any other rule the snapshots of `points` counted."""
    shown = list(keys())
    counted = set().union(*(set(measures) for _, measures in points)) if points else set()
    shown += [rule.key for rule in everything() if rule.key in counted and rule.key not in shown]
    return shown


def history_labels():
    """Names for trends: a rule no longer in force says so."""
    return {rule.key: rule.label + (" (deleted)" if rule.deleted else "" if rule.enabled else " (off)")
            for rule in everything()}


def weights():
    return {rule.key: rule.weight for rule in rules()}


def rule_filters(prefix="", only=None):
    """Key -> Q on Resource (through `prefix`) for the rules in force (or those of `only`), in display order."""
    chosen = rules() if only is None else [rule for rule in rules() if rule.key in only]
    return {rule.key: rule.q(prefix) for rule in chosen}


def scope_ids(query):
    return filterset_from_query(query).qs.order_by().values("pk")


def custom_q(rule, prefix=""):
    """A custom rule as a Q: in its scope, and its condition holds. A rule that cannot compile matches nothing
    (and is logged): a rule never makes a page fail."""
    try:
        clauses, errors = conditions.check_all(list(rule.clauses), against_db=False)
        if errors:
            raise ValueError("; ".join(errors.values()))
        q = conditions.condition_q(clauses, rule.match, prefix)
        if rule.scope:
            q &= Q(**{f"{prefix}pk__in": scope_ids(rule.scope)})
        return q
    except Exception:  # noqa: BLE001 - a stored rule that no longer compiles must not break a page
        logger.exception("Rule %s no longer compiles; it matches nothing until it is fixed", rule.key)
        return Q(**{f"{prefix}pk__isnull": True})


def health_expression(broken):
    """A 0-100 score: 100 minus the weights of the rules a resource breaks.

    `broken` maps rule key -> Q meaning "breaks this rule" (callers decide whether snoozed issues count).
    """
    weight = weights()
    penalty = sum(
        (Case(When(q, then=Value(weight[key])), default=Value(0), output_field=IntegerField())
         for key, q in broken.items() if weight.get(key)),
        Value(0),
    )
    return Greatest(Value(0), Value(100) - penalty, output_field=IntegerField())


def summary():
    """The report: counts per rule in force, overall and per entity type, for resources in scope (snoozes
    ignored). The built-in rules the command's contract names are always there (0 while disabled)."""
    filters = rule_filters()
    counts = {f"m_{key}": Count("pk", filter=q) for key, q in filters.items()}
    totals = builtin.in_scope().aggregate(resources=Count("pk"), **counts)
    per_type = [key for key in ("stale", "unowned", "undocumented", "failing_dbt_tests") if key in filters]
    by_type = (
        builtin.in_scope().order_by().values("entity_type")
        .annotate(resources=Count("pk"), **{f"m_{key}": counts[f"m_{key}"] for key in per_type})
        .order_by("entity_type")
    )
    return {
        "resources": totals["resources"],
        "integrations": Integration.objects.present().count(),
        **{key: 0 for key in builtin.REPORT_RULES},
        **{key: totals[f"m_{key}"] for key in filters},
        "by_entity_type": {
            row["entity_type"] or "unknown": {"resources": row["resources"],
                                              **{key: row[f"m_{key}"] for key in per_type}}
            for row in by_type
        },
    }
