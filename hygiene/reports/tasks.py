from datetime import datetime

from celery import shared_task

from hygiene.reports import services


@shared_task(ignore_result=True, expires=240)
def send_due_reports():
    """Every few minutes: claim the due subscriptions and queue one delivery each."""
    for subscription_id, due_at in services.claim_due():
        deliver_report.delay(subscription_id, due_at.isoformat())


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=5)
def deliver_report(self, subscription_id, due_at):
    try:
        services.deliver(subscription_id, datetime.fromisoformat(due_at))
    except Exception as exc:  # SMTP down, timeouts: recorded by the service; try again later
        raise self.retry(exc=exc, countdown=min(3600, 60 * 2 ** self.request.retries))
