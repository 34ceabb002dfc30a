"""The sync service: mirror a whole Secoda workspace into the database.

Called by the Celery task, the `sync_catalog` command and the admin alike.
Presence changes (marking things removed) happen only at the very end, after
every listing succeeded, so a sync that fails halfway removes nothing.
"""
import logging
import random
import time

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from catalog_sync import locks, normalize
from catalog_sync.client import PermanentError, SecodaClient, SecodaError
from catalog_sync.mirror import ResourceWriter, refresh_planner_statistics, upsert_simple
from catalog_sync.signals import sync_succeeded
from catalog_sync.models import (
    DbtTestStatus, Integration, Resource, SecodaGroup, SecodaUser, SyncRun, Tag, Team, is_dbt_type,
)
from catalog_sync.sweep import Sweep

logger = logging.getLogger(__name__)

LOCK_NAME = "catalog-sync"
CONFIRM_EACH_UP_TO = 100  # missing resources checked one by one before being marked removed
CONFIRM_SAMPLE = 20


class SyncAlreadyRunning(Exception):
    def __init__(self, run, lease):
        since = timezone.localtime(lease.acquired_at).strftime("%Y-%m-%d %H:%M:%S %Z") if lease else "a moment ago"
        super().__init__(f"Another sync is running (started {since}); this one was not started.")
        self.run = run


class Progress:
    """Writes progress to the SyncRun at most every few seconds, and tells a listener."""

    def __init__(self, run, holder, listener=None, every=2.0):
        self.run = run
        self.holder = holder
        self.listener = listener
        self.every = every
        self._last = 0.0

    def update(self, stage, force=False, **fields):
        for name, value in fields.items():
            setattr(self.run, name, value)
        now = time.monotonic()
        if force or now - self._last >= self.every:
            self._last = now
            locks.renew(LOCK_NAME, self.holder, settings.SYNC_LOCK_SECONDS)
            SyncRun.objects.filter(pk=self.run.pk).update(**{
                name: getattr(self.run, name)
                for name in ("fetched", "created", "updated", "unchanged", "requests", "slices_done")
            })
        if self.listener:
            self.listener(self.run, stage)


def run_sync(trigger="manual", client=None, listener=None):
    """Run one full sync. Returns the SyncRun (succeeded or failed); raises SyncAlreadyRunning."""
    client = client or SecodaClient.from_settings()
    holder = locks.new_holder()
    if not locks.acquire(LOCK_NAME, holder, settings.SYNC_LOCK_SECONDS):
        lease = locks.current(LOCK_NAME)
        run = SyncRun.objects.create(
            trigger=trigger, status=SyncRun.REFUSED, finished_at=timezone.now(), holder=holder,
            error="Another sync was already running.",
        )
        raise SyncAlreadyRunning(run, lease)
    run = SyncRun.objects.create(trigger=trigger, holder=holder)
    progress = Progress(run, holder, listener)
    requests_before = client.requests_made
    try:
        _sync(client, run, progress, requests_before)
    except Exception as exc:  # record every failure; the mirror keeps what it had
        logger.exception("Sync #%s failed", run.pk)
        run.status = SyncRun.FAILED
        run.error = client._redact(describe(exc))
    else:
        run.status = SyncRun.SUCCEEDED
    finally:
        run.requests = client.requests_made - requests_before
        run.finished_at = timezone.now()
        run.save()
        locks.release(LOCK_NAME, holder)
    if run.status == SyncRun.SUCCEEDED:
        for receiver, error in sync_succeeded.send_robust(sender=SyncRun, run=run):
            if error is not None:
                logger.error("After sync #%s, %s failed: %s", run.pk, getattr(receiver, "__name__", receiver), error)
    if listener:
        listener(run, "finished")
    return run


def describe(exc):
    if isinstance(exc, SecodaError):
        return str(exc)
    if isinstance(exc, locks.LeaseLost):
        return f"{exc} This sync stopped so two syncs never write at once."
    return f"{type(exc).__name__}: {exc}"


def _sync(client, run, progress, requests_before):
    def count_requests():
        return client.requests_made - requests_before

    progress.update("integrations", force=True)
    integrations = [normalize.integration_row(r) for r in client.integrations() if normalize.clean_id(r.get("id"))]
    upsert_simple(Integration, integrations, run.pk)
    people = {
        SecodaUser: [normalize.user_row(r) for r in client.users() if normalize.clean_id(r.get("id"))],
        SecodaGroup: [normalize.group_row(r) for r in client.groups() if normalize.clean_id(r.get("id"))],
        Team: [normalize.team_row(r) for r in client.teams() if normalize.clean_id(r.get("id"))],
        Tag: [normalize.tag_row(r) for r in client.tags() if normalize.clean_id(r.get("id"))],
    }
    for model, rows in people.items():
        upsert_simple(model, rows, run.pk)
    progress.update("people", force=True, requests=count_requests())

    def flushed(writer):
        progress.update("resources", fetched=writer.fetched, created=writer.created, updated=writer.updated,
                        unchanged=writer.unchanged, requests=count_requests())

    writer = ResourceWriter(run.pk, settings.SYNC_BATCH_SIZE, on_flush=flushed)

    def slice_listed(sweep, label):
        progress.update("resources", slices_done=sweep.slices_done, requests=count_requests())

    sweep = Sweep(client, writer, [(row["id"], row["name"]) for row in integrations], on_progress=slice_listed)
    sweep.run()

    warnings = list(sweep.notes)
    dbt_status, dbt_unreadable = {}, []
    for row in integrations:
        if not is_dbt_type(row["type"]):
            continue
        try:
            dbt_status[row["id"]] = client.dbt_test_status(row["id"])
        except PermanentError as exc:  # e.g. a dbt Cloud integration without test results
            dbt_unreadable.append(row["id"])
            warnings.append(f"dbt test results of {row['name'] or row['id']} could not be read ({exc}); "
                            "the previous ones were kept.")
    progress.update("finishing", force=True, requests=count_requests())

    with transaction.atomic():
        replace_dbt_status(dbt_status, keep=dbt_unreadable)
    removed = 0
    if sweep.complete:
        for model in (Integration, SecodaUser, SecodaGroup, Team, Tag):
            model.objects.present().exclude(last_seen_run=run.pk).update(removed_at=timezone.now())
        removed, confirm_notes = mark_removed_resources(run, client, writer)
        warnings.extend(confirm_notes)
    else:
        warnings.append("Nothing was marked removed because not every resource could be listed: "
                        + "; ".join(sweep.problems))
    if writer.created + writer.updated + removed:
        refresh_planner_statistics()
    run.removals_checked = sweep.complete
    run.removed = removed
    run.fetched, run.created, run.updated, run.unchanged = (
        writer.fetched, writer.created, writer.updated, writer.unchanged)
    run.slices_done = run.slices_total = sweep.slices_done
    run.warnings = "\n".join(warnings)


def replace_dbt_status(status_by_integration, keep=()):
    """Replace each dbt integration's failing/warning lists as one change."""
    for integration_id, status in status_by_integration.items():
        current = set(
            DbtTestStatus.objects.filter(integration_id=integration_id).values_list("resource_id", "status"))
        wanted = {(rid, kind) for kind in (DbtTestStatus.FAILING, DbtTestStatus.WARNING) for rid in status[kind]}
        for resource_id, kind in current - wanted:
            DbtTestStatus.objects.filter(integration_id=integration_id, resource_id=resource_id, status=kind).delete()
        DbtTestStatus.objects.bulk_create(
            [DbtTestStatus(integration_id=integration_id, resource_id=rid, status=kind) for rid, kind in wanted - current],
            ignore_conflicts=True,
        )
    # Integrations that stopped being dbt (or vanished) no longer report anything.
    DbtTestStatus.objects.exclude(integration_id__in=[*status_by_integration, *keep]).delete()


def mark_removed_resources(run, client, writer):
    """Mark resources missing from a complete sweep as removed, after confirming with Secoda.

    A listing can skip a row when something is deleted while we page, so a
    missing resource is looked up on its own before it is marked removed; when
    many are missing, a sample decides.
    """
    missing = Resource.objects.present().exclude(last_seen_run=run.pk)
    missing_ids = list(missing.values_list("id", flat=True)[: CONFIRM_EACH_UP_TO + 1])
    if not missing_ids:
        return 0, []
    notes = []
    if len(missing_ids) <= CONFIRM_EACH_UP_TO:
        to_check, decide_rest = missing_ids, False
    else:
        to_check = random.sample(list(missing.values_list("id", flat=True)), CONFIRM_SAMPLE)
        decide_rest = True
    gone, still_there = [], []
    for resource_id in to_check:
        record = client.get_resource(resource_id)
        if record is None:
            gone.append(resource_id)
        else:
            still_there.append(resource_id)
            writer.add([record])
    writer.flush()
    now = timezone.now()
    if decide_rest and not still_there:
        removed = missing.update(removed_at=now)
    else:
        removed = Resource.objects.filter(id__in=gone).update(removed_at=now)
        if decide_rest:
            notes.append(
                f"{len(still_there)} of {len(to_check)} sampled resources missing from the listing still exist "
                "in Secoda, so only confirmed removals were applied.")
    if still_there:
        notes.append(f"{len(still_there)} resource(s) were missing from the listing but still exist in Secoda; "
                     "they were kept.")
    return removed, notes
