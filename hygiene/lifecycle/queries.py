"""What the issue history says: opened and fixed per rule over the last 7 and 30 days, the median time to fix,
the oldest open issues and one resource's timeline. A handful of aggregate queries, whatever the size."""
import statistics
from datetime import timedelta

from django.db import connection
from django.db.models import Aggregate, Count, F, Q
from django.db.models import FloatField
from django.utils import timezone

from hygiene.lifecycle.models import IssueInterval

FIX_WINDOW_DAYS = 90


class Median(Aggregate):
    """PostgreSQL's percentile_cont(0.5) over a duration, in seconds."""
    function = "percentile_cont"
    template = "percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM %(expressions)s))"
    output_field = FloatField()


def grouped_medians(intervals, *fields):
    """(values of `fields`) -> median seconds from opening to fixing, for `intervals` (closed as fixed, start
    known), in one grouped query."""
    if connection.vendor == "postgresql":
        rows = intervals.order_by().values(*fields).annotate(median=Median(F("closed_at") - F("opened_at")))
        return {tuple(row[name] for name in fields): row["median"] for row in rows}
    grouped = {}
    for *key, opened, closed in intervals.order_by().values_list(*fields, "opened_at", "closed_at"):  # SQLite
        grouped.setdefault(tuple(key), []).append((closed - opened).total_seconds())
    return {key: statistics.median(values) for key, values in grouped.items()}


def _medians(intervals):
    """rule -> median seconds from opening to fixing, for `intervals` (closed as fixed, start known)."""
    return {key[0]: median for key, median in grouped_medians(intervals, "rule").items()}


def recently_fixed(intervals=None, now=None):
    """The fixes the median time to fix covers: closed as fixed in the last FIX_WINDOW_DAYS, start known."""
    now = now or timezone.now()
    intervals = IssueInterval.objects.all() if intervals is None else intervals
    return intervals.filter(close_reason=IssueInterval.FIXED, seen_since=False,
                            closed_at__gte=now - timedelta(days=FIX_WINDOW_DAYS))


def overdue_q(deadlines, now=None):
    """Open intervals older than their rule's "fix within" days (`deadlines`: rule -> days). One opened "at
    least since" history began counts from then: overdue at the latest when its rule says."""
    now = now or timezone.now()
    q = Q()
    for rule, days in deadlines.items():
        q |= Q(rule=rule, opened_at__lt=now - timedelta(days=days))
    return Q(closed_at__isnull=True) & q if deadlines else Q(pk__isnull=True)  # no deadline: nothing is late


def flow_by_rule(intervals=None, now=None, deadlines=None):
    """rule -> {opened_7, fixed_7, opened_30, fixed_30, overdue, median_fix_seconds}. `intervals` narrows the
    history (a team's resources, say). Intervals open when history began are not "opened" then: their start is
    unknown. `deadlines` (rule -> fix within days) counts the open ones past it as overdue."""
    now = now or timezone.now()
    intervals = IssueInterval.objects.all() if intervals is None else intervals
    week, month = now - timedelta(days=7), now - timedelta(days=30)
    opened = Q(seen_since=False)
    fixed = Q(close_reason=IssueInterval.FIXED)
    late = overdue_q(deadlines or {}, now)
    # Only rows that count somewhere: the indexes on opened_at and closed_at find them, whatever the history's size.
    counted = (opened & Q(opened_at__gte=month)) | (fixed & Q(closed_at__gte=month)) | late
    rows = intervals.filter(counted).order_by().values("rule").annotate(
        opened_7=Count("pk", filter=opened & Q(opened_at__gte=week)),
        opened_30=Count("pk", filter=opened & Q(opened_at__gte=month)),
        fixed_7=Count("pk", filter=fixed & Q(closed_at__gte=week)),
        fixed_30=Count("pk", filter=fixed & Q(closed_at__gte=month)),
        overdue=Count("pk", filter=late),
    )
    flow = {row.pop("rule"): row for row in rows}
    medians = _medians(recently_fixed(intervals, now))
    for rule, row in flow.items():
        row["median_fix_seconds"] = medians.get(rule)
    return flow


def oldest_open(limit=10, intervals=None, rules=None):
    intervals = IssueInterval.objects.all() if intervals is None else intervals
    query = intervals.filter(closed_at__isnull=True, resource__removed_at__isnull=True)
    if rules is not None:
        query = query.filter(rule__in=list(rules))
    return list(query.select_related("resource", "resource__integration").order_by("opened_at", "id")[:limit])


def timeline(resource_id, limit=200):
    return list(IssueInterval.objects.filter(resource_id=resource_id).order_by("-opened_at", "-id")[:limit])


def plain_duration(seconds):
    """3 days, 5 hours, 12 minutes: the largest unit that says it."""
    if seconds is None:
        return "—"
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.0f} hours"
    if seconds >= 120:
        return f"{seconds / 60:.0f} minutes"
    return "under 2 minutes"



