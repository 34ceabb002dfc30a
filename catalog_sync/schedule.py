"""The periodic tasks, kept in django-celery-beat's tables so the admin can change them.

Created once with defaults from settings; after that the admin is the source
of truth (a restart never overwrites an interval someone changed).
"""
from django.conf import settings

SYNC_TASK_NAME = "Sync the Secoda mirror"
RESUME_EDITS_TASK_NAME = "Resume waiting bulk edits"
SEND_REPORTS_TASK_NAME = "Send due e-mail reports"


def periodic_tasks():
    """name -> (task path, minutes between runs, kwargs)."""
    return {
        SYNC_TASK_NAME: ("catalog_sync.tasks.sync_catalog", settings.SYNC_INTERVAL_MINUTES, {"trigger": "schedule"}),
        # Picks up bulk edits stored while the broker or every worker was down.
        RESUME_EDITS_TASK_NAME: ("hygiene.bulk.tasks.resume_change_sets", 1, {}),
        SEND_REPORTS_TASK_NAME: ("hygiene.reports.tasks.send_due_reports", settings.REPORT_SEND_EVERY_MINUTES, {}),
    }


def ensure_periodic_tasks(**kwargs):
    import json

    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    for name, (task, minutes, task_kwargs) in periodic_tasks().items():
        if PeriodicTask.objects.filter(name=name).exists():
            continue
        interval, _ = IntervalSchedule.objects.get_or_create(every=minutes, period=IntervalSchedule.MINUTES)
        PeriodicTask.objects.create(
            name=name, task=task, interval=interval, kwargs=json.dumps(task_kwargs),
            # A run still queued when the next one is due is dropped, not piled up.
            expire_seconds=minutes * 60,
            description="Created by Catalog Hygiene; change the interval here.",
        )
