"""Celery tasks for bulk edits: thin and idempotent (a change set runs once, whoever claims it)."""
import logging

from celery import shared_task

from catalog_sync.client import RetryableError
from hygiene.bulk import services

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=20)
def apply_change_set(self, change_set_id):
    try:
        change_set = services.run_change_set(change_set_id)
    except RetryableError as exc:
        # Secoda is throttling or down: the change set went back to pending; try again with backoff.
        raise self.retry(exc=exc, countdown=min(600, 30 * 2 ** self.request.retries))
    return change_set.status if change_set else "taken by another worker"


@shared_task(ignore_result=True, expires=55)
def resume_change_sets():
    """Every minute: queue change sets left pending (broker was down) or whose worker died."""
    for change_set_id in services.resumable():
        apply_change_set.delay(change_set_id)
