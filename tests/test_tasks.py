"""The Celery side: the periodic schedule exists, and a real worker on Redis runs the sync task."""
import json

import pytest
from celery.contrib.testing.worker import start_worker
from django_celery_beat.models import PeriodicTask

from catalog_sync.models import Resource, SyncRun
from catalog_sync.status import FULL_SWEEP_TASK_NAME, SYNC_TASK_NAME, WATCH_SYNCS_TASK_NAME
from catalog_sync.tasks import sync_catalog
from hygiene.celery import app
from tests.concurrency import finished_run


@pytest.mark.django_db
def test_migrate_creates_the_periodic_sync_with_an_expiry(settings):
    task = PeriodicTask.objects.get(name=SYNC_TASK_NAME)
    assert task.task == "catalog_sync.tasks.sync_catalog"
    assert task.interval.every == settings.SYNC_INTERVAL_MINUTES and task.interval.period == "minutes"
    assert task.expire_seconds == settings.SYNC_INTERVAL_MINUTES * 60
    assert json.loads(task.kwargs) == {"trigger": "schedule", "kind": "incremental"}


@pytest.mark.django_db
def test_migrate_creates_a_nightly_full_sweep_and_the_slice_watcher(settings):
    sweep = PeriodicTask.objects.select_related("crontab").get(name=FULL_SWEEP_TASK_NAME)
    assert json.loads(sweep.kwargs) == {"trigger": "schedule", "kind": "full"}
    hour, minute = settings.SYNC_FULL_SWEEP_AT.split(":")
    assert (sweep.crontab.hour, sweep.crontab.minute) == (str(int(hour)), str(int(minute)))
    watcher = PeriodicTask.objects.get(name=WATCH_SYNCS_TASK_NAME)
    assert watcher.task == "catalog_sync.tasks.watch_syncs"
    assert (watcher.interval.every, watcher.interval.period) == (settings.WATCH_EVERY_SECONDS, "seconds")


@pytest.mark.django_db
def test_an_interval_changed_in_the_admin_survives_a_restart():
    from hygiene.schedule import ensure_periodic_tasks
    from django_celery_beat.models import IntervalSchedule

    task = PeriodicTask.objects.get(name=SYNC_TASK_NAME)
    task.interval = IntervalSchedule.objects.create(every=15, period=IntervalSchedule.MINUTES)
    task.save()
    ensure_periodic_tasks()
    assert PeriodicTask.objects.get(name=SYNC_TASK_NAME).interval.every == 15


def test_the_task_is_late_acked_and_expires():
    assert sync_catalog.acks_late is True
    assert sync_catalog.expires


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_on_redis_runs_the_sync(emulator_settings, emulator):
    assert app.conf.broker_url.startswith("redis://")
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        sync_catalog.delay(trigger="test")
        run = finished_run("test")
    assert run is not None, "the worker never finished a sync"
    assert run.status == SyncRun.SUCCEEDED, run.error
    assert Resource.objects.present().count() == len(emulator.workspace.ids())


def test_the_web_process_can_queue_a_change_set_without_importing_the_tasks_itself():
    """Apply queues the task by name: every process must have it registered, not only the worker's."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import os, sys, django; os.environ['DJANGO_SETTINGS_MODULE'] = 'hygiene.settings'; django.setup(); "
            "import hygiene.urls; from celery import current_app; from hygiene.bulk.services import APPLY_TASK; "
            "print(APPLY_TASK in current_app.tasks)")
    env = {**__import__("os").environ, "DJANGO_SECRET_KEY": "x"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=Path(__file__).resolve().parent.parent, timeout=60)
    assert out.stdout.strip().endswith("True"), out.stdout + out.stderr
