"""Celery tasks for bulk edits: thin and idempotent (a change set runs once, whoever claims it).

No countdown retries: a change set that has to wait for Secoda (or the database) is stored as pending
with a `retry_at`, and `resume_change_sets` queues it when it is due.
"""
import logging

from celery import shared_task

from hygiene.bulk import services

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, ignore_result=True)
def apply_change_set(change_set_id):
    change_set = services.run_change_set(change_set_id)
    return change_set.status if change_set else "taken by another worker"


@shared_task(ignore_result=True, expires=60)
def resume_change_sets():
    """Every WATCH_EVERY_SECONDS: queue change sets left pending (broker down, message lost, retry due) or
    whose worker died."""
    for change_set_id in services.resumable():
        services.queue_now(change_set_id)
