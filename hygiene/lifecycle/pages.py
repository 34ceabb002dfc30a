"""The issue history as pages show it: rows per rule for the overview and team pages, a resource's timeline."""
from django.db.models import Min

from hygiene.lifecycle import queries
from hygiene.lifecycle.models import IssueInterval
from hygiene.rulebook import registry


def issue_flow(intervals=None, oldest=10):
    """Context for lifecycle/_flow.html: opened and fixed per rule in force, median time to fix, oldest open."""
    flow = queries.flow_by_rule(intervals)
    rows = []
    for rule in registry.rules():
        measures = flow.get(rule.key, {})
        rows.append({"key": rule.key, "label": rule.label, **{k: measures.get(k, 0) for k in
                                                              ("opened_7", "fixed_7", "opened_30", "fixed_30")},
                     "median_fix": queries.plain_duration(measures.get("median_fix_seconds"))})
    began = (IssueInterval.objects.all() if intervals is None else intervals).aggregate(began=Min("opened_at"))["began"]
    return {"flow": rows, "history_began": began, "rule_labels": registry.labels(),
            "oldest": queries.oldest_open(oldest, intervals, rules=registry.keys())}


def resource_timeline(resource_id):
    labels = registry.history_labels()
    return [{"interval": interval, "label": labels.get(interval.rule, interval.rule)}
            for interval in queries.timeline(resource_id)]
