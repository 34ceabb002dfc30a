"""What the watcher does about runs nobody is looking after: the recovery policy in one place.

- A sync running in one process keeps the sync lock alive from a heartbeat. When the lock lapses, that
  process is gone (killed, or cut off from the database): the run is failed, and the next sync carries on.
- A fanned-out sweep's lock is kept alive by its slices' heartbeats and, between slices, by the watcher,
  so it outlives any one slice. Slices whose lease lapsed (their worker died) and pending slices whose
  message was lost are queued again; a sweep whose finisher died is finished; a sweep with no progress
  for SYNC_STALL_MINUTES is failed (its failed slices can be retried) so incremental syncs can run again.
- A sweep stopped because Secoda could not be reached is resumed once Secoda answers again.
"""
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from catalog_sync import locks, slices, sync
from catalog_sync.client import SecodaClient, SecodaError
from catalog_sync.models import SyncRun, SyncSlice

logger = logging.getLogger(__name__)

@dataclass
class Action:
    dispatch: list = field(default_factory=list)
    advance: bool = False
    finish: bool = False


class WorkerGone(Exception):
    """Why the watcher ended a run (a plain message, no traceback)."""
    expected = True


def check_run(run, now=None):
    """Look after one running sync. Returns what the caller should queue or run."""
    now = now or timezone.now()
    run.refresh_from_db()
    if run.status != SyncRun.RUNNING:  # it ended since the caller listed it
        return Action()
    lease = locks.current(sync.LOCK_NAME)
    alive = lease is not None and lease.holder == run.holder
    client = SecodaClient.from_settings(max_retries=0)  # only to redact what it records
    if run.mode != SyncRun.FAN_OUT:
        if not alive:
            sync.fail(run, client, WorkerGone(
                "The process running this sync stopped before it finished (it was killed, or lost its "
                "database connection). Nothing was marked removed; the next sync carries on from here."))
        return Action()
    if not alive:
        if lease is not None or not locks.acquire(sync.LOCK_NAME, run.holder, settings.SYNC_LOCK_SECONDS):
            sync.fail(run, client, WorkerGone("Another sync took the sync lock while this sweep waited for workers."))
            return Action()
        if not SyncRun.objects.filter(pk=run.pk, status=SyncRun.RUNNING).exists():  # ended meanwhile
            locks.release(sync.LOCK_NAME, run.holder)
            return Action()
    if run.stage == SyncRun.FINISHING:
        locks.extend(sync.LOCK_NAME, run.holder, settings.SYNC_LOCK_SECONDS)
        lapsed = run.lease_until is None or run.lease_until < now
        if lapsed and run.options.get("finish_attempts", 0) >= FINISH_ATTEMPTS:
            sync.fail(run, client, WorkerGone(
                f"The end of this sweep stopped {FINISH_ATTEMPTS} times (its worker was killed each time); "
                "nothing was marked removed."))
            return Action()
        return Action(finish=lapsed)
    last_progress = run.progress_at or run.started_at
    if last_progress < now - timedelta(minutes=settings.SYNC_STALL_MINUTES):
        # Workers, the broker or the database were away: fail it so incremental syncs run, and resume it
        # (its unfinished slices) once Secoda answers, like after an outage.
        sync.fail(run, client, WorkerGone(
            f"No worker made progress on this sweep for {settings.SYNC_STALL_MINUTES} minutes; it resumes "
            "by itself when workers and Secoda answer again."), resume_when_reachable=True)
        return Action()
    locks.extend(sync.LOCK_NAME, run.holder, settings.SYNC_LOCK_SECONDS)  # the lock outlives its slices
    if run.stage != SyncRun.SWEEPING:
        return Action()
    crashed_slices = run.slices.filter(status=SyncSlice.RUNNING, lease_until__lt=now)
    # A slice whose worker died every time it ran it (out of memory?) fails, so the sweep can end.
    doomed = crashed_slices.filter(attempts__gt=settings.SYNC_SLICE_RETRIES)
    if doomed.exists():
        doomed.update(status=SyncSlice.FAILED, lease_until=None,
                      error="Its worker stopped (killed, or out of memory) on each of its attempts.")
    crashed = list(crashed_slices.values_list("id", flat=True))
    live = run.slices.filter(status=SyncSlice.RUNNING, lease_until__gte=now).exists()
    due = Q(not_before__isnull=True) | Q(not_before__lte=now)
    pending = run.slices.filter(status=SyncSlice.PENDING).filter(due)
    # Never queued (or due after a retry wait); and, when no worker is busy with this sweep, queued a while
    # ago but never taken: the message was lost (a broker restart).
    lost = Q(dispatched_at__isnull=True)
    if not live:
        lost |= Q(dispatched_at__lt=now - timedelta(seconds=settings.WORK_LEASE_SECONDS))
    queue = crashed + list(pending.filter(lost).values_list("id", flat=True))
    if queue:
        logger.warning("Sync #%s: queueing %s slice(s) again (%s from a worker that stopped).",
                       run.pk, len(queue), len(crashed))
        return Action(dispatch=queue)
    if not run.slices.filter(status__in=slices.ACTIVE).exists():
        return Action(advance=True)
    return Action()


RESUMES = 10  # times a sweep is resumed after outages before it waits for a person (or the next sweep)
FINISH_ATTEMPTS = 3


def resume_after_outage(now=None):
    """Sweeps an outage stopped, to be retried now that Secoda answers (each handed out once)."""
    now = now or timezone.now()
    SyncRun.objects.filter(status=SyncRun.FAILED, resume_when_reachable=True).filter(
        Q(started_at__lt=now - timedelta(hours=24)) | Q(options__resumes__gte=RESUMES)
    ).update(resume_when_reachable=False)
    # Only full sweeps: an incremental sync stopped by an outage is simply followed by the next one.
    candidates = list(SyncRun.objects.filter(status=SyncRun.FAILED, resume_when_reachable=True, kind=SyncRun.FULL)
                      .order_by("-started_at").values_list("pk", "started_at"))
    if not candidates or locks.current(sync.LOCK_NAME) is not None:
        return []
    run_id, started_at = candidates[0]
    SyncRun.objects.filter(pk__in=[pk for pk, _ in candidates[1:]]).update(resume_when_reachable=False)
    if SyncRun.objects.filter(kind=SyncRun.FULL, started_at__gt=started_at).exclude(
            status=SyncRun.REFUSED).exists():
        SyncRun.objects.filter(pk=run_id).update(resume_when_reachable=False)  # a newer sweep ran since
        return []
    try:
        SecodaClient.from_settings(max_retries=0).resource_page(None, None)  # what a sweep needs
    except SecodaError as exc:
        logger.info("Sync #%s waits for Secoda: %s", run_id, exc)
        return []
    run = SyncRun.objects.get(pk=run_id)
    resumes = run.options.get("resumes", 0) + 1
    if SyncRun.objects.filter(pk=run_id, resume_when_reachable=True).update(
            resume_when_reachable=False, options={**run.options, "resumes": resumes}):
        logger.warning("Secoda answers again: resuming sync #%s (resume %s of at most %s).", run_id, resumes,
                       RESUMES)
        return [run_id]
    return []
