"""Dashboard users linked to Secoda people: by e-mail, by hand on the account page and in the admin;
"Assets I own" reports follow the link; mail kept in the mailbox when no mail server is set."""
import pytest
from django.core import mail
from django.db.models import Count
from django.urls import reverse

from catalog_sync.models import ResourceRef, SecodaUser
from hygiene.accounts.models import PersonLink
from hygiene.accounts.services import BY_EMAIL, BY_HAND, linked_person
from hygiene.mailbox.models import Message
from hygiene.reports import services
from hygiene.reports.content import build_report
from hygiene.reports.models import Subscription
from hygiene.rules import in_scope

pytestmark = pytest.mark.django_db


@pytest.fixture
def synced(emulator, synced_mirror):
    return emulator


def top_owners(n=2):
    """Present people with an e-mail, by how many assets they own directly."""
    ranked = (ResourceRef.objects.filter(kind=ResourceRef.OWNER).values("ref_id").annotate(n=Count("id"))
              .order_by("-n", "ref_id"))
    people = SecodaUser.objects.present().exclude(email="").in_bulk([r["ref_id"] for r in ranked[:50]])
    return [people[r["ref_id"]] for r in ranked[:50] if r["ref_id"] in people][:n]


def owned_count(person):
    return in_scope().filter(pk__in=ResourceRef.objects.filter(kind=ResourceRef.OWNER, ref_id=person.pk)
                             .values("resource_id")).count()


def test_a_user_is_linked_by_email_and_sees_it_on_the_account_and_reports_pages(synced, client, steward):
    person = top_owners(1)[0]
    steward.email = person.email.upper()  # addresses match whatever their case
    steward.save()
    link = linked_person(steward)
    assert link.person == person and link.how == BY_EMAIL
    client.force_login(steward)
    page = client.get(reverse("accounts:account")).content.decode()
    assert f"You are linked to <strong>{person.display_name}</strong>" in page and "by e-mail" in page
    assert f"?owner=user%3A{person.pk}" in page
    reports = client.get(reverse("reports:list")).content.decode()
    assert f"You are linked to <strong>{person.display_name}</strong>" in reports


def test_an_unlinked_user_is_told_why_and_cannot_subscribe_to_assets_they_own(synced, client, viewer):
    client.force_login(viewer)
    page = client.get(reverse("accounts:account")).content.decode()
    assert "You are not linked to a Secoda person" in page and "has no e-mail address" in page
    viewer.email = "victor@example.com"
    viewer.save()
    response = client.post(reverse("reports:list"), {"scope": "mine", "frequency": "daily", "weekday": 0,
                                                     "hour": 8, "time_zone": "UTC"})
    assert response.status_code == 200
    assert "not linked to a Secoda person yet" in response.content.decode()
    assert not Subscription.objects.exists()


def test_linking_by_hand_wins_over_email_and_drives_the_assets_i_own_report(synced, client, viewer):
    by_email, chosen = top_owners(2)
    viewer.email = by_email.email
    viewer.save()
    client.force_login(viewer)
    found = client.get(reverse("accounts:account"), {"q": chosen.last_name}).content.decode()
    assert chosen.display_name in found and "This is me" in found
    response = client.post(reverse("accounts:link"), {"person": chosen.pk}, follow=True)
    assert f"You are now linked to {chosen.display_name}" in response.content.decode()
    assert linked_person(type(viewer).objects.get(pk=viewer.pk)).how == BY_HAND

    client.post(reverse("reports:list"), {"scope": "mine", "frequency": "daily", "weekday": 0, "hour": 8,
                                          "time_zone": "UTC"})
    subscription = Subscription.objects.get(user=viewer, scope=Subscription.MINE)
    report = build_report(subscription)
    assert report["counts"]["resources"] == owned_count(chosen) > 0, "what the owner filter lists"
    assert all(f"owner=user%3A{chosen.pk}" in rule["link"] for rule in report["rules"])

    client.post(reverse("accounts:unlink"))
    assert linked_person(type(viewer).objects.get(pk=viewer.pk)).person == by_email


def test_a_link_to_someone_not_in_the_workspace_is_refused_with_a_message(synced, client, viewer):
    client.force_login(viewer)
    response = client.post(reverse("accounts:link"), {"person": "no-such-person"}, follow=True)
    assert "not in the workspace" in response.content.decode()
    assert not PersonLink.objects.exists()


def test_an_admin_links_a_user_by_hand_with_an_email_or_id(synced, admin_client, viewer):
    person = top_owners(1)[0]
    url = reverse("admin:auth_user_change", args=[viewer.pk])
    form = {"username": viewer.username, "first_name": "", "last_name": "", "email": "", "is_active": "on",
            "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00", "groups": [g.pk for g in viewer.groups.all()],
            "person_link-TOTAL_FORMS": 1, "person_link-INITIAL_FORMS": 0, "person_link-MIN_NUM_FORMS": 0,
            "person_link-MAX_NUM_FORMS": 1, "person_link-0-secoda_user_id": "nobody@nowhere.example",
            "person_link-0-user": viewer.pk}
    refused = admin_client.post(url, form)
    assert refused.status_code == 200 and "No Secoda person with that id or e-mail" in refused.content.decode()
    form["person_link-0-secoda_user_id"] = person.email
    assert admin_client.post(url, form).status_code == 302
    link = PersonLink.objects.get(user=viewer)
    assert link.secoda_user_id == person.pk and link.linked_by.is_superuser


def test_without_a_mail_server_reports_are_kept_in_the_mailbox(synced, client, settings, steward, viewer):
    settings.EMAIL_BACKEND = "hygiene.mailbox.backend.EmailBackend"
    steward.email, viewer.email = "stella@example.com", "victor@example.com"
    steward.save(), viewer.save()
    subscription = Subscription.objects.create(user=steward, email=steward.email, scope=Subscription.WORKSPACE,
                                               next_due_at="2030-01-01T00:00Z")
    services.send_now(subscription)
    assert not mail.outbox
    kept = Message.objects.get()
    assert kept.to == ["stella@example.com"] and "<html" in kept.body_html.lower()

    client.force_login(steward)
    inbox = client.get(reverse("mailbox:inbox")).content.decode()
    assert kept.subject in inbox and "Mailbox" in inbox
    shown = client.get(reverse("mailbox:message", args=[kept.pk])).content.decode()
    assert "Plain text" in shown and "sandbox" in shown
    html = client.get(reverse("mailbox:message-html", args=[kept.pk]))
    assert html.headers["Content-Security-Policy"].startswith("sandbox")

    client.force_login(viewer)  # another address: not theirs to read
    assert kept.subject not in client.get(reverse("mailbox:inbox")).content.decode()
    assert client.get(reverse("mailbox:message", args=[kept.pk])).status_code == 404


def test_a_viewer_reads_only_mail_sent_to_their_own_whole_address(synced, client, settings, viewer):
    settings.EMAIL_BACKEND = "hygiene.mailbox.backend.EmailBackend"
    from django.core.mail import send_mail

    send_mail("For Jo Ann", "private", "hygiene@localhost", ["Jo Ann <JoAnn@Example.com>"])
    send_mail("For Ann", "hers", "hygiene@localhost", ["ann@example.com"])
    viewer.email = "ann@example.com"
    viewer.save()
    client.force_login(viewer)
    inbox = client.get(reverse("mailbox:inbox")).content.decode()
    assert "For Ann" in inbox and "For Jo Ann" not in inbox
    joann = Message.objects.get(subject="For Jo Ann")
    assert client.get(reverse("mailbox:message", args=[joann.pk])).status_code == 404
    assert client.get(reverse("mailbox:message-html", args=[joann.pk])).status_code == 404
    viewer.email = "JOANN@example.com"
    viewer.save()
    assert "For Jo Ann" in client.get(reverse("mailbox:inbox")).content.decode()
