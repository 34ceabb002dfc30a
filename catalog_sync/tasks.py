"""Celery tasks: thin wrappers around the sync service."""
import logging

from celery import shared_task

from catalog_sync.models import SyncRun
from catalog_sync.sync import SyncAlreadyRunning, run_sync

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=2, default_retry_delay=300, expires=3600)
def sync_catalog(self, trigger="schedule"):
    """Mirror the workspace. A failed sync is retried twice, five minutes apart."""
    try:
        run = run_sync(trigger=trigger)
    except SyncAlreadyRunning as exc:
        logger.info("%s", exc)
        return "refused"
    if run.status == SyncRun.FAILED and self.request.retries < self.max_retries:
        raise self.retry()
    return run.status
