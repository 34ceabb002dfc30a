"""The holes an attacker found, closed: hostile links from Secoda, token fragments, users without a role,
NUL bytes and odd ids, open `next` targets, double undo, escaped e-mail subjects, what ships in the image."""
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from catalog_sync.models import Resource
from catalog_sync.normalize import http_url, resource_row
from hygiene.bulk import services
from hygiene.bulk.models import ChangeItem, ChangeSet
from tests.conftest import fast_client

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent

HOSTILE_URLS = ["javascript:alert(1)", " JavaScript:alert(1)", "\tjavascript:alert(1)", "JAVASCRIPT:alert(1)",
                "data:text/html,<script>alert(1)</script>", "vbscript:msgbox(1)", "//evil.example/x",
                "java\nscript:alert(1)", "http://", "ftp://files.example/x", "/relative/path"]


@pytest.fixture
def synced(emulator, synced_mirror):
    return emulator


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_only_http_links_are_stored_or_shown(url):
    assert http_url(url) == ""
    assert resource_row({"id": "r1", "url": url})["url"] == ""


def test_http_links_are_kept():
    assert http_url(" https://app.secoda.co/table/1 ") == "https://app.secoda.co/table/1"
    assert http_url("HTTP://example.com/a?b=1") == "HTTP://example.com/a?b=1"


def test_a_javascript_link_already_in_the_mirror_is_never_a_link(synced, client, steward):
    resource = Resource.objects.filter(entity_type="table").first()
    Resource.objects.filter(pk=resource.pk).update(url="javascript:alert(document.cookie)", title="<b>x</b>",
                                                   title_full="<b>x</b>")
    client.force_login(steward)
    for path in (reverse("dashboard:resource", args=[resource.pk]), "/issues/?q=%3Cb%3E"):
        html = client.get(path).content.decode()
        assert "javascript:" not in html.lower(), path
        assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html, path


def test_every_page_sends_a_policy_that_forbids_inline_script(synced, client, steward):
    client.force_login(steward)
    for path in ("/", "/issues/", "/owners/", "/reports/", "/changes/", "/accounts/login/"):
        response = client.get(path)
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
        assert "<script>" not in response.content.decode() and " onsubmit=" not in response.content.decode()


def test_a_signed_in_user_without_a_role_is_asked_to_get_access(synced, client, outsider):
    client.force_login(outsider)
    for path in ("/", "/issues/", "/issues/export.csv", "/reports/", "/changes/",
                 reverse("dashboard:resource", args=[Resource.objects.first().pk])):
        response = client.get(path)
        assert response.status_code == 403, path
        html = response.content.decode()
        assert "Ask an admin for access" in html and "Sign out" in html and 'class="mainnav"' not in html
    response = client.post(reverse("reports:list"), {"scope": "workspace", "frequency": "daily", "hour": 8})
    assert response.status_code == 403
    assert client.post(reverse("logout")).status_code == 302, "they can sign out"


def test_nul_bytes_and_odd_ids_get_a_clear_answer_not_a_500(synced, client, steward):
    client.force_login(steward)
    assert client.get("/resources/abc%00def/").status_code == 400
    assert client.get("/issues/?q=a%00b").status_code == 400
    response = client.post(reverse("bulk:edit"), {"select_all": "0", "pk": ["a\x00b"], "rule": "unowned"})
    assert response.status_code == 400 and "NUL" in response.content.decode()
    assert client.get("/resources/no-such-id/").status_code == 404
    # An id with a slash (Secoda may send one) gets its own page, and lists that show it still render.
    resource = Resource.objects.filter(entity_type="table").first()
    Resource.objects.filter(pk=resource.pk).update(id="folder/table-1")
    page = client.get(reverse("dashboard:resource", args=["folder/table-1"]))
    assert page.status_code == 200
    assert client.get("/issues/").status_code == 200


@pytest.mark.parametrize("target", ["abc", "//evil.example/", "https://evil.example/", "javascript:alert(1)"])
def test_a_bad_next_after_a_snooze_falls_back_to_the_snoozes_page(synced, client, steward, target):
    client.force_login(steward)
    resource = Resource.objects.filter(is_owned=False, archived=False).first()
    response = client.post(reverse("dashboard:snooze-create"), {
        "rule": "unowned", "until": "2099-01-01", "reason": "test", "resource": resource.pk, "next": target})
    assert response.status_code == 302 and response["Location"] == reverse("dashboard:snoozes")


def test_undo_twice_makes_one_draft(synced, client, steward):
    user = synced.workspace.users()[0]["id"]
    ids = list(Resource.objects.filter(is_owned=False, archived=False).values_list("pk", flat=True)[:3])
    change_set = services.build_change_set(steward, Resource.objects.filter(pk__in=ids),
                                           {"owners": {"mode": "add", "users": [user]}}, "test")
    ChangeSet.objects.filter(pk=change_set.pk).update(status=ChangeSet.PENDING)
    done = services.run_change_set(change_set.pk, client=fast_client(synced))
    assert done.items.filter(status=ChangeItem.APPLIED).count() == 3
    client.force_login(steward)
    first = client.post(reverse("bulk:undo", args=[done.pk]))
    second = client.post(reverse("bulk:undo", args=[done.pk]), follow=True)
    assert ChangeSet.objects.filter(undo_of=done).count() == 1
    assert first["Location"] == second.redirect_chain[0][0]
    assert "has an undo already" in second.content.decode()


def test_e_mail_subjects_are_plain_text(synced, steward, settings):
    from hygiene.reports.content import build_report
    from hygiene.reports.emails import report_email
    from hygiene.reports.models import Subscription
    from catalog_sync.models import Team

    team = Team.objects.present().first()
    Team.objects.filter(pk=team.pk).update(name="R&D <core>")
    subscription = Subscription.objects.create(user=steward, email="s@example.com", scope=Subscription.TEAM,
                                               scope_id=team.pk, frequency=Subscription.DAILY, hour=8,
                                               time_zone="UTC", next_due_at=timezone.now())
    message = report_email(subscription, build_report(subscription))
    assert "R&D <core>" in message.subject and "&amp;" not in message.subject
    assert "R&amp;D &lt;core&gt;" in message.alternatives[0][0], "the HTML part stays escaped"
    message.send()
    assert mail.outbox[-1].subject == message.subject


def test_what_ships_in_the_image_leaves_secrets_and_history_out():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", ".env", "var/", "control/"):
        assert entry in ignored, entry
    assert not (ROOT / "control").exists() or not subprocess.run(
        ["git", "ls-files", "control"], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def test_the_folder_broker_writes_nothing_into_the_checkout(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HYGIENE_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "hygiene.settings",
           "DJANGO_SECRET_KEY": "x", "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3", "REDIS_URL": ""}
    code = ("import django; django.setup(); "
            "from django.conf import settings; print(settings.CELERY_BROKER_TRANSPORT_OPTIONS['control_folder'])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(str(tmp_path))


def test_error_pages_are_styled_and_pages_arrive_compressed(synced, client, steward, viewer, settings):
    settings.DEBUG = False
    client.force_login(viewer)
    missing = client.get("/changes/987654/")
    assert missing.status_code == 404 and "That page is not here" in missing.content.decode()
    assert 'class="mainnav"' in missing.content.decode() and "favicon.svg" in missing.content.decode()
    refused = client.post(reverse("dashboard:snooze-create"), {"rule": "unowned"})
    assert refused.status_code == 403 and "only stewards change things" in refused.content.decode()
    client.force_login(steward)
    page = client.get("/issues/", HTTP_ACCEPT_ENCODING="gzip")
    assert page.headers["Content-Encoding"] == "gzip" and len(page.content) < 20_000


def test_filters_that_cannot_match_say_so_and_a_zero_reads_as_zero(synced, client, steward):
    from hygiene.dashboard.filtersets import filterset_from_query

    client.force_login(steward)
    page = client.get("/issues/", {"updated_after": "2026-05-01", "updated_before": "2026-01-01"}, follow=True)
    assert "nothing could match" in page.content.decode() and "Ignored the filter" in page.content.decode()
    assert filterset_from_query("usage_max=0").describe() == "Usage at most: 0"
