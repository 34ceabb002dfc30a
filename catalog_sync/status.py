"""What the mirror's state means for a steward: the last syncs, the running one, when the next runs,
and what to be warned about."""
from datetime import timedelta

from django.conf import settings
from django.db.models import Count
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from catalog_sync.models import SyncRun
from catalog_sync.sync import missing_after

SYNC_TASK_NAME = "Sync the Secoda mirror"  # incremental: what changed since the last sync
FULL_SWEEP_TASK_NAME = "Full sweep of the Secoda mirror"  # everything; the only run that marks removals
WATCH_SYNCS_TASK_NAME = "Watch fanned-out syncs"


def mirror_status():
    """The last finished sync, the running one, and what a steward should be warned about."""
    runs = list(SyncRun.objects.exclude(status=SyncRun.REFUSED)[:8])
    last_finished = next((r for r in runs if r.status != SyncRun.RUNNING), None)
    # An incomplete sync mirrored all it could list: the mirror dates from it (its banner says what is missing).
    mirrored = (SyncRun.SUCCEEDED, SyncRun.INCOMPLETE)
    last_success = SyncRun.objects.filter(status__in=mirrored).first()
    running = next((r for r in runs if r.status == SyncRun.RUNNING), None)
    warnings = []
    if last_success is None:
        warnings.append("The mirror has never been synced successfully: the numbers below are empty or partial.")
    elif timezone.now() - last_success.finished_at > timedelta(hours=settings.MIRROR_STALE_AFTER_HOURS):
        warnings.append(f"The last successful sync finished {timezone.localtime(last_success.finished_at):%Y-%m-%d %H:%M}; "
                        "the mirror may be out of date.")
    if last_finished and last_finished.status == SyncRun.FAILED:
        warnings.append(f"The last sync failed: {last_finished.error}")
    missing = missing_after(last_success)  # the latest run that mirrored anything: no query of its own
    if last_finished and last_finished.status == SyncRun.INCOMPLETE and not missing:
        # Nothing named piece by piece: its message says what happened.
        warnings.append(f"The last sync was incomplete. {last_finished.error}")
    last_full = SyncRun.objects.filter(status__in=mirrored, kind=SyncRun.FULL).only("finished_at", "status").first()
    if running is not None and running.kind == SyncRun.FULL:
        counts = dict(running.slices.values_list("status").annotate(n=Count("id")).order_by())
        total = sum(counts.values())
        finished = counts.get("done", 0) + counts.get("failed", 0)
        running.slice_progress = {"done": finished, "total": total, "percent": 100 * finished / total if total else 0}
    return {"runs": runs, "last_success": last_success, "last_full": last_full, "running": running,
            "warnings": warnings, "missing": missing, "schedule": sync_schedule()}


def sync_schedule():
    """How often the periodic sync runs and roughly when it runs next (None when disabled)."""
    task = PeriodicTask.objects.select_related("interval").filter(name=SYNC_TASK_NAME, enabled=True).first()
    if task is None or task.interval is None:
        return None
    every = timedelta(**{task.interval.period: task.interval.every})
    next_run = (task.last_run_at or task.date_changed) + every
    return {"every": every, "next_run": max(next_run, timezone.now())}
