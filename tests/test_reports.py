"""E-mail reports: content against a known mirror, scheduling in time zones, sending once, failures,
a real SMTP server, and the subscription pages."""
import socket
from datetime import datetime, timedelta, timezone as dt_timezone
from email import message_from_bytes, policy
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from freezegun import freeze_time

from catalog_sync.models import ResourceRef, SecodaGroup, SecodaUser
from hygiene.dashboard.models import Snapshot
from hygiene.reports import services
from hygiene.reports.content import build_report
from hygiene.reports.emails import read_unsubscribe_token, unsubscribe_token
from hygiene.reports.models import Delivery, Subscription
from hygiene.reports.schedule import next_due
from tests.concurrency import race

pytestmark = pytest.mark.django_db
UTC = dt_timezone.utc


@pytest.fixture
def synced(emulator, synced_mirror):
    return emulator


def subscribe(user, **fields):
    values = dict(email=user.email or "steward@example.com", scope=Subscription.WORKSPACE,
                  frequency=Subscription.DAILY, hour=8, time_zone="UTC",
                  next_due_at=timezone.now() - timedelta(minutes=1))
    values.update(fields)
    return Subscription.objects.create(user=user, **values)


# -- scheduling --------------------------------------------------------------------------

@pytest.mark.parametrize("frequency, weekday, zone, after, expected", [
    ("daily", 0, "UTC", "2026-11-22T07:59:00+00:00", "2026-11-22T08:00:00+00:00"),
    ("daily", 0, "UTC", "2026-11-22T08:00:00+00:00", "2026-11-23T08:00:00+00:00"),
    ("daily", 0, "Asia/Tokyo", "2026-11-22T00:00:00+00:00", "2026-11-22T23:00:00+00:00"),
    ("weekly", 0, "Europe/Paris", "2026-11-22T12:00:00+00:00", "2026-11-23T07:00:00+00:00"),  # Sunday -> Monday 08:00 CET
    ("weekly", 6, "America/New_York", "2026-11-22T14:00:00+00:00", "2026-11-29T14:00:00+00:00"),  # Sunday 09:00 EST is now
    ("monthly", 0, "UTC", "2026-11-22T12:00:00+00:00", "2026-12-01T08:00:00+00:00"),
    ("monthly", 0, "UTC", "2026-12-31T12:00:00+00:00", "2027-01-01T08:00:00+00:00"),
    ("daily", 0, "America/New_York", "2027-03-14T06:00:00+00:00", "2027-03-14T12:00:00+00:00"),  # DST starts: EDT
])
def test_next_due_follows_the_local_hour_weekday_and_time_zone(frequency, weekday, zone, after, expected):
    hour = 8 if zone != "America/New_York" or frequency != "weekly" else 9
    due = next_due(frequency, hour, zone, datetime.fromisoformat(after), weekday)
    assert due == datetime.fromisoformat(expected)


def test_a_due_report_is_sent_at_its_time_and_the_next_one_is_scheduled(synced, steward):
    with freeze_time("2026-11-23 06:59:00+00:00"):  # Monday
        subscription = subscribe(steward, frequency=Subscription.WEEKLY, weekday=0, hour=8,
                                 time_zone="Europe/Paris", next_due_at=datetime(2026, 11, 23, 7, tzinfo=UTC))
        assert services.claim_due() == []
    with freeze_time("2026-11-23 07:02:00+00:00"):
        claimed = services.claim_due()
        assert claimed == [(subscription.pk, datetime(2026, 11, 23, 7, tzinfo=UTC))]
        assert services.deliver(*claimed[0])
    subscription.refresh_from_db()
    assert subscription.next_due_at == datetime(2026, 11, 30, 7, tzinfo=UTC)
    assert len(mail.outbox) == 1


# -- content ------------------------------------------------------------------------------

def test_workspace_report_numbers_match_the_dashboard(synced, steward):
    subscription = subscribe(steward)
    report = build_report(subscription)
    totals = Snapshot.objects.first().totals
    assert {rule["key"]: rule["count"] for rule in report["rules"]} == {
        key: totals[key] for key in ("stale", "unowned", "undocumented", "failing_dbt_tests", "warning_dbt_tests",
                                     "unused")}
    assert report["health"] == round(totals["health"]), "whole numbers, as on the dashboard"
    assert all(rule["change"] is None for rule in report["rules"]), "the first report has nothing to compare"


def test_report_shows_changes_since_the_previous_one_with_arrows(synced, steward):
    subscription = subscribe(steward)
    services.deliver(*services.claim_due()[0])
    subscription.refresh_from_db()
    subscription.last_counts = {**subscription.last_counts, "unowned": subscription.last_counts["unowned"] + 7,
                                "stale": subscription.last_counts["stale"] - 2}
    subscription.save()
    report = build_report(subscription)
    changes = {rule["key"]: rule["change"] for rule in report["rules"]}
    assert changes["unowned"] == -7 and changes["stale"] == 2 and changes["undocumented"] == 0
    services.send_now(subscription)
    html = mail.outbox[-1].alternatives[0][0]
    assert "▼ 7" in html and "▲ 2" in html and "no change" in html


def test_owner_report_lists_their_worst_assets_with_links(synced, steward):
    owner_id = ResourceRef.objects.filter(kind="owner").values_list("ref_id", flat=True).first()
    person = SecodaUser.objects.get(pk=owner_id)
    steward.email = person.email
    steward.save()
    subscription = subscribe(steward, scope=Subscription.MINE)
    report = build_report(subscription)
    assert report["worst"], "the person owns broken assets"
    healths = [asset["health"] for asset in report["worst"]]
    assert healths == sorted(healths)
    assert len(report["worst"]) <= 25
    groups = [g.name for g in SecodaGroup.objects.present() if person.pk in g.users]
    assert all(person.display_name in asset["owners"] or any(f"{g} (group)" in asset["owners"] for g in groups)
               for asset in report["worst"]), "owned by them or by a group of theirs"
    assert report["worst"][0]["link"].startswith("http://") and "/resources/" in report["worst"][0]["link"]
    assert report["counts"]["resources"] >= ResourceRef.objects.filter(
        kind="owner", ref_id=owner_id, resource__removed_at__isnull=True, resource__archived=False).count()


def test_team_report_counts_only_that_team(synced, steward):
    team_id = ResourceRef.objects.filter(kind="team").values_list("ref_id", flat=True).first()
    subscription = subscribe(steward, scope=Subscription.TEAM, scope_id=team_id)
    report = build_report(subscription)
    assert report["counts"]["resources"] == Snapshot.objects.first().by_team[team_id]["resources"]
    assert report["counts"]["unowned"] == Snapshot.objects.first().by_team[team_id]["unowned"]


@pytest.mark.parametrize("scope", [Subscription.TEAM, Subscription.WORKSPACE, Subscription.MINE])
def test_every_report_lists_its_worst_assets_and_says_whose(synced, steward, scope):
    owner_id = ResourceRef.objects.filter(kind="owner").values_list("ref_id", flat=True).first()
    steward.email = SecodaUser.objects.get(pk=owner_id).email
    steward.save()
    team_id = ResourceRef.objects.filter(kind="team").values_list("ref_id", flat=True).first()
    subscription = subscribe(steward, scope=scope, scope_id=team_id if scope == Subscription.TEAM else "")
    report = build_report(subscription)
    assert report["worst"] and report["worst_total"] == report["counts"]["issues"]
    services.send_now(subscription)
    text, html = mail.outbox[-1].body, mail.outbox[-1].alternatives[0][0]
    first = report["worst"][0]
    assert first["title"] in text and first["link"] in text and first["link"] in html
    if scope == Subscription.MINE:
        assert "Your assets that need the most work" in text and "you own with open issues" in html
    else:
        assert "Your assets" not in text + html
        assert f"Assets that need the most work ({len(report['worst'])} of {report['worst_total']:,}" in text
        assert f"with open issues in {report['scope']}." in html


# -- sending ------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_send_a_report_once(synced, steward):
    subscribe(steward)

    def worker():
        return [services.deliver(*claim) for claim in services.claim_due()]

    sent = [result for outcome in race(worker, worker) for result in outcome]
    assert sent == [True]
    assert len(mail.outbox) == 1
    assert Delivery.objects.filter(sent_at__isnull=False).count() == 1


class BrokenBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("SMTP server is down")


def test_a_failed_send_is_recorded_retried_and_the_schedule_moves_on(synced, steward, settings):
    subscription = subscribe(steward)
    due = subscription.next_due_at
    settings.EMAIL_BACKEND = "tests.test_reports.BrokenBackend"
    claim = services.claim_due()[0]
    with pytest.raises(ConnectionRefusedError):
        services.deliver(*claim)
    subscription.refresh_from_db()
    assert subscription.failures == 1 and "SMTP server is down" in subscription.last_error
    assert subscription.next_due_at > due, "the next due date moved on"
    assert Delivery.objects.get().error

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert services.deliver(*claim) is True  # the retry
    assert services.deliver(*claim) is False  # never twice for one due time
    subscription.refresh_from_db()
    assert subscription.failures == 0 and subscription.last_sent_at
    assert len(mail.outbox) == 1


class Collector:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


def test_a_report_goes_through_a_real_smtp_server(synced, steward, settings):
    collector = Collector()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        subscription = subscribe(steward, email="data-team@example.com")
        assert services.deliver(*services.claim_due()[0])
    finally:
        controller.stop()
    assert len(collector.messages) == 1
    envelope = collector.messages[0]
    assert envelope.rcpt_tos == ["data-team@example.com"]
    message = message_from_bytes(envelope.content, policy=policy.default)
    assert message["Subject"].startswith("Catalog hygiene for the whole workspace")
    # The token is signed with a timestamp: compare what it names, not its bytes (a second may have passed).
    header = "".join(message["List-Unsubscribe"].split())
    prefix = "<http://127.0.0.1:8000/reports/unsubscribe/"
    assert header.startswith(prefix) and header.endswith("/>")
    assert read_unsubscribe_token(header[len(prefix):-2]) == read_unsubscribe_token(unsubscribe_token(subscription)) \
        == (subscription.pk, subscription.email)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    unowned = Snapshot.objects.first().totals["unowned"]
    assert "Unowned" in text and f"{unowned:,}" in text
    assert "Open the dashboard" in html


# -- pages ---------------------------------------------------------------------------------

def test_a_viewer_subscribes_themselves_and_cannot_send_elsewhere(synced, viewer, client):
    viewer.email = "victor@example.com"
    viewer.save()
    client.force_login(viewer)
    response = client.post(reverse("reports:list"), {
        "scope": "workspace", "frequency": "weekly", "weekday": 2, "hour": 9, "time_zone": "Europe/Berlin",
        "email": "someone-else@example.com"}, follow=True)
    subscription = Subscription.objects.get()
    assert subscription.email == "victor@example.com"
    assert "Subscribed victor@example.com" in response.content.decode()
    assert "to a weekly report" in response.content.decode()
    local = subscription.next_due_at.astimezone(ZoneInfo("Europe/Berlin"))
    assert (local.weekday(), local.hour) == (2, 9)


def test_a_steward_subscribes_a_team_mailing_list_and_the_team_is_required(synced, steward, client):
    client.force_login(steward)
    response = client.post(reverse("reports:list"), {
        "scope": "team", "frequency": "daily", "weekday": 0, "hour": 7, "time_zone": "UTC",
        "email": "data-team@example.com"})
    assert "Choose the team this report covers." in response.content.decode()
    team_id = ResourceRef.objects.filter(kind="team").values_list("ref_id", flat=True).first()
    client.post(reverse("reports:list"), {
        "scope": "team", "team": team_id, "frequency": "daily", "weekday": 0, "hour": 7, "time_zone": "UTC",
        "email": "data-team@example.com"})
    subscription = Subscription.objects.get()
    assert (subscription.email, subscription.scope_id) == ("data-team@example.com", team_id)


def test_send_now_sends_a_preview_and_keeps_the_schedule(synced, steward, client):
    client.force_login(steward)
    subscription = subscribe(steward, next_due_at=timezone.now() + timedelta(days=3))
    response = client.post(reverse("reports:send-now", args=[subscription.pk]), follow=True)
    assert "Sent the report" in response.content.decode()
    assert len(mail.outbox) == 1 and "sent on request" in mail.outbox[0].body
    subscription.refresh_from_db()
    assert subscription.next_due_at > timezone.now() + timedelta(days=2)
    preview = client.get(reverse("reports:preview", args=[subscription.pk])).content.decode()
    assert "Your report for the whole workspace" in preview


def test_one_click_unsubscribe_needs_no_login_and_a_forged_link_fails(synced, steward, client):
    subscription = subscribe(steward)
    url = reverse("reports:unsubscribe", args=[unsubscribe_token(subscription)])
    assert "Stop this report?" in client.get(url).content.decode()
    response = client.post(url)
    assert response.status_code == 200 and "Unsubscribed" in response.content.decode()
    subscription.refresh_from_db()
    assert subscription.active is False
    assert services.claim_due() == [], "an unsubscribed report is never sent"
    forged = reverse("reports:unsubscribe", args=[unsubscribe_token(subscription)[:-3] + "abc"])
    assert client.post(forged).status_code == 404


def test_people_only_see_their_own_subscriptions(synced, steward, viewer, client):
    subscription = subscribe(steward)
    client.force_login(viewer)
    assert client.post(reverse("reports:send-now", args=[subscription.pk])).status_code == 404
    assert client.post(reverse("reports:delete", args=[subscription.pk])).status_code == 404
    assert Subscription.objects.filter(pk=subscription.pk).exists()
