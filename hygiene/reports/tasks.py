from datetime import datetime

from celery import shared_task

from hygiene.reports import services


@shared_task(ignore_result=True, expires=240)
def send_due_reports():
    """Every few minutes: claim the due subscriptions and queue one delivery each, and queue again the
    deliveries whose retry is due."""
    for subscription_id, due_at in services.claim_due() + services.retries_due():
        deliver_report.delay(subscription_id, due_at.isoformat())


@shared_task(acks_late=True, ignore_result=True)
def deliver_report(subscription_id, due_at):
    """Send one report once. A failure is recorded with a retry time (no countdown task in the broker)."""
    try:
        services.deliver(subscription_id, datetime.fromisoformat(due_at))
    except Exception:  # SMTP down, timeouts: recorded on the delivery, tried again when due
        return "will retry"
    return "done"
