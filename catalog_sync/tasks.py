"""Celery tasks: thin wrappers around the sync service.

A full sweep on PostgreSQL with Redis fans out: `sync_catalog` plans it and
queues one `sync_slice` per slice, each worker claims what it takes, and the
worker that ends the last slice finishes the sweep (removals included, only if
every slice succeeded). Elsewhere the sweep runs in-process.

No task waits in the broker with a countdown: a retry is a `not_before` on the
slice, and `watch_syncs` (every WATCH_EVERY_SECONDS) queues what is due,
requeues the work of a worker that died and finishes what nobody finished
(see `catalog_sync.recovery`). Queued messages may be lost (Redis keeps nothing
on disk); the database says what is left to do.
"""
import logging

from celery import group, shared_task
from django.db import transaction
from django.utils import timezone

from catalog_sync import locks, recovery, slices, sync
from catalog_sync.client import SecodaClient
from catalog_sync.models import SyncRun, SyncSlice

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, ignore_result=True, expires=3600)
def sync_catalog(trigger="schedule", kind=SyncRun.INCREMENTAL):
    """Mirror the workspace: an incremental sync (the default) or a full sweep.

    Not retried by Celery: a failed incremental sync is retried by the next one on the schedule, and a
    sweep stopped by an outage is resumed by the watcher once Secoda answers.
    """
    client = SecodaClient.from_settings()
    try:
        run = sync.run_sync(trigger, client, kind=kind, fan_out=dispatch if sync.fan_out_available() else None)
    except sync.SyncAlreadyRunning as exc:
        logger.info("%s", exc)
        return "refused"
    return "fanned out" if run.status == SyncRun.RUNNING else run.status


def dispatch(slice_ids):
    """Queue these slices (after the current transaction commits). If the broker cannot take them, they
    stay pending and undispatched, and the watcher queues them later."""
    ids = list(slice_ids)
    if not ids:
        return

    def send():
        try:
            group(sync_slice.s(slice_id) for slice_id in ids).apply_async()
        except Exception as exc:  # broker down: the database still says they are pending
            logger.warning("Could not queue %s slice(s) (%s); the watcher will.", len(ids), exc)
            return
        SyncSlice.objects.filter(pk__in=ids, status=SyncSlice.PENDING).update(dispatched_at=timezone.now())

    transaction.on_commit(send)


@shared_task(acks_late=True, ignore_result=True)
def sync_slice(slice_id):
    """Run one slice of a fanned-out sweep, then move the sweep on (more slices, or its end)."""
    client = SecodaClient.from_settings()
    piece = slices.run_slice(slice_id, client, locks.new_holder())
    if piece is None:
        return "taken"  # another worker has it, or had it
    stop = sync.outage(piece.run, piece)
    if stop is not None:
        sync.fail(piece.run, client, stop, resume_when_reachable=True)
        return "stopped: Secoda unreachable"
    if piece.status == SyncSlice.PENDING:
        return "retrying"  # not_before is set: the watcher queues it when it is due
    # Only what this slice spawned (narrower slices, page ranges): everything else is queued already.
    dispatch(piece.spawned.filter(status=SyncSlice.PENDING).values_list("id", flat=True))
    advance_and_maybe_finish(piece.run_id, client)
    return piece.status


def advance_and_maybe_finish(run_id, client):
    new, over = slices.advance(run_id)
    dispatch(new)
    if over:
        sync.finish_sweep(run_id, client)


@shared_task(ignore_result=True)
def retry_sweep(run_id, after_outage=False):
    """Retry the failed slices of a failed sweep (the admin's action, or the watcher's after an outage)."""
    run = SyncRun.objects.get(pk=run_id)
    try:
        ids = sync.retry_failed_slices(run)
    except (ValueError, sync.SyncAlreadyRunning) as exc:
        logger.warning("%s", exc)
        if after_outage and isinstance(exc, sync.SyncAlreadyRunning):  # try again once that sync ends
            SyncRun.objects.filter(pk=run_id, status=SyncRun.FAILED).update(resume_when_reachable=True)
        return "refused"
    if run.mode == SyncRun.FAN_OUT and sync.fan_out_available():
        dispatch(ids)
        return "fanned out"
    sync.resume_in_process(run)
    return run.status


@shared_task(ignore_result=True, expires=60)
def watch_syncs():
    """Every WATCH_EVERY_SECONDS: keep running sweeps moving and resume sweeps an outage stopped."""
    client = None
    for run in SyncRun.objects.filter(status=SyncRun.RUNNING):
        action = recovery.check_run(run)
        dispatch(action.dispatch)
        if action.advance or action.finish:
            client = client or SecodaClient.from_settings()
            if action.advance:
                advance_and_maybe_finish(run.pk, client)
            else:
                sync.finish_sweep(run.pk, client)
    for run_id in recovery.resume_after_outage():
        retry_sweep.delay(run_id, after_outage=True)
