from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET
from django.contrib.auth.decorators import login_not_required

from catalog_sync.models import SyncRun
from hygiene.rules import RULE_LABELS, summary


def mirror_status():
    """The last finished sync, the running one, and what a steward should be warned about."""
    runs = list(SyncRun.objects.exclude(status=SyncRun.REFUSED)[:8])
    last_finished = next((r for r in runs if r.status != SyncRun.RUNNING), None)
    last_success = SyncRun.objects.filter(status=SyncRun.SUCCEEDED).first()
    running = next((r for r in runs if r.status == SyncRun.RUNNING), None)
    warnings = []
    if last_success is None:
        warnings.append("The mirror has never been synced successfully: the numbers below are empty or partial.")
    elif timezone.now() - last_success.finished_at > timedelta(hours=settings.MIRROR_STALE_AFTER_HOURS):
        warnings.append(f"The last successful sync finished {timezone.localtime(last_success.finished_at):%Y-%m-%d %H:%M}; "
                        "the mirror may be out of date.")
    if last_finished and last_finished.status == SyncRun.FAILED:
        warnings.append(f"The last sync failed: {last_finished.error}")
    return {"runs": runs, "last_success": last_success, "running": running, "warnings": warnings,
            "schedule": sync_schedule()}


def sync_schedule():
    """How often the periodic sync runs and roughly when it runs next (None when disabled)."""
    from django_celery_beat.models import PeriodicTask

    from catalog_sync.schedule import SYNC_TASK_NAME

    task = PeriodicTask.objects.select_related("interval").filter(name=SYNC_TASK_NAME, enabled=True).first()
    if task is None or task.interval is None:
        return None
    every = timedelta(**{task.interval.period: task.interval.every})
    next_run = (task.last_run_at or task.date_changed) + every
    return {"every": every, "next_run": max(next_run, timezone.now())}


def home(request):
    report = summary()
    total = report["resources"]
    rules = [
        {"key": key, "label": label, "count": report[key],
         "percent": (100 * report[key] / total) if total else 0}
        for key, label in RULE_LABELS.items()
    ]
    by_type = sorted(report["by_entity_type"].items(), key=lambda item: -item[1]["resources"])
    return render(request, "dashboard/home.html", {
        "report": report, "rules": rules, "by_type": by_type, **mirror_status(),
    })


@login_not_required
@require_GET
def healthz(request):
    """For load balancers and docker-compose: the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
