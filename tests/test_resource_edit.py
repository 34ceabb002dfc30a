"""One resource edited from its page through the change-set engine, and its history: every change set
that touched it and every sync that saw it change in Secoda."""
import pytest
from django.urls import reverse

from catalog_sync.models import Resource, ResourceChange, SecodaUser, SyncRun
from catalog_sync.sync import run_sync
from hygiene.bulk import services
from hygiene.bulk.models import ChangeSet
from tests.conftest import fast_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def synced(emulator, emulator_settings, synced_mirror):
    emulator.faults.writes_per_minute = 1000
    return emulator


def unowned_table():
    return Resource.objects.filter(removed_at__isnull=True, archived=False, entity_type="table", owners=[],
                                   owners_groups=[]).order_by("pk").first()


def edit_url(resource):
    return f"{reverse('bulk:edit-resource')}?resource={resource.pk}"


def form_values(client, resource):
    """What the edit form holds, as a browser would send it back (line breaks as CR LF, as browsers do)."""
    form = client.get(edit_url(resource)).context["form"]
    values = {name: form.initial.get(name, "") for name in form.fields}
    values["description"] = values["description"].replace("\n", "\r\n")
    return values


def test_a_steward_edits_one_resource_previews_applies_and_sees_it_in_its_history(synced, client, steward):
    client.force_login(steward)
    resource = unowned_table()
    person = SecodaUser.objects.present().exclude(email="").order_by("email").first()
    page = client.get(reverse("dashboard:resource", args=[resource.pk])).content.decode()
    assert "Edit this resource" in page and "No change yet" in page

    values = form_values(client, resource)
    assert values["owners"] == "" and values["description"] == resource.description
    values.update(owners=person.email, description="Orders, one row per order line.", verified="true")
    response = client.post(reverse("bulk:edit-resource"), {**values, "resource": resource.pk}, follow=True)
    change_set = ChangeSet.objects.get()
    assert change_set.status == ChangeSet.DRAFT and change_set.items.count() == 1
    item = change_set.items.get()
    assert set(item.after) == {"owners", "description", "verified"}, "only what changed is in the preview"
    assert "Owners" in response.content.decode() and person.display_name in response.content.decode()

    client.post(reverse("bulk:apply", args=[change_set.pk]))
    services.run_change_set(change_set.pk, client=fast_client(synced))
    record = synced.workspace.get(resource.pk)
    assert record["owners"] == [person.pk] and record["description"] == "Orders, one row per order line."
    page = client.get(reverse("dashboard:resource", args=[resource.pk])).content.decode()
    assert f"Change set #{change_set.pk}" in page and f"none → {person.display_name}" in page
    assert "Changed in Secoda" not in page, "the change set's own write is not also history seen in Secoda"


def test_a_form_left_as_it_is_changes_nothing(synced, client, steward):
    client.force_login(steward)
    resource = unowned_table()
    response = client.post(reverse("bulk:edit-resource"), {**form_values(client, resource), "resource": resource.pk},
                           follow=True)
    assert "Nothing changed" in response.content.decode()
    assert not ChangeSet.objects.exists()


def test_an_unknown_owner_is_refused_on_the_form_with_nothing_lost(synced, client, steward):
    client.force_login(steward)
    resource = unowned_table()
    values = {**form_values(client, resource), "owners": "Nobody Atall", "description": "kept text"}
    response = client.post(reverse("bulk:edit-resource"), {**values, "resource": resource.pk})
    html = response.content.decode()
    assert response.status_code == 200 and "No person or group called “Nobody Atall”" in html
    assert "kept text" in html and 'aria-invalid="true"' in html and "autofocus" in html
    assert not ChangeSet.objects.exists()


def test_viewers_get_no_edit_button_and_cannot_edit(synced, client, viewer):
    client.force_login(viewer)
    resource = unowned_table()
    assert "Edit this resource" not in client.get(reverse("dashboard:resource", args=[resource.pk])).content.decode()
    assert client.get(edit_url(resource)).status_code == 403
    assert client.post(reverse("bulk:edit-resource"), {"resource": resource.pk, "owners": ""}).status_code == 403


def test_an_unknown_resource_is_a_404_not_a_500(synced, client, steward):
    client.force_login(steward)
    assert client.get(f"{reverse('bulk:edit-resource')}?resource=nope").status_code == 404
    assert client.get(reverse("bulk:edit-resource")).status_code == 404


def test_a_sync_records_what_changed_in_secoda_and_the_page_shows_it(synced, client, steward):
    resource = unowned_table()
    person = SecodaUser.objects.present().exclude(email="").order_by("email").first()
    synced.workspace.set_owners(resource.pk, [person.pk])
    synced.workspace.set_description(resource.pk, "Written in Secoda.")
    run = run_sync(client=fast_client(synced), kind=SyncRun.INCREMENTAL)
    change = ResourceChange.objects.get(resource_id=resource.pk)
    assert change.sync_run_id == run.pk
    assert change.changes["owners"] == [[], [person.pk]] and change.changes["description"][1] == "Written in Secoda."
    # Usage counts and timestamps moving is not history; an unchanged resource records nothing.
    assert ResourceChange.objects.count() == 1
    client.force_login(steward)
    page = client.get(reverse("dashboard:resource", args=[resource.pk])).content.decode()
    assert f"seen by sync #{run.pk}" in page and f"none → {person.display_name}" in page
    assert "Written in Secoda." in page


def test_trend_per_team_and_integration_follows_the_snapshots(synced, client, viewer):
    from catalog_sync.models import Integration, Team
    from hygiene.dashboard.models import Snapshot

    run_sync(client=fast_client(synced), kind=SyncRun.INCREMENTAL)  # a second point on the chart
    client.force_login(viewer)
    latest = Snapshot.objects.filter(reason=Snapshot.SYNC).first()
    team = Team.objects.present().filter(pk__in=list(latest.by_team)).first()
    # The old address (/trend/?team=) leads to the team's page, where the trend now lives.
    page = client.get(reverse("dashboard:trend"), {"team": team.pk}, follow=True).content.decode()
    assert f'<span class="muted">Team</span> {team.name}' in page and "<svg" in page
    assert f">{latest.by_team[team.pk]['unowned']:,}<" in page
    integration = Integration.objects.present().filter(pk__in=list(latest.by_integration)).first()
    page = client.get(reverse("dashboard:trend"), {"integration": integration.pk}, follow=True).content.decode()
    assert f'<span class="muted">Integration</span> {integration.name}' in page
    teams_page = client.get(reverse("dashboard:teams")).content.decode()
    assert reverse("dashboard:team", args=[team.pk]) in teams_page
    assert client.get(reverse("dashboard:trend"), {"team": "nope"}, follow=True).status_code == 404
    assert client.get(reverse("dashboard:trend")).status_code == 404
    assert client.get(reverse("dashboard:trend"), {"team": "none"}, follow=True).status_code == 200


def test_only_the_fields_changed_are_sent_and_a_field_secoda_changed_meanwhile_is_not_overwritten(synced, client,
                                                                                                 steward):
    client.force_login(steward)
    resource = unowned_table()
    person = SecodaUser.objects.present().exclude(email="").order_by("email").first()
    values = form_values(client, resource)
    # Meanwhile a sync brings an owner from Secoda; the steward changes only the description.
    synced.workspace.set_owners(resource.pk, [person.pk])
    run_sync(client=fast_client(synced), kind=SyncRun.INCREMENTAL)
    values["description"] = "Only this changes."
    client.post(reverse("bulk:edit-resource"), {**values, "resource": resource.pk})
    item = ChangeSet.objects.get().items.get()
    assert set(item.after) == {"description"}, "the owner Secoda set is not undone"

    # Now the steward edits owners on a form opened before Secoda changed them: refused, text kept.
    ChangeSet.objects.all().delete()
    values = form_values(client, resource)
    synced.workspace.set_owners(resource.pk, [])
    run_sync(client=fast_client(synced), kind=SyncRun.INCREMENTAL)
    values["owners"] = "Nobody Atall"
    response = client.post(reverse("bulk:edit-resource"), {**values, "resource": resource.pk})
    html = response.content.decode()
    assert "Changed in Secoda since you opened this form, which now holds Owners: “nothing”" in html
    assert 'value="Nobody Atall"' in html
    assert not ChangeSet.objects.exists()


def test_names_that_no_longer_resolve_do_not_block_an_edit_of_another_field(synced, client, steward):
    from catalog_sync.models import Tag

    client.force_login(steward)
    resource = Resource.objects.filter(removed_at__isnull=True, archived=False).exclude(tags=[]).order_by("pk").first()
    values = form_values(client, resource)
    Tag.objects.filter(pk__in=resource.tags).update(name="Renamed in Secoda")  # the shown names resolve to nothing
    values["verified"] = "false" if values["verified"] == "true" else "true"
    client.post(reverse("bulk:edit-resource"), {**values, "resource": resource.pk})
    assert set(ChangeSet.objects.get().items.get().after) == {"verified"}


def test_a_tampered_form_is_refused_with_a_message(synced, client, steward):
    client.force_login(steward)
    resource, other = list(Resource.objects.filter(removed_at__isnull=True, archived=False).order_by("pk")[:2])
    values = form_values(client, other)  # signed for another resource
    response = client.post(reverse("bulk:edit-resource"), {**values, "owners": "x", "resource": resource.pk})
    assert "belongs to another resource" in response.content.decode()
    response = client.post(reverse("bulk:edit-resource"), {**values, "shown": "forged", "resource": other.pk})
    assert "damaged on the way back" in response.content.decode()
    assert not ChangeSet.objects.exists()


def test_history_ignores_owners_only_reordered_and_keeps_what_a_bulk_edit_saw_changed_in_secoda(synced, steward):
    resource = unowned_table()
    a, b = SecodaUser.objects.present().order_by("pk").values_list("pk", flat=True)[:2]
    synced.workspace.set_owners(resource.pk, [a, b])
    run_sync(client=fast_client(synced), kind=SyncRun.INCREMENTAL)
    assert ResourceChange.objects.filter(resource_id=resource.pk).count() == 1
    synced.workspace.set_owners(resource.pk, [b, a])  # the same owners, another order
    run_sync(client=fast_client(synced), kind=SyncRun.INCREMENTAL)
    assert ResourceChange.objects.filter(resource_id=resource.pk).count() == 1

    # A bulk edit previewed, then Secoda changes the description: the edit skips it, and the history
    # records what it saw change in Secoda (not the change set's own write).
    change_set = services.build_change_set(steward, Resource.objects.filter(pk=resource.pk),
                                           {"description": {"text": "ours", "only_blank": False}}, "describe")
    synced.workspace.set_description(resource.pk, "theirs")
    change_set.status = ChangeSet.PENDING
    change_set.save()
    services.run_change_set(change_set.pk, client=fast_client(synced))
    assert change_set.items.get().status == "skipped"
    seen = ResourceChange.objects.filter(resource_id=resource.pk).first()
    assert seen.sync_run_id is None and seen.changes["description"][1] == "theirs"
