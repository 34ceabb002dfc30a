"""Sending reports: claim due subscriptions with a conditional UPDATE (two workers never take the
same one), send each once per due time, and move the due date on whatever happens."""
import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from hygiene.reports.content import build_report
from hygiene.reports.emails import report_email
from hygiene.reports.models import Delivery, Subscription
from hygiene.reports.schedule import next_due_for

logger = logging.getLogger(__name__)


def claim_due(now=None, limit=200):
    """[(subscription id, due time)] this caller won. Claiming moves `next_due_at` to the next
    due time in the same UPDATE, conditional on it still being the old one."""
    now = now or timezone.now()
    won = []
    for subscription in Subscription.objects.filter(active=True, next_due_at__lte=now)[:limit]:
        due = subscription.next_due_at
        following = next_due_for(subscription, max(now, due))
        if Subscription.objects.filter(pk=subscription.pk, next_due_at=due, active=True).update(
                next_due_at=following):
            won.append((subscription.pk, due))
    return won


def deliver(subscription_id, due_at):
    """Send the report due at `due_at` once. Returns True when it was sent now. Raises on a
    failed send (the caller retries); a report already sent for that due time is not sent again."""
    try:
        with transaction.atomic():
            delivery, _ = Delivery.objects.get_or_create(subscription_id=subscription_id, due_at=due_at,
                                                         preview=False)
    except IntegrityError:  # another worker created it at the same moment
        delivery = Delivery.objects.get(subscription_id=subscription_id, due_at=due_at, preview=False)
    # Take this delivery for this attempt: only one worker passes while it is unsent.
    if not Delivery.objects.filter(pk=delivery.pk, sent_at__isnull=True, attempts=delivery.attempts).update(
            attempts=delivery.attempts + 1):
        return False
    subscription = Subscription.objects.select_related("user").get(pk=subscription_id)
    if not subscription.active:
        return False
    return send(subscription, delivery)


def send(subscription, delivery):
    report = build_report(subscription)
    try:
        report_email(subscription, report, preview=delivery.preview).send()
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"[:2000]
        Delivery.objects.filter(pk=delivery.pk).update(error=message)
        Subscription.objects.filter(pk=subscription.pk).update(failures=subscription.failures + 1,
                                                               last_error=message)
        raise
    now = timezone.now()
    Delivery.objects.filter(pk=delivery.pk).update(sent_at=now, error="")
    if not delivery.preview:
        Subscription.objects.filter(pk=subscription.pk).update(
            last_sent_at=now, last_counts={**report["counts"]}, failures=0, last_error="")
    return True


def send_now(subscription):
    """"Send me this report now": a preview to the subscriber, without touching the schedule."""
    delivery = Delivery.objects.create(subscription=subscription, due_at=timezone.now(), preview=True, attempts=1)
    return send(subscription, delivery)
