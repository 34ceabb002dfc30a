"""Rules with exceptions applied: what counts as an open issue right now.

`hygiene.rulebook.registry` says what each rule in force means; this module leaves out what
stewards snoozed, and is what lists, snapshots and scores count with.
"""
import operator
from functools import reduce

from django.db.models import BooleanField, Case, Q, Value, When

from hygiene.dashboard.filtersets import filterset_from_query
from hygiene.dashboard.models import Snooze
from hygiene.rulebook.registry import rule_filters


def active_snoozes(now=None):
    return list(Snooze.objects.active(now))


def snoozed_q(rule, snoozes, prefix=""):
    """Q for resources whose `rule` issue is snoozed (None when nothing is)."""
    relevant = [s for s in snoozes if s.rule in ("", rule)]
    if not relevant:
        return None
    q = Q()
    resource_ids = [s.resource_id for s in relevant if s.resource_id]
    if resource_ids:
        q |= Q(**{f"{prefix}pk__in": resource_ids})
    for snooze in relevant:
        if snooze.filter_query:
            q |= Q(**{f"{prefix}pk__in": matching_ids(snooze)})
    return q


def matching_ids(snooze):
    """The ids a filter-wide snooze covers, as a subquery; its filter is validated once per request."""
    if not hasattr(snooze, "_matching_ids"):
        snooze._matching_ids = filterset_from_query(snooze.filter_query).qs.order_by().values("pk")
    return snooze._matching_ids


def open_issue_filters(prefix="", snoozes=None, rules=None):
    """Rule -> Q for issues that are not snoozed."""
    snoozes = active_snoozes() if snoozes is None else snoozes
    filters = {}
    for name, q in rule_filters(prefix, rules).items():
        snoozed = snoozed_q(name, snoozes, prefix)
        filters[name] = q & ~snoozed if snoozed is not None else q
    return filters


def snoozed_issue_filters(prefix="", snoozes=None, rules=None):
    """Rule -> Q for issues that are snoozed (rules nobody snoozed are left out)."""
    snoozes = active_snoozes() if snoozes is None else snoozes
    filters = {}
    for name, q in rule_filters(prefix, rules).items():
        snoozed = snoozed_q(name, snoozes, prefix)
        if snoozed is not None:
            filters[name] = q & snoozed
    return filters


def any_of(filters):
    return reduce(operator.or_, filters.values())



def flags(prefix, filters):
    """Boolean annotations `<prefix><rule>` saying which of `filters` a row matches."""
    return {f"{prefix}{name}": Case(When(q, then=Value(True)), default=Value(False), output_field=BooleanField())
            for name, q in filters.items()}
