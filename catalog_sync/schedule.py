"""The periodic tasks, kept in django-celery-beat's tables so the admin can change them.

Created once with defaults from settings; after that the admin is the source
of truth (a restart never overwrites an interval someone changed).
"""
from django.conf import settings

SYNC_TASK_NAME = "Sync the Secoda mirror"  # incremental: what changed since the last sync
FULL_SWEEP_TASK_NAME = "Full sweep of the Secoda mirror"  # everything; the only run that marks removals
WATCH_SYNCS_TASK_NAME = "Watch fanned-out syncs"
RESUME_EDITS_TASK_NAME = "Resume waiting bulk edits"
SEND_REPORTS_TASK_NAME = "Send due e-mail reports"


def periodic_tasks():
    """name -> (task path, minutes between runs or (hour, minute) daily, kwargs)."""
    hour, minute = (int(part) for part in settings.SYNC_FULL_SWEEP_AT.split(":"))
    return {
        SYNC_TASK_NAME: ("catalog_sync.tasks.sync_catalog", settings.SYNC_INTERVAL_MINUTES,
                         {"trigger": "schedule", "kind": "incremental"}),
        FULL_SWEEP_TASK_NAME: ("catalog_sync.tasks.sync_catalog", (hour, minute),
                               {"trigger": "schedule", "kind": "full"}),
        # Requeues slices of a worker that died, and finishes sweeps whose last worker died.
        WATCH_SYNCS_TASK_NAME: ("catalog_sync.tasks.watch_syncs", 1, {}),
        # Picks up bulk edits stored while the broker or every worker was down.
        RESUME_EDITS_TASK_NAME: ("hygiene.bulk.tasks.resume_change_sets", 1, {}),
        SEND_REPORTS_TASK_NAME: ("hygiene.reports.tasks.send_due_reports", settings.REPORT_SEND_EVERY_MINUTES, {}),
    }


def ensure_periodic_tasks(**kwargs):
    import json

    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    for name, (task, when, task_kwargs) in periodic_tasks().items():
        if PeriodicTask.objects.filter(name=name).exists():
            continue
        options = {}
        if isinstance(when, tuple):
            hour, minute = when
            options["crontab"], _ = CrontabSchedule.objects.get_or_create(
                minute=str(minute), hour=str(hour), day_of_week="*", day_of_month="*", month_of_year="*",
                timezone=settings.TIME_ZONE)
            options["expire_seconds"] = 3600
        else:
            options["interval"], _ = IntervalSchedule.objects.get_or_create(every=when,
                                                                            period=IntervalSchedule.MINUTES)
            # A run still queued when the next one is due is dropped, not piled up.
            options["expire_seconds"] = when * 60
        PeriodicTask.objects.create(
            name=name, task=task, kwargs=json.dumps(task_kwargs),
            description="Created by Catalog Hygiene; change the schedule here.", **options,
        )
