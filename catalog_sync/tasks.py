"""Celery tasks: thin wrappers around the sync service.

A full sweep on PostgreSQL with Redis fans out: `sync_catalog` plans it and
queues one `sync_slice` per slice, each worker claims what it takes, and the
worker that ends the last slice finishes the sweep (removals included, only if
every slice succeeded). `watch_syncs` requeues slices of a crashed worker and
finishes a sweep whose last worker died. Elsewhere the sweep runs in-process.
"""
import logging
from datetime import timedelta

from celery import group, shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from catalog_sync import locks, slices, sync
from catalog_sync.client import SecodaClient
from catalog_sync.models import SyncRun, SyncSlice

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=2, default_retry_delay=300, expires=3600)
def sync_catalog(self, trigger="schedule", kind=SyncRun.INCREMENTAL):
    """Mirror the workspace: an incremental sync (the default) or a full sweep.

    A failed in-process sync is retried twice, five minutes apart; a fanned-out sweep retries its slices.
    """
    client = SecodaClient.from_settings()
    fan_out = sync.fan_out_available()
    try:
        run = sync.start_run(trigger, kind, client, mode=SyncRun.FAN_OUT if fan_out else SyncRun.IN_PROCESS)
    except sync.SyncAlreadyRunning as exc:
        logger.info("%s", exc)
        return "refused"
    try:
        sweeping = sync.begin(run, client)
        if sweeping and fan_out:
            dispatch(slices.runnable_ids(run))
            return "fanned out"
        if sweeping:
            sync.sweep_in_process(run, client, 1)
        sync.finish(run, client)
    except Exception as exc:
        sync.fail(run, client, exc)
    if run.status == SyncRun.FAILED and self.request.retries < self.max_retries:
        raise self.retry()
    return run.status


def dispatch(slice_ids, countdown=None):
    """Queue these slices (after the current transaction commits)."""
    if not slice_ids:
        return
    ids = list(slice_ids)

    def send():
        SyncSlice.objects.filter(pk__in=ids).update(dispatched_at=timezone.now())
        if countdown:
            for slice_id in ids:
                sync_slice.apply_async((slice_id,), countdown=countdown)
        else:
            group(sync_slice.s(slice_id) for slice_id in ids).apply_async()

    transaction.on_commit(send)


@shared_task(acks_late=True, ignore_result=True)
def sync_slice(slice_id):
    """Run one slice of a fanned-out sweep, then move the sweep on (more slices, or its end)."""
    client = SecodaClient.from_settings()
    piece = slices.run_slice(slice_id, client, locks.new_holder())
    if piece is None:
        return "taken"  # another worker has it, or had it
    if piece.status == SyncSlice.PENDING:  # retryable failure: try this slice again on its own, later
        dispatch([piece.pk], countdown=min(settings.SECODA_MAX_BACKOFF_SECONDS,
                                           settings.SECODA_BACKOFF_SECONDS * 2 ** piece.attempts))
        return "retrying"
    # Only what this slice spawned (narrower slices, page ranges): everything else is queued already.
    dispatch(list(piece.spawned.filter(status=SyncSlice.PENDING).values_list("id", flat=True)))
    advance_and_maybe_finish(piece.run_id, client)
    return piece.status


def advance_and_maybe_finish(run_id, client):
    new, over = slices.advance(run_id)
    dispatch(new)
    if over:
        run = SyncRun.objects.get(pk=run_id)
        try:
            sync.finish(run, client)
        except Exception as exc:
            sync.fail(run, client, exc)


@shared_task(ignore_result=True)
def retry_sweep(run_id):
    """Retry the failed slices of a failed sweep (the admin's action)."""
    run = SyncRun.objects.get(pk=run_id)
    try:
        ids = sync.retry_failed_slices(run)
    except (ValueError, sync.SyncAlreadyRunning) as exc:
        logger.warning("%s", exc)
        return "refused"
    if run.mode == SyncRun.FAN_OUT and sync.fan_out_available():
        dispatch(ids)
        return "fanned out"
    sync.resume_in_process(run)
    return run.status


@shared_task(ignore_result=True, expires=120)
def watch_syncs():
    """Every minute: requeue slices whose worker died, finish sweeps whose finisher died, and fail
    sweeps that stopped making progress (their lock expired)."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.SYNC_LOCK_SECONDS)
    client = None
    for run in SyncRun.objects.filter(status=SyncRun.RUNNING, mode=SyncRun.FAN_OUT):
        lease = locks.current(sync.LOCK_NAME)
        if lease is None or lease.holder != run.holder:
            client = client or SecodaClient.from_settings()
            sync.fail(run, client, RuntimeError(
                "No worker made progress on this sweep for "
                f"{settings.SYNC_LOCK_SECONDS // 60} minutes; its failed slices can be retried."))
            run.slices.filter(status__in=slices.ACTIVE).update(status=SyncSlice.FAILED,
                                                               error="Abandoned: no worker finished it.")
            continue
        if run.stage != SyncRun.SWEEPING:
            continue
        crashed = list(run.slices.filter(status=SyncSlice.RUNNING, lease_until__lt=now).values_list("id", flat=True))
        forgotten = list(run.slices.filter(status=SyncSlice.PENDING, dispatched_at__lt=stale)
                         .values_list("id", flat=True))
        if crashed or forgotten:
            logger.warning("Sync #%s: requeueing %s slice(s) a worker dropped.", run.pk, len(crashed) + len(forgotten))
            dispatch(crashed + forgotten)
        elif not run.slices.filter(status__in=slices.ACTIVE).exists():
            client = client or SecodaClient.from_settings()
            advance_and_maybe_finish(run.pk, client)
