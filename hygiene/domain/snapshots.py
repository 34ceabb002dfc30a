"""Snapshots: the overview's counts, breakdowns and health, stored after every
successful sync and whenever a snooze changes, so pages read one row."""
import logging

from django.db.models import Avg, Count, Exists, OuterRef, Q
from django.utils import timezone

from catalog_sync import locks
from catalog_sync.models import Resource, ResourceRef, SyncRun
from catalog_sync.sync import timed
from hygiene.bulk.models import ChangeItem
from hygiene.dashboard.models import Snapshot, Snooze
from hygiene.domain.issues import active_snoozes, any_of, open_issue_filters, snoozed_issue_filters
from hygiene.lifecycle.models import IssueInterval
from hygiene.lifecycle.services import has_start_to_store, start_values, update_history
from hygiene.rulebook import registry
from hygiene.rulebook.registry import health_expression, rule_filters
from hygiene.rules import in_scope, scope_q
from hygiene.suggestions import compute as suggestions

logger = logging.getLogger(__name__)


def aggregates(prefix="", snoozes=()):
    open_filters = open_issue_filters(prefix, snoozes)
    snoozed = snoozed_issue_filters(prefix, snoozes)
    # Aliased with a prefix: an aggregate may not share a model field's name ("stale").
    return {
        "m_resources": Count("pk"),
        **{f"m_{rule}": Count("pk", filter=q) for rule, q in open_filters.items()},
        "m_issues": Count("pk", filter=any_of(open_filters)),
        "m_snoozed": Count("pk", filter=any_of(snoozed)) if snoozed else Count("pk", filter=Q(pk__isnull=True)),
        "m_health": Avg(health_expression(open_filters)),
        # Unowned whether snoozed or not: "have no owner at all" means all of them.
        "m_unowned_all": Count("pk", filter=Q(**{f"{prefix}is_owned": False})),
    }


def _clean(row):
    measures = {name[2:]: value for name, value in row.items() if name.startswith("m_")}
    if measures.get("health") is not None:
        measures["health"] = round(measures["health"], 1)
    return measures


def _grouped(queryset, keys, measures, key_of):
    rows = queryset.order_by().values(*keys).annotate(**measures)
    return {key_of(row): _clean(row) for row in rows}


def compute():
    """Fresh counts from the mirror (a handful of aggregate queries)."""
    snoozes = active_snoozes()
    direct = aggregates("", snoozes)
    via_ref = aggregates("resource__", snoozes)
    refs = ResourceRef.objects.filter(scope_q("resource__"))
    # The totals also say how many open unowned and undocumented issues have a suggested fix.
    share = suggestions.share_counts(open_issue_filters(snoozes=snoozes))
    return {
        "totals": {**_clean(in_scope().aggregate(**direct)), **share},
        "by_integration": _grouped(in_scope(), ["integration_id"], direct, lambda r: r["integration_id"] or ""),
        "by_entity_type": _grouped(in_scope(), ["entity_type"], direct, lambda r: r["entity_type"] or "unknown"),
        "by_team": {
            **_grouped(refs.filter(kind=ResourceRef.TEAM), ["ref_id"], via_ref, lambda r: r["ref_id"]),
            # Resources in no team, as a row of their own (key "none", the team filter's "No team").
            # An anti-join (NOT EXISTS), not NOT IN: a NOT IN over a million references that do not fit in memory
            # is tested row by row.
            "none": _clean(in_scope().filter(~Exists(ResourceRef.objects.filter(
                kind=ResourceRef.TEAM, resource_id=OuterRef("pk")))).aggregate(**direct)),
        },
        "by_owner": _grouped(
            refs.filter(kind__in=[ResourceRef.OWNER, ResourceRef.OWNER_GROUP]), ["kind", "ref_id"], via_ref,
            lambda r: f"{'user' if r['kind'] == ResourceRef.OWNER else 'group'}:{r['ref_id']}"),
    }


def store_health_scores(snoozes, with_starts=False):
    """Write every resource's health score, so lists sort and page on an indexed column. `with_starts`: also
    its oldest open issue's start, in the same write (when the history has just begun)."""
    score = health_expression(open_issue_filters(snoozes=snoozes))
    # Only rows whose score moved are written: a snooze or a sync touches a few, not all 100,000.
    moved = Q(health_score__isnull=True) | ~Q(health_score=score)
    if not with_starts:
        in_scope().filter(moved).update(health_score=score)
        return
    in_scope().filter(moved | has_start_to_store()).update(health_score=score, **start_values())
    # Out of scope (removed, archived) nothing is open: no start.
    Resource.objects.exclude(scope_q()).filter(has_start_to_store()).update(**start_values())


CAUSES = {Snapshot.SYNC: IssueInterval.SYNC, Snapshot.SNOOZE: IssueInterval.SNOOZE, Snapshot.RULES: IssueInterval.RULES,
          Snapshot.REFRESH: IssueInterval.REFRESH}


def changed_resources(sync_run=None, change_set_id=None):
    """The resources whose issues may have moved: what an incremental sync wrote or removed, or what a change
    set edited (values("pk")); None when everything must be looked at (a full sweep, a snooze, a rule)."""
    if change_set_id:
        return ChangeItem.objects.filter(change_set_id=change_set_id).values("resource_id")
    if sync_run is not None and sync_run.kind == SyncRun.INCREMENTAL and sync_run.started_at:
        since = sync_run.started_at
        return Resource.objects.filter(Q(changed_at__gte=since) | Q(removed_at__gte=since)).values("pk")
    return None


def take_snapshot(reason, sync_run=None, change_set_id=None):
    """Health scores, the issue history and a snapshot of the counts, after whatever changed them. After a sync
    or a change set (what changes the mirror), the suggested fixes are computed again first, so the counts say
    how many issues have one and an accepted suggestion is gone. Each step's seconds are kept on the snapshot
    (`durations`, shown in the admin) and logged."""
    durations = {}
    snoozes = active_snoozes()
    # When the history begins, every resource's score and its oldest issue's start are both new: one write of
    # each row does both (a million rows, each written into every index of the table, is minutes per write).
    begins = not IssueInterval.objects.exists()

    def history():
        return update_history(
            open_issue_filters(snoozes=snoozes), rule_filters(),
            IssueInterval.CHANGE_SET if change_set_id else CAUSES[reason],
            sync_run_id=sync_run.pk if sync_run else None, change_set_id=change_set_id,
            candidates=changed_resources(sync_run, change_set_id),
            everywhere={rule.key for rule in registry.rules() if rule.moves_by_itself}, store_starts=not begins)

    if begins:
        timed(durations, "issue_history", history)
        timed(durations, "health_scores", lambda: store_health_scores(snoozes, with_starts=True))
    else:
        timed(durations, "health_scores", lambda: store_health_scores(snoozes))
        timed(durations, "issue_history", history)
    if reason == Snapshot.SYNC or change_set_id:
        try:
            timed(durations, "suggestions", suggestions.recompute)
        except Exception:  # the suggestions stay as they were; the counts, scores and history still move on
            locks.recover_connection()
            logger.exception("The suggested fixes could not be computed; the last ones are kept.")
    counts = timed(durations, "counts", compute)
    logger.info("Snapshot after %s%s: %s", reason, f" (sync #{sync_run.pk})" if sync_run else "",
                ", ".join(f"{step} {seconds} s" for step, seconds in durations.items()))
    return Snapshot.objects.create(reason=reason, sync_run=sync_run, durations=durations, **counts)


def latest_snapshot(refresh=True):
    """The newest snapshot; with `refresh`, a new one when a snooze expired since (or none exists yet)."""
    snapshot = Snapshot.objects.first()
    if not refresh:
        return snapshot
    if snapshot is None:
        return take_snapshot(Snapshot.REFRESH)
    expired_since = Snooze.objects.filter(cancelled_at__isnull=True, expires_at__gt=snapshot.taken_at,
                                          expires_at__lte=timezone.now())
    if expired_since.exists():
        return take_snapshot(Snapshot.REFRESH)
    return snapshot


def snapshot_after_sync(sender, run, **kwargs):
    # A connection dropped under it is opened again: the counts follow every sync that mirrored anything.
    locks.with_reconnect(lambda: take_snapshot(Snapshot.SYNC, sync_run=run))


__all__ = ["compute", "latest_snapshot", "take_snapshot", "snapshot_after_sync"]
