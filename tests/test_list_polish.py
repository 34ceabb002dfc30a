"""Issue-list details a steward notices: short filter addresses, CSV in the list's order, and an empty
list that says its issues are snoozed."""
import csv
import io
from datetime import timedelta

import pytest
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone

from catalog_sync.models import Integration
from hygiene.domain.lists import issue_queryset
from hygiene.dashboard.models import Snapshot, Snooze
from hygiene.domain.snapshots import take_snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def synced(emulator, synced_mirror):
    return emulator


def test_empty_filter_parameters_are_dropped_from_the_address(synced, client, viewer):
    client.force_login(viewer)
    response = client.get(reverse("dashboard:rule", args=["unowned"]), {"q": "", "integration": "", "owner": "",
                                                                        "entity_type": ["table", ""]})
    assert response.status_code == 302 and response.url == "/issues/unowned/?entity_type=table"
    response = client.get(reverse("dashboard:issues"), {"q": ""})
    assert response.status_code == 302 and response.url == "/issues/"


def test_csv_comes_in_the_order_chosen_on_the_list(synced, client, viewer):
    client.force_login(viewer)
    page = client.get(reverse("dashboard:issues"), {"sort": "-title_full"}).content.decode()
    assert "export.csv?sort=-title_full" in page
    for sort in ("-title_full", "title_full"):
        rows = list(csv.reader(io.StringIO(b"".join(
            client.get(reverse("dashboard:issues-export"), {"sort": sort}).streaming_content).decode())))[1:]
        ids = [row[0] for row in rows]
        # As the list orders them: names whatever their case, ties by id.
        name = Lower("title_full").desc() if sort.startswith("-") else Lower("title_full").asc()
        expected = list(issue_queryset(None).order_by(name, "id").values_list("id", flat=True))
        assert len(ids) > 100 and ids == expected


def test_an_empty_list_says_when_its_issues_are_all_snoozed(synced, client, steward):
    integration = Integration.objects.present().order_by("name").first()
    Snooze.objects.create(filter_query=f"integration={integration.pk}", filter_label=integration.name,
                          reason="migrating", expires_at=timezone.now() + timedelta(days=7), created_by=steward)
    take_snapshot(Snapshot.SNOOZE)
    client.force_login(steward)
    html = client.get(reverse("dashboard:issues"), {"integration": integration.pk}).content.decode()
    assert 'data-testid="all-snoozed"' in html and "are snoozed" in html
    assert "Snooze this filter" not in html, "nothing left to snooze"
    other = Integration.objects.present().exclude(pk=integration.pk).order_by("name").first()
    html = client.get(reverse("dashboard:issues"), {"integration": other.pk}).content.decode()
    assert 'data-testid="all-snoozed"' not in html and "Snooze this filter" in html
