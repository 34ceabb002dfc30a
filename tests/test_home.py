"""The home page: login required, last sync, counts per rule."""
import pytest
from django.urls import reverse

from catalog_sync.models import SyncRun
from catalog_sync.sync import run_sync
from hygiene.rules import summary
from tests.conftest import TOKEN, fast_client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/", "/admin/"])
def test_anonymous_users_are_sent_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_health_check_needs_no_login(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_home_shows_counts_per_rule_and_the_last_sync(client, steward, emulator):
    run = run_sync(client=fast_client(emulator))
    client.force_login(steward)
    response = client.get(reverse("dashboard:home"))
    html = response.content.decode()
    report = summary()
    assert response.status_code == 200
    assert "Last synced" in html
    for rule in ("stale", "unowned", "undocumented", "failing_dbt_tests", "warning_dbt_tests"):
        assert f'data-rule="{rule}">{report[rule]:,}<' in html
    assert f"{run.fetched:,}" in html
    assert TOKEN not in html


def test_home_warns_when_the_last_sync_failed(client, viewer, emulator):
    run_sync(client=fast_client(emulator))
    bad = fast_client(emulator, max_retries=0)
    bad._token = "nope"
    failed = run_sync(client=bad)
    assert failed.status == SyncRun.FAILED
    client.force_login(viewer)
    html = client.get("/").content.decode()
    assert "The last sync failed" in html


def test_home_before_any_sync_says_so(client, viewer):
    client.force_login(viewer)
    html = client.get("/").content.decode()
    assert "never been synced" in html
