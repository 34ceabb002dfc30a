"""The issue history as pages show it: rows per rule for the overview and team pages, a resource's timeline."""
from datetime import timedelta

from django.db.models import Min
from django.utils import timezone

from hygiene.lifecycle import queries
from hygiene.lifecycle.models import IssueInterval
from hygiene.rulebook import registry


def deadlines():
    """rule -> its "fix within" days, for the rules in force that have one."""
    return {rule.key: rule.sla_days for rule in registry.rules() if rule.sla_days}


def is_overdue(interval, days, now):
    return bool(days) and interval.closed_at is None and interval.opened_at < now - timedelta(days=days)


def overdue_count(resource_ids, rules=None, now=None):
    """How many open issues of `resource_ids` (a values("pk") subquery) are past their rule's fix-within time,
    for the rules in force (or those of `rules`); None when none of them has a fix-within time."""
    due = {key: days for key, days in deadlines().items() if rules is None or key in rules}
    if not due:
        return None
    return IssueInterval.objects.filter(queries.overdue_q(due, now), resource_id__in=resource_ids).count()


def issue_flow(intervals=None, oldest=10):
    """Context for lifecycle/_flow.html: opened and fixed per rule in force, median time to fix, how many are
    past their rule's fix-within time, the oldest open."""
    now = timezone.now()
    due = deadlines()
    flow = queries.flow_by_rule(intervals, now=now, deadlines=due)
    rows = []
    for rule in registry.rules():
        measures = flow.get(rule.key, {})
        rows.append({"key": rule.key, "label": rule.label, **{k: measures.get(k, 0) for k in
                                                              ("opened_7", "fixed_7", "opened_30", "fixed_30")},
                     "median_fix": queries.plain_duration(measures.get("median_fix_seconds")),
                     "sla_days": rule.sla_days, "overdue": measures.get("overdue", 0) if rule.sla_days else None})
    # When the history began for everyone: a team with no issue yet still has a history.
    began = IssueInterval.objects.aggregate(began=Min("opened_at"))["began"]
    oldest_open = queries.oldest_open(oldest, intervals, rules=registry.keys())
    for interval in oldest_open:
        interval.overdue = is_overdue(interval, due.get(interval.rule), now)
    return {"flow": rows, "history_began": began, "rule_labels": registry.labels(), "oldest": oldest_open,
            "any_deadline": bool(due)}


def resource_timeline(resource_id):
    labels = registry.history_labels()
    due, now = deadlines(), timezone.now()
    return [{"interval": interval, "label": labels.get(interval.rule, interval.rule),
             "overdue": is_overdue(interval, due.get(interval.rule), now), "sla_days": due.get(interval.rule)}
            for interval in queries.timeline(resource_id)]
