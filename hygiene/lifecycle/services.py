"""Keeping the issue history: after every snapshot (a sync, a change set, a snooze or a rule changed), the open
intervals are made to equal the open issues, set-wise in the database, a few statements per rule and no loop
over resources: open where a resource breaks a rule with no open interval, close where an open interval's issue
is gone, saying why (removed, archived, snoozed, else fixed)."""
from django.db import connection, transaction
from django.db.models import Case, Exists, Max, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from catalog_sync.mirror import refresh_planner_statistics
from catalog_sync.models import Resource
from hygiene.lifecycle.models import IssueInterval
from hygiene.rules import in_scope

MAX_LISTED = 20_000
ANALYZE_AFTER = 10_000  # intervals opened in one update that make the planner's statistics out of date


def _insert_opened(ids, rule, now, cause, sync_run_id, change_set_id, seen_since):
    """INSERT … SELECT: one interval per id of the `ids` queryset (values("pk")), in one statement."""
    sql, params = ids.query.sql_with_params()
    table = IssueInterval._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (resource_id, rule, opened_at, opened_cause, opened_sync_id, opened_change_set_id, "
            f"seen_since, close_reason, closed_cause) SELECT sub.pk, %s, %s, %s, %s, %s, %s, '', '' FROM ({sql}) sub",
            [rule, connection.ops.adapt_datetimefield_value(now), cause, sync_run_id, change_set_id, seen_since,
             *params])
        return cursor.rowcount


@transaction.atomic
def update_history(open_filters, raw_filters, cause, sync_run_id=None, change_set_id=None, now=None,
                   candidates=None, everywhere=(), store_starts=True):
    """Make the open intervals equal the open issues. `open_filters`: rule -> Q of open (not snoozed) issues;
    `raw_filters`: rule -> Q of issues snoozed or not (to tell "snoozed" from "fixed"). With `candidates` (a
    values("pk") queryset of the resources that changed), only those are looked at, except for the rules of
    `everywhere` (whose answer moves without the resource changing: dbt results, "older than" clauses).
    Without `store_starts`, the resources' oldest starts are left for the caller to store (`start_values`).
    Returns (opened, closed)."""
    now = now or timezone.now()
    last_before = IssueInterval.objects.aggregate(last=Max("pk"))["last"]
    first = last_before is None
    if first:
        candidates = None  # history begins: everything is looked at once
    elif candidates is not None:
        # A few thousand ids go into every statement as a list: cheaper than re-running the subquery each time.
        ids = list(candidates.values_list(candidates.query.values_select[0], flat=True)[:MAX_LISTED + 1])
        if len(ids) <= MAX_LISTED:
            candidates = ids
    opened = closed = 0
    still_open = IssueInterval.objects.filter(closed_at__isnull=True)
    gone = ~Exists(Resource.objects.filter(pk=OuterRef("resource_id")))
    removed = Exists(Resource.objects.filter(pk=OuterRef("resource_id"), removed_at__isnull=False))
    archived = Exists(Resource.objects.filter(pk=OuterRef("resource_id"), archived=True))
    closing = {"closed_at": now, "closed_cause": cause, "closed_sync_id": sync_run_id,
               "closed_change_set_id": change_set_id}
    for rule, q in open_filters.items():
        narrow = candidates is not None and rule not in everywhere
        if narrow and isinstance(candidates, list) and not candidates:
            continue  # nothing changed: nothing to open or close for this rule
        open_now = in_scope().filter(q)
        mine = still_open.filter(rule=rule)
        if narrow:
            open_now, mine = open_now.filter(pk__in=candidates), mine.filter(resource_id__in=candidates)
        # Anti-joins (NOT EXISTS), not NOT IN: PostgreSQL falls back to a subplan per row for a NOT IN over a
        # million ids that do not fit in work_mem.
        snoozed = Exists(in_scope().filter(raw_filters[rule], pk=OuterRef("resource_id")))
        closed += mine.exclude(Exists(open_now.filter(pk=OuterRef("resource_id")))).update(
            close_reason=Case(When(gone, then=Value(IssueInterval.REMOVED)),
                              When(removed, then=Value(IssueInterval.REMOVED)),
                              When(archived, then=Value(IssueInterval.ARCHIVED)),
                              When(snoozed, then=Value(IssueInterval.SNOOZED)),
                              default=Value(IssueInterval.FIXED)),
            **closing)
        new = open_now.exclude(Exists(mine.filter(resource_id=OuterRef("pk")))).order_by().values("pk")
        # A rule created, changed or switched on finds issues that were there before it: their start is unknown.
        opened += _insert_opened(new, rule, now, cause, sync_run_id, change_set_id,
                                 first or cause == IssueInterval.RULES)
    if candidates is None:  # a rule switched off or deleted takes a full update (a rule change is one)
        closed += still_open.exclude(rule__in=list(open_filters)).update(close_reason=IssueInterval.RULE_OFF,
                                                                         **closing)
    if opened >= ANALYZE_AFTER or (first and opened):
        # Statistics that still say "empty" (a first update) plan the next statements as loops over every row
        # (the stored starts' lookups scanned every open interval for each resource, even at a few hundred).
        refresh_planner_statistics([IssueInterval])
    if (opened or closed) and store_starts:
        moved = IssueInterval.objects.filter(Q(pk__gt=last_before or 0) | Q(closed_at=now))
        store_open_since(None if first else moved.values("resource_id"))
    return opened, closed


def store_open_since(resource_ids=None):
    """Copy onto each resource when its oldest open interval began (`issues_open_since`, and
    `issues_open_since_seen` when that start is only "seen since"), for the resources of `resource_ids` (a
    values("resource_id") queryset of the intervals that moved), or every resource when None. Returns how many
    resources changed.

    On PostgreSQL, two set-wise statements that write only the rows whose values move: every row written
    goes into each of the resource table's indexes, and a correlated subquery per resource (the portable form
    below) rewrote every resource with an open issue at every full update."""
    if connection.vendor != "postgresql":
        return _store_open_since_portable(resource_ids)
    table, intervals = Resource._meta.db_table, IssueInterval._meta.db_table
    scope, params = "", []
    if resource_ids is not None:
        sql, params = resource_ids.query.sql_with_params()
        scope = f"AND {{column}} IN ({sql})"
    with connection.cursor() as cursor:
        # Cleared first, so the clearing looks only at rows that had a start (none, the first time).
        cursor.execute(
            f"UPDATE {table} r SET issues_open_since = NULL, issues_open_since_seen = false "
            f"WHERE (r.issues_open_since IS NOT NULL OR r.issues_open_since_seen) {scope.format(column='r.id')} "
            f"AND NOT EXISTS (SELECT 1 FROM {intervals} i WHERE i.resource_id = r.id AND i.closed_at IS NULL)",
            params)
        cleared = cursor.rowcount
        # On equal starts, the one whose start is unknown: "at least" is the honest word.
        cursor.execute(
            f"UPDATE {table} r SET issues_open_since = o.opened_at, issues_open_since_seen = o.seen_since "
            f"FROM (SELECT DISTINCT ON (i.resource_id) i.resource_id, i.opened_at, i.seen_since FROM {intervals} i "
            f"      WHERE i.closed_at IS NULL {scope.format(column='i.resource_id')} "
            f"      ORDER BY i.resource_id, i.opened_at, i.seen_since DESC, i.id) o "
            f"WHERE r.id = o.resource_id AND (r.issues_open_since IS DISTINCT FROM o.opened_at "
            f"      OR r.issues_open_since_seen IS DISTINCT FROM o.seen_since)", params)
        return cleared + cursor.rowcount


def _oldest_open():
    # On equal starts, the one whose start is unknown: "at least" is the honest word.
    return (IssueInterval.objects.filter(resource_id=OuterRef("pk"), closed_at__isnull=True)
            .order_by("opened_at", "-seen_since", "id"))


def start_values():
    """A resource's stored start, as update() values computed per row: for a caller that writes the rows anyway."""
    oldest = _oldest_open()
    return {"issues_open_since": Subquery(oldest.values("opened_at")[:1]),
            "issues_open_since_seen": Coalesce(Subquery(oldest.values("seen_since")[:1]), Value(False))}


def has_start_to_store():
    """Rows whose stored start may move: those with an open interval or a start stored."""
    return Q(issues_open_since__isnull=False) | Exists(_oldest_open())


def _store_open_since_portable(resource_ids):
    targets = Resource.objects.all()
    if resource_ids is not None:
        targets = targets.filter(pk__in=resource_ids)
    else:  # resources with no open interval and nothing stored have nothing to change
        targets = targets.filter(has_start_to_store())
    return targets.update(**start_values())
