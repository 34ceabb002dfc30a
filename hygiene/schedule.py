"""Every periodic task, the mirror's and the stewards', kept in django-celery-beat's tables so the admin
can change them.

Created once with defaults from settings; after that the admin is the source
of truth (a restart never overwrites an interval someone changed).
"""
from django.conf import settings

from catalog_sync.status import FULL_SWEEP_TASK_NAME, SYNC_TASK_NAME, WATCH_SYNCS_TASK_NAME

RESUME_EDITS_TASK_NAME = "Resume waiting bulk edits"
SEND_REPORTS_TASK_NAME = "Send due e-mail reports"


def periodic_tasks():
    """name -> (task path, minutes between runs, ("seconds", n), or (hour, minute) daily, kwargs)."""
    hour, minute = (int(part) for part in settings.SYNC_FULL_SWEEP_AT.split(":"))
    return {
        SYNC_TASK_NAME: ("catalog_sync.tasks.sync_catalog", settings.SYNC_INTERVAL_MINUTES,
                         {"trigger": "schedule", "kind": "incremental"}),
        FULL_SWEEP_TASK_NAME: ("catalog_sync.tasks.sync_catalog", (hour, minute),
                               {"trigger": "schedule", "kind": "full"}),
        # Requeues slices of a worker that died, finishes sweeps whose last worker died, resumes after outages.
        WATCH_SYNCS_TASK_NAME: ("catalog_sync.tasks.watch_syncs", ("seconds", settings.WATCH_EVERY_SECONDS), {}),
        # Picks up bulk edits stored while the broker or every worker was down, and retries that are due.
        RESUME_EDITS_TASK_NAME: ("hygiene.bulk.tasks.resume_change_sets", ("seconds", settings.WATCH_EVERY_SECONDS),
                                 {}),
        SEND_REPORTS_TASK_NAME: ("hygiene.reports.tasks.send_due_reports", settings.REPORT_SEND_EVERY_MINUTES, {}),
    }


def ensure_periodic_tasks(**kwargs):
    import json

    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    for name, (task, when, task_kwargs) in periodic_tasks().items():
        existing = PeriodicTask.objects.filter(name=name).select_related("interval").first()
        if existing is not None:
            if isinstance(when, tuple) and when[0] == "seconds" and existing.interval is not None and (
                    existing.interval.every, existing.interval.period) == (1, IntervalSchedule.MINUTES):
                # The watchers ran every minute before recovery took seconds; move an untouched default on.
                existing.interval, _ = IntervalSchedule.objects.get_or_create(every=when[1],
                                                                              period=IntervalSchedule.SECONDS)
                existing.expire_seconds = max(when[1] * 2, 30)
                existing.save()
            continue
        options = {}
        if isinstance(when, tuple) and when[0] == "seconds":
            options["interval"], _ = IntervalSchedule.objects.get_or_create(every=when[1],
                                                                            period=IntervalSchedule.SECONDS)
            options["expire_seconds"] = max(when[1] * 2, 30)
        elif isinstance(when, tuple):
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
