"""Sending reports: claim due subscriptions with a conditional UPDATE (two workers never take the
same one), send each once per due time, and move the due date on whatever happens."""
import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog_sync.client import redact
from hygiene.reports.content import build_report
from hygiene.reports.emails import report_email
from hygiene.reports.models import Delivery, Subscription
from hygiene.reports.schedule import next_due_for

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
SENDING_SECONDS = 600  # a delivery whose worker died mid-send is tried again after this


def retries_due(now=None):
    """[(subscription id, due time)] of unsent deliveries whose retry time has come (no countdown tasks:
    the periodic sender picks them up)."""
    now = now or timezone.now()
    return list(Delivery.objects.filter(preview=False, sent_at__isnull=True, retry_at__lte=now,
                                        attempts__lt=MAX_ATTEMPTS, subscription__active=True)
                .values_list("subscription_id", "due_at")[:200])


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
            attempts=delivery.attempts + 1, retry_at=timezone.now() + timedelta(seconds=SENDING_SECONDS)):
        return False
    delivery.attempts += 1
    subscription = Subscription.objects.select_related("user").get(pk=subscription_id)
    if not subscription.active or subscription.view_deleted:  # a view deleted by hand: nothing to report on
        return False
    return send(subscription, delivery)


def send(subscription, delivery):
    report = build_report(subscription)
    try:
        report_email(subscription, report, preview=delivery.preview).send()
    except Exception as exc:
        message = redact(f"{type(exc).__name__}: {exc}")[:2000]
        wait = timedelta(seconds=min(3600, 60 * 2 ** max(0, delivery.attempts - 1)))
        Delivery.objects.filter(pk=delivery.pk).update(
            error=message, retry_at=None if delivery.preview or delivery.attempts >= MAX_ATTEMPTS
            else timezone.now() + wait)
        Subscription.objects.filter(pk=subscription.pk).update(failures=subscription.failures + 1,
                                                               last_error=message)
        raise
    now = timezone.now()
    Delivery.objects.filter(pk=delivery.pk).update(sent_at=now, error="", retry_at=None)
    if not delivery.preview:
        Subscription.objects.filter(pk=subscription.pk).update(
            last_sent_at=now, last_counts={**report["counts"]}, failures=0, last_error="")
    return True


def send_now(subscription):
    """"Send me this report now": a preview to the subscriber, without touching the schedule."""
    delivery = Delivery.objects.create(subscription=subscription, due_at=timezone.now(), preview=True, attempts=1)
    return send(subscription, delivery)
