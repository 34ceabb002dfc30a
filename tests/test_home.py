"""The home page: login required, last sync, counts per rule."""
import pytest
from django.urls import reverse

from catalog_sync.models import SyncRun
from catalog_sync.sync import run_sync
from hygiene.rulebook.registry import summary
from tests.conftest import TOKEN, fast_client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/", "/admin/"])
def test_anonymous_users_are_sent_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_health_check_needs_no_login(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_home_shows_counts_per_rule_and_the_last_sync(client, steward, synced_mirror):
    run = synced_mirror
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


def test_home_warns_when_the_last_sync_failed(client, viewer, synced_mirror, emulator):
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


def test_home_tells_incremental_syncs_from_full_sweeps(client, viewer, synced_mirror, emulator):
    assert synced_mirror.kind == SyncRun.FULL
    emulator.workspace.set_description(emulator.workspace.ids()[0], "Edited upstream.")
    incremental = run_sync(client=fast_client(emulator), kind=SyncRun.INCREMENTAL)
    assert incremental.kind == SyncRun.INCREMENTAL
    client.force_login(viewer)
    html = client.get("/").content.decode()
    assert "<td>Incremental" in html and "<td>Full sweep" in html
    assert "Last full sweep" in html and "resources deleted in Secoda leave within one sync" in html


def test_home_shows_a_running_sweeps_slices_as_a_progress_bar(client, viewer, emulator):
    from catalog_sync.models import SyncSlice

    run = SyncRun.objects.create(kind=SyncRun.FULL, mode=SyncRun.FAN_OUT, fetched=1234)
    SyncSlice.objects.bulk_create(
        [SyncSlice(run=run, label=f"slice {n}", status=SyncSlice.DONE if n < 3 else SyncSlice.PENDING)
         for n in range(8)])
    client.force_login(viewer)
    html = client.get("/").content.decode()
    assert "Syncing now" in html and "full sweep" in html and "1,234 resources listed so far" in html
    assert "3 of 8 slices listed, across the workers" in html
    assert 'role="progressbar"' in html and 'aria-valuenow="3"' in html
