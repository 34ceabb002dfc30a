"""Browser tests of a steward's own flows: linking themselves to their Secoda person and getting the
"Assets I own" report in the mailbox; editing one resource from its page through a real Celery worker
and finding the change in its history. With BROWSER_SHOTS=1, screenshots go to /tmp/browser-shots/steward-*.png."""
import os

import pytest

# pytest-django's live server and the ORM calls below run next to Playwright's event loop.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from django.db.models import Count  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

from catalog_sync.models import Resource, ResourceRef, SecodaUser  # noqa: E402
from hygiene.mailbox.models import Message  # noqa: E402
from tests.browser_helpers import log_in, shooter  # noqa: E402
from tests.test_browser_bulk import (  # noqa: E402, F401  (fixtures)
    WORKER_TIMEOUT_MS, mirror, quick_writes, tab, worker)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


shot = shooter("steward")


def top_owner():
    ranked = (ResourceRef.objects.filter(kind=ResourceRef.OWNER).values("ref_id").annotate(n=Count("id"))
              .order_by("-n", "ref_id"))
    people = SecodaUser.objects.present().exclude(email="").exclude(last_name="").in_bulk(
        [r["ref_id"] for r in ranked[:50]])
    return next(people[r["ref_id"]] for r in ranked[:50] if r["ref_id"] in people)


def test_a_steward_links_themselves_and_gets_the_assets_they_own_in_the_mailbox(live_server, tab, mirror, steward,
                                                                                 settings):
    settings.EMAIL_BACKEND = "hygiene.mailbox.backend.EmailBackend"
    steward.email = "stella@example.com"  # not a Secoda address: no link by e-mail
    steward.save()
    person = top_owner()
    base = live_server.url
    log_in(tab, base, "stella", "pw-steward-1")

    tab.goto(f"{base}/reports/")
    expect(tab.get_by_test_id("report-person")).to_contain_text("You are not linked to a Secoda person")
    tab.get_by_role("link", name="Link yourself").click()
    tab.get_by_label("Find your Secoda person").fill(person.last_name)
    tab.get_by_role("button", name="Search").click()
    tab.get_by_role("button", name=f"Link me to {person.display_name}").click()
    expect(tab.locator(".messages")).to_contain_text(f"You are now linked to {person.display_name}")
    expect(tab.get_by_test_id("linked-person")).to_contain_text(f"{person.display_name}")
    expect(tab.get_by_test_id("linked-person")).to_contain_text("by hand")
    shot(tab, "account-linked")

    tab.goto(f"{base}/reports/")
    expect(tab.get_by_test_id("report-person")).to_contain_text(f"You are linked to {person.display_name}")
    tab.get_by_label("What it covers").select_option("mine")
    tab.get_by_label("How often").select_option("daily")
    tab.get_by_role("button", name="Subscribe").click()
    expect(tab.locator(".messages")).to_contain_text("report on assets you own")
    tab.get_by_role("button", name="Send now").click()
    expect(tab.locator(".messages")).to_contain_text("Sent the report to stella@example.com")

    tab.get_by_role("link", name="Mailbox").click()
    tab.locator("table.data a").first.click()
    expect(tab.locator("h1")).to_contain_text("Catalog hygiene for assets you own")
    owned = Resource.objects.filter(refs__kind=ResourceRef.OWNER, refs__ref_id=person.pk).values_list(
        "title_full", flat=True)
    mail = tab.frame_locator("iframe.mail-frame")
    expect(mail.locator("body")).to_contain_text("need the most work")
    first_worst = Message.objects.get().body_text.split("need the most work", 1)[1]
    assert any(title in first_worst for title in owned), "the worst assets are the linked person's"
    shot(tab, "mailbox-message")


def test_a_steward_edits_one_resource_from_its_page_and_sees_it_in_its_history(live_server, tab, mirror, steward,
                                                                              worker):
    person = top_owner()
    resource = Resource.objects.filter(removed_at__isnull=True, archived=False, entity_type="table", owners=[],
                                       owners_groups=[]).order_by("pk").first()
    base = live_server.url
    log_in(tab, base, "stella", "pw-steward-1")
    tab.goto(f"{base}/resources/{resource.pk}/")
    tab.get_by_role("link", name="Edit this resource").click()
    expect(tab.locator("h1")).to_contain_text(f"Edit {resource.title}")
    tab.get_by_label("Owners").fill("Nobody Atall")
    tab.get_by_role("button", name="Preview the changes").click()
    expect(tab.locator(".field-error")).to_contain_text("No person or group called “Nobody Atall”")
    expect(tab.get_by_label("Owners")).to_be_focused()

    tab.get_by_label("Owners").fill(person.email)
    tab.get_by_label("Description").fill("One row per order line, loaded nightly.")
    tab.get_by_label("Verified").select_option("true")
    tab.get_by_role("button", name="Preview the changes").click()
    apply = tab.get_by_role("button", name="Apply 1 change in Secoda")
    expect(apply).to_be_visible()
    expect(tab.locator("body")).to_contain_text(person.display_name)
    shot(tab, "edit-preview")
    apply.click()
    expect(tab.locator(".page-head [data-status]")).to_have_attribute("data-status", "completed",
                                                                      timeout=WORKER_TIMEOUT_MS)
    tab.goto(f"{base}/resources/{resource.pk}/")
    history = tab.locator("ol.history")
    expect(history).to_contain_text("Change set #")
    expect(history).to_contain_text(f"none → {person.display_name}")
    expect(tab.locator("dl.facts").first).to_contain_text(person.display_name)
    shot(tab, "resource-history")
