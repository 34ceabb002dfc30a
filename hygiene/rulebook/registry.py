"""The rules in force, read from the registry once per request or task.

`rules()` lists the enabled rules in display order, built-in and custom alike, each able to say which
resources break it (`RuleDef.q`). `labels()` also names disabled and deleted rules, so the snapshots and trends
that counted them stay readable. A built-in rule whose row is missing (a database flushed by a test, say)
counts with its defaults: the built-in rules never silently vanish."""
import logging
import threading
from dataclasses import dataclass, field

from django import forms
from django.conf import settings
from django.db import connection
from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When
from django.db.models.expressions import Col
from django.db.models.lookups import Exact
from django.db.models.functions import Greatest

from hygiene import rules as builtin
from hygiene.dashboard.filtersets import filterset_from_query
from hygiene.rulebook import conditions
from catalog_sync.models import Integration, Resource, ResourceRef
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
    _local.__dict__.pop("compiled", None)


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


class _Recorder(QuerySet):
    """A queryset on Resource that keeps the filters applied to it as one Q instead of building SQL."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.recorded = Q()

    def _clone(self):
        clone = super()._clone()
        clone.recorded = self.recorded
        return clone

    def _filter_or_exclude_inplace(self, negate, args, kwargs):
        q = Q(*args, **kwargs)
        self.recorded &= ~q if negate else q


def _own_lists(q):
    """The same Q, each `pk__in` a subquery of ResourceRef rows replaced by a test of the row's own list."""
    if connection.vendor != "postgresql":  # SQLite has no JSON containment
        return q
    copy = Q()
    copy.connector, copy.negated = q.connector, q.negated
    for child in q.children:
        if isinstance(child, Q):
            child = _own_lists(child)
        elif isinstance(child, tuple) and child[0] == "pk__in":
            child = _own_list_q(child[1]) or child
        copy.children.append(child)
    return copy


def _own_list_q(refs):
    """`pk__in` ResourceRef rows of one kind (and id) as the row's own list (ResourceRef is "a queryable copy of
    its lists"): `teams @> '["id"]'`, or a non-empty list. Counted over every row, this costs nothing, where the
    subquery builds a hash of every reference of that team (tens of milliseconds) in each list, count and flag.
    None when the subquery is anything else (it is then kept as it is)."""
    if not isinstance(refs, QuerySet) or refs.model is not ResourceRef:
        return None
    query = refs.query
    if query.where.connector != "AND" or query.where.negated or tuple(query.values_select) != ("resource_id",):
        return None
    found = {}
    for child in query.where.children:
        if (not isinstance(child, Exact) or not isinstance(child.lhs, Col) or child.lhs.target.model is not ResourceRef
                or child.lhs.target.name not in ("kind", "ref_id") or not isinstance(child.rhs, str)):
            return None
        found[child.lhs.target.name] = child.rhs
    column = ResourceRef.LIST_FIELDS.get(found.get("kind"))
    if column is None:
        return None
    if "ref_id" in found:
        return Q(**{f"{column}__contains": [found["ref_id"]]})
    return ~Q(**{column: []})


def _prefixed(q, prefix):
    """The same Q through a relation ("resource__"): every lookup's path prefixed."""
    if not prefix:
        return q
    copy = Q()
    copy.connector, copy.negated = q.connector, q.negated
    for child in q.children:
        if isinstance(child, Q):
            copy.children.append(_prefixed(child, prefix))
        elif isinstance(child, tuple):
            copy.children.append((f"{prefix}{child[0]}", child[1]))
        else:
            raise TypeError(f"Cannot prefix {child!r}")
    return copy


def _scope_values(filterset):
    """A stored scope's values as its filters take them, read without asking the database: the scope was
    checked when the rule was saved, and an id that since left the mirror still narrows the rule (to nothing)
    rather than being dropped (which would widen it to the whole catalog)."""
    form = filterset.form
    values = {}
    for name, form_field in form.fields.items():
        raw = form_field.widget.value_from_datadict(form.data, form.files, form.add_prefix(name))
        if raw in (None, "", [], ()):
            continue
        try:
            if isinstance(form_field, forms.ModelMultipleChoiceField):
                value = [form_field.queryset.model(pk=pk) for pk in raw]
            elif isinstance(form_field, forms.ModelChoiceField):
                value = form_field.queryset.model(pk=raw)
            else:
                value = form_field.to_python(raw)
        except forms.ValidationError:
            continue
        values[name] = value
    return values


def scope_q(query, prefix="", own_lists=True):
    """A scope (the issue lists' filters, as a query string) as conditions on the row itself, so counting a
    scoped rule costs no query of its own and no subquery over the whole mirror: the filterset's filters are
    applied to a queryset that only records them. With `own_lists`, a team, tag or owner filter tests the row's
    own list (right when every row is tested anyway: counts, flags); without, it stays a subquery of the
    references, which an index answers (right when the scope is what narrows the rows: the preview). A
    filter that does more than filter falls back to the filterset's own queryset as a subquery."""
    filterset = filterset_from_query(query)
    recorder = _Recorder(model=Resource)
    try:
        for name, value in _scope_values(filterset).items():
            recorder = filterset.filters[name].filter(recorder, value)
        if isinstance(recorder, _Recorder) and not recorder.query.annotations and not recorder.query.where:
            recorded = _own_lists(recorder.recorded) if own_lists else recorder.recorded
            # In scope too, as the filterset's own queryset is: the same rows whichever way it is compiled.
            return _prefixed(recorded, prefix) & builtin.scope_q(prefix)
    except (TypeError, ValueError, AttributeError):
        logger.warning("Scope %r compiled as a subquery", query, exc_info=True)
    return Q(**{f"{prefix}pk__in": scope_ids(query)})


def custom_q(rule, prefix=""):
    """A custom rule as a Q: in its scope, and its condition holds. A rule that cannot compile matches nothing
    (and is logged): a rule never makes a page fail. Compiled once per request or task (`forget` clears it):
    lists, counts and flags ask for the same rules several times."""
    compiled = _local.__dict__.setdefault("compiled", {})
    cache_key = (rule.key, rule.pk, rule.scope, rule.match, repr(rule.clauses), prefix)
    if cache_key in compiled:
        return compiled[cache_key]
    try:
        clauses, errors = conditions.check_all(list(rule.clauses), against_db=False)
        if errors:
            raise ValueError("; ".join(errors.values()))
        q = conditions.condition_q(clauses, rule.match, prefix)
        if rule.scope:
            q &= scope_q(rule.scope, prefix)
    except Exception:  # noqa: BLE001 - a stored rule that no longer compiles must not break a page
        logger.exception("Rule %s no longer compiles; it matches nothing until it is fixed", rule.key)
        q = Q(**{f"{prefix}pk__isnull": True})
    compiled[cache_key] = q
    return q


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
