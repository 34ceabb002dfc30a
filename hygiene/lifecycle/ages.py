"""How long open issues have been open, for issue lists: the "Open for" annotation, the "Open longer than" and
"New since" conditions, and the age in plain words. The conditions are correlated subqueries on one resource's
open intervals, which the partial unique index on (resource, rule) where closed_at is null answers."""
from datetime import timedelta

from django.db.models import Exists, F, FilteredRelation, OuterRef, Q
from django.utils import timezone

from hygiene.lifecycle.models import IssueInterval
from hygiene.lifecycle.queries import overdue_q

# "Open longer than" takes at most this many days (a bigger number cannot be a date).
MAX_OPEN_DAYS = 36_500


def open_intervals(rules):
    """The open intervals of the rules `rules` (keys), for the resource of the outer query."""
    return IssueInterval.objects.filter(resource_id=OuterRef("pk"), closed_at__isnull=True, rule__in=list(rules))


def with_open_since(queryset, rule=None):
    """`queryset` annotated with `open_since` (when the open interval of `rule` began; with no rule, the oldest
    open interval of any rule, as stored on the resource by every snapshot) and `open_since_seen` (True when that
    start is only "seen since": it was open when the history began). Both sort with an index or a join, not a
    subquery per row. A queryset that has them already is returned as it is."""
    if "open_since" in queryset.query.annotations:
        return queryset
    if rule is None:
        return queryset.annotate(open_since=F("issues_open_since"), open_since_seen=F("issues_open_since_seen"))
    # At most one open interval per (resource, rule): the join never repeats a row.
    interval = FilteredRelation("issue_intervals", condition=Q(issue_intervals__rule=rule,
                                                                issue_intervals__closed_at__isnull=True))
    return queryset.alias(open_interval=interval).annotate(
        open_since=F("open_interval__opened_at"), open_since_seen=F("open_interval__seen_since"))


def open_longer_than(rules, days, now=None):
    """A condition: an open interval of `rules` began more than `days` days ago. One open "at least since"
    counts from then: it matches as soon as that is long enough."""
    cutoff = (now or timezone.now()) - timedelta(days=days)
    return Exists(open_intervals(rules).filter(opened_at__lt=cutoff))


def new_since(rules, day):
    """A condition: an open interval of `rules` began on or after the local date `day`. One open when the history
    began never matches: nobody knows when it began."""
    return Exists(open_intervals(rules).filter(opened_at__date__gte=day, seen_since=False))


def plain_age(seconds):
    """12 days, 3 hours, 5 minutes: whole units, rounded down (so "at least 12 days" is never more than true)."""
    if seconds is None:
        return "—"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= 2 * size:
            return f"{int(seconds // size):,} {unit}s"
    return "under 2 minutes"


def open_for_words(since, seen_since, now=None):
    """"12 days", or "at least 12 days" when the start is unknown; "—" without an open interval."""
    if since is None:
        return "—"
    seconds = ((now or timezone.now()) - since).total_seconds()
    if seen_since:
        return "seen just now" if seconds < 120 else f"at least {plain_age(seconds)}"
    return plain_age(seconds)


def overdue_ids(deadlines):
    """The resources with an open issue past its rule's "fix within" days (`deadlines`: rule -> days)."""
    return IssueInterval.objects.filter(overdue_q(deadlines)).values("resource_id")
