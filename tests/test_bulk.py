"""Bulk edits against the emulator over real HTTP: preview, apply in batches, partial failures,
429 storms, upstream changes, races, permissions, retry and undo."""
import math
from datetime import timedelta

import pytest
from django.utils import timezone
from django.test import TestCase
from django.urls import reverse

from catalog_sync.models import Resource, ResourceRef, SecodaUser, Tag
from hygiene.bulk import services
from hygiene.bulk.models import ChangeItem, ChangeSet
from hygiene.dashboard.models import Snapshot
from tests.concurrency import race
from tests.conftest import fast_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def synced(emulator, emulator_settings, synced_mirror):
    emulator.faults.writes_per_minute = 1000
    return emulator


@pytest.fixture
def as_steward(client, steward):
    client.force_login(steward)
    return client


def writes(server):
    return server.stats()["requests_by_path"].get("/api/v1/resource/all/bulk_update", 0)


def unowned_count():
    return Snapshot.objects.first().totals["unowned"]


def select_all_unowned(client, **extra):
    data = {"select_all": "1", "filter_query": "", "rule": "unowned", "snoozed": "hide", **extra}
    return client.post(reverse("bulk:edit"), data)


def preview(client, selection, **form):
    data = {**selection, "step": "preview", **form}
    return client.post(reverse("bulk:edit"), data, follow=True)


def owner_name():
    return SecodaUser.objects.present().order_by("email").first()


def test_select_all_set_owner_preview_apply_and_undo(synced, as_steward):
    before = unowned_count()
    assert before > 100, "needs more than one page and more than one batch"
    user = owner_name()
    response = select_all_unowned(as_steward)
    assert response.status_code == 200
    assert f"Edit {before:,} resources" in response.content.decode()

    selection = {"select_all": "1", "filter_query": "", "rule": "unowned", "snoozed": "hide"}
    response = preview(as_steward, selection, owners_mode="add", owners=user.email)
    change_set = ChangeSet.objects.get()
    html = response.content.decode()
    assert change_set.status == ChangeSet.DRAFT
    assert f'data-will-change="{before}"' in html
    calls = math.ceil(before / 100)
    assert f"{calls} write" in html
    assert writes(synced) == 0, "a preview writes nothing"

    as_steward.post(reverse("bulk:apply", args=[change_set.pk]))
    change_set.refresh_from_db()
    assert change_set.status == ChangeSet.PENDING
    services.run_change_set(change_set.pk, client=fast_client(synced))
    change_set.refresh_from_db()
    assert change_set.status == ChangeSet.COMPLETED
    assert change_set.items.filter(status=ChangeItem.APPLIED).count() == before
    assert writes(synced) == calls
    assert unowned_count() == 0
    assert ResourceRef.objects.filter(kind="owner", ref_id=user.pk).count() >= before
    sample = change_set.items.first().resource_id
    assert synced.workspace.get(sample)["owners"] == [user.pk]

    as_steward.post(reverse("bulk:undo", args=[change_set.pk]))
    undo = ChangeSet.objects.get(undo_of=change_set)
    assert undo.status == ChangeSet.DRAFT and undo.items.count() == before
    as_steward.post(reverse("bulk:apply", args=[undo.pk]))
    services.run_change_set(undo.pk, client=fast_client(synced))
    assert unowned_count() == before
    assert synced.workspace.get(sample)["owners"] in ([], None, "None")
    page = as_steward.get(reverse("bulk:change-set", args=[change_set.pk])).content.decode()
    assert "Undone by" in page


def test_preview_shows_current_and_new_values_by_name(synced, as_steward):
    tag = Tag.objects.present().order_by("name").first()
    resource = next(r for r in Resource.objects.filter(archived=False) if tag.pk not in r.tags)
    response = preview(as_steward, {"pk": [resource.pk]}, tags_mode="add", tags=tag.name)
    html = response.content.decode()
    assert "Tags:</span> <strong>" in html and tag.name in html
    item = ChangeItem.objects.get()
    assert item.after["tags"] == resource.tags + [tag.pk]


def test_unknown_names_are_refused_without_calling_the_api(synced, as_steward):
    resource = Resource.objects.first()
    response = preview(as_steward, {"pk": [resource.pk]}, owners_mode="add", owners="Nobody McNoname",
                       tags_mode="add", tags="no-such-tag")
    html = response.content.decode()
    assert "No person or group called “Nobody McNoname”" in html
    assert "No tag called “no-such-tag”" in html
    assert not ChangeSet.objects.exists()
    assert writes(synced) == 0


def test_an_edit_that_changes_nothing_is_refused(synced, as_steward):
    resource = Resource.objects.filter(verified=True).first() or Resource.objects.first()
    Resource.objects.filter(pk=resource.pk).update(verified=True)
    response = preview(as_steward, {"pk": [resource.pk]}, verified="true")
    assert "already have these values" in response.content.decode()
    assert not ChangeSet.objects.exists()


def test_an_empty_form_is_refused(synced, as_steward):
    resource = Resource.objects.first()
    response = preview(as_steward, {"pk": [resource.pk]})
    assert "Choose at least one change" in response.content.decode()


def build(steward, resources, edit, summary="test edit"):
    return services.build_change_set(steward, resources, edit, summary)


def submit(change_set, steward):
    change_set.status = ChangeSet.PENDING
    change_set.save()


def test_partial_failure_keeps_the_refused_ones_listed_and_retry_fixes_them(synced, steward):
    user = owner_name()
    resources = Resource.objects.filter(is_owned=False, archived=False)[:30]
    ids = [r.pk for r in resources]
    change_set = build(steward, Resource.objects.filter(pk__in=ids), {"owners": {"mode": "add", "users": [user.pk]}})
    submit(change_set, steward)
    refused = set(ids[:5])
    original = synced.workspace.bulk_update
    synced.workspace.bulk_update = lambda entries: original([e for e in entries if e["id"] not in refused])
    services.run_change_set(change_set.pk, client=fast_client(synced))
    change_set.refresh_from_db()
    assert change_set.status == ChangeSet.PARTIAL
    failed = change_set.items.filter(status=ChangeItem.FAILED)
    assert set(failed.values_list("resource_id", flat=True)) == refused
    assert all("did not apply this change (read back" in item.message for item in failed)
    assert not Resource.objects.filter(pk__in=refused, is_owned=True).exists(), "the mirror only takes confirmed ids"
    assert Resource.objects.filter(pk__in=set(ids) - refused, is_owned=True).count() == 25

    synced.workspace.bulk_update = original
    assert services.retry_failed(change_set, steward) == 5
    services.run_change_set(change_set.pk, client=fast_client(synced))
    change_set.refresh_from_db()
    assert change_set.status == ChangeSet.COMPLETED
    assert Resource.objects.filter(pk__in=ids, is_owned=True).count() == 30


def test_a_429_storm_is_waited_out_and_nothing_is_lost(synced, steward):
    user = owner_name()
    ids = list(Resource.objects.filter(is_owned=False, archived=False).values_list("pk", flat=True)[:250])
    change_set = build(steward, Resource.objects.filter(pk__in=ids), {"owners": {"mode": "add", "users": [user.pk]}})
    submit(change_set, steward)
    synced.faults.seed = 11
    synced.faults.rate_429 = 0.5  # half of the re-reads are throttled
    synced.faults.writes_per_minute = 1  # and writes beyond the first in a minute get 429
    client = fast_client(synced, max_retries=3)
    change_set = services.run_change_set(change_set.pk, client=client)
    assert change_set.status == ChangeSet.PENDING, "throttled work waits for a retry"
    assert "Waiting to retry" in change_set.error
    assert change_set.retry_at > timezone.now(), "the retry waits (no countdown task holds it)"
    assert services.run_change_set(change_set.pk, client=client) is None, "not before its retry time"
    assert change_set.pk not in services.resumable()
    applied = change_set.items.filter(status=ChangeItem.APPLIED).count()
    assert applied < len(ids), "the storm stopped the run part way"
    assert not change_set.items.filter(status=ChangeItem.FAILED).exists(), "throttling is not a failure"

    synced.faults.writes_per_minute = 1000
    ChangeSet.objects.filter(pk=change_set.pk).update(retry_at=timezone.now())  # its time has come
    assert change_set.pk in services.resumable()
    services.run_change_set(change_set.pk, client=fast_client(synced, max_retries=12))
    change_set.refresh_from_db()
    assert change_set.status == ChangeSet.COMPLETED
    assert change_set.items.filter(status=ChangeItem.APPLIED).count() == len(ids) > 150
    assert all(synced.workspace.get(i)["owners"] == [user.pk] for i in ids)


def owners_edit_fixed_upstream_meanwhile(synced, steward, how_many):
    """A submitted edit giving `how_many` unowned resources an owner; the first one then gets another owner
    in Secoda before it runs. Returns (ids, change set, that other owner)."""
    user, other = SecodaUser.objects.present().order_by("email")[:2]
    ids = list(Resource.objects.filter(is_owned=False, archived=False).values_list("pk", flat=True)[:how_many])
    change_set = build(steward, Resource.objects.filter(pk__in=ids), {"owners": {"mode": "add", "users": [user.pk]}})
    submit(change_set, steward)
    synced.workspace.set_owners(ids[0], [other.pk])  # someone fixed it in Secoda meanwhile
    return ids, change_set, other


def test_resources_changed_in_secoda_since_the_preview_are_skipped_not_overwritten(synced, steward):
    ids, change_set, other = owners_edit_fixed_upstream_meanwhile(synced, steward, 10)
    services.run_change_set(change_set.pk, client=fast_client(synced))
    skipped = ChangeItem.objects.get(resource_id=ids[0])
    assert skipped.status == ChangeItem.SKIPPED and "Changed in Secoda" in skipped.message
    assert synced.workspace.get(ids[0])["owners"] == [other.pk]
    assert ChangeItem.objects.filter(status=ChangeItem.APPLIED).count() == 9


def test_viewers_cannot_edit_apply_retry_or_undo(synced, viewer, client, steward):
    client.force_login(viewer)
    resource = Resource.objects.first()
    assert client.post(reverse("bulk:edit"), {"pk": [resource.pk]}).status_code == 403
    change_set = build(steward, Resource.objects.filter(pk=resource.pk), {"verified": not resource.verified})
    for name in ("apply", "discard", "retry", "undo"):
        assert client.post(reverse(f"bulk:{name}", args=[change_set.pk])).status_code == 403
    change_set.refresh_from_db()
    assert change_set.status == ChangeSet.DRAFT
    page = client.get(reverse("bulk:change-set", args=[change_set.pk])).content.decode()
    assert "Apply" not in page
    assert "Edit selected" not in client.get("/issues/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_run_a_change_set_once(synced, steward):
    user = owner_name()
    ids = list(Resource.objects.filter(is_owned=False, archived=False).values_list("pk", flat=True)[:150])
    change_set = build(steward, Resource.objects.filter(pk__in=ids), {"owners": {"mode": "add", "users": [user.pk]}})
    submit(change_set, steward)
    synced.faults.latency_ms = 20
    results = race(*(lambda n=n: services.run_change_set(change_set.pk, client=fast_client(synced), worker=f"w{n}")
                     for n in range(2)))
    assert sorted(r is None for r in results) == [False, True], "exactly one worker ran it"
    assert writes(synced) == 2
    assert ChangeItem.objects.filter(status=ChangeItem.APPLIED).count() == 150


def test_a_change_set_stored_while_the_broker_is_down_runs_when_it_returns(synced, as_steward, monkeypatch):
    from hygiene.bulk import tasks

    resource = Resource.objects.filter(verified=False, archived=False).first()
    change_set = build(None, Resource.objects.filter(pk=resource.pk), {"verified": True})  # its author left

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("Error 111 connecting to redis")

    monkeypatch.setattr(tasks.apply_change_set, "delay", broker_down)
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = as_steward.post(reverse("bulk:apply", args=[change_set.pk]), follow=True)
    assert response.status_code == 200
    change_set.refresh_from_db()
    assert change_set.status == ChangeSet.PENDING, "stored, not lost"
    assert list(services.resumable()) == [change_set.pk]

    ran = []
    monkeypatch.setattr(tasks.apply_change_set, "delay", lambda pk: ran.append(
        services.run_change_set(pk, client=fast_client(synced))))
    tasks.resume_change_sets()
    change_set.refresh_from_db()
    assert change_set.status == ChangeSet.COMPLETED
    assert synced.workspace.get(resource.pk)["verified"] in (True, "True")
    tasks.resume_change_sets()
    assert len(ran) == 1, "a finished change set is never run again"


def test_a_crashed_workers_claim_expires(synced, steward):
    from django.utils import timezone

    resource = Resource.objects.filter(pii=False, archived=False).first()
    change_set = build(steward, Resource.objects.filter(pk=resource.pk), {"pii": True})
    ChangeSet.objects.filter(pk=change_set.pk).update(status=ChangeSet.RUNNING, holder="dead:1",
                                                      lease_until=timezone.now() - timedelta(seconds=1))
    assert services.run_change_set(change_set.pk, client=fast_client(synced)).status == ChangeSet.COMPLETED


def test_a_worker_killed_while_it_writes_is_counted_and_its_resumed_run_writes_nothing_twice(synced, steward):
    from datetime import timedelta

    user = owner_name()
    ids = list(Resource.objects.filter(is_owned=False, archived=False).values_list("pk", flat=True)[:150])
    change_set = build(steward, Resource.objects.filter(pk__in=ids), {"owners": {"mode": "add", "users": [user.pk]}})
    submit(change_set, steward)
    client = fast_client(synced)
    real_write = client.bulk_update

    def write_then_die(entries):
        real_write(entries)
        raise KeyboardInterrupt("SIGKILL while waiting for the answer")

    client.bulk_update = write_then_die
    writes_before, requests_before = synced.stats()["writes"], synced.stats()["requests"]
    with pytest.raises(KeyboardInterrupt):
        services.run_change_set(change_set.pk, client=client)
    change_set.refresh_from_db()
    first_started = change_set.started_at
    assert change_set.status == ChangeSet.RUNNING
    assert change_set.api_calls == synced.stats()["requests"] - requests_before >= 2, "every call it sent counts"
    assert change_set.items.filter(attempts=1).count() == 100, "the batch it sent is counted"
    assert synced.stats()["writes"] == writes_before + 1

    ChangeSet.objects.filter(pk=change_set.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert change_set.pk in services.resumable(), "its lease lapsed: picked up again"
    done = services.run_change_set(change_set.pk, client=fast_client(synced))
    assert done.status == ChangeSet.COMPLETED
    assert done.started_at == first_started, "a resumed change set keeps when it started"
    assert synced.stats()["writes"] == writes_before + 2, "the first batch was not written again"
    assert done.items.filter(message="Already had the new value in Secoda.").count() == 100
    assert done.api_calls == synced.stats()["requests"] - requests_before
    changed = Resource.objects.get(pk=ids[-1])
    assert changed.owners == [user.pk]
    assert timezone.now() - changed.updated_at < timedelta(minutes=1), "the mirror's updated_at follows the write"


def test_a_failed_change_set_with_items_still_waiting_offers_a_retry_that_finishes_them(synced, as_steward,
                                                                                         steward, monkeypatch):
    from hygiene.bulk import tasks

    ids = list(Resource.objects.filter(verified=False, archived=False).values_list("pk", flat=True)[:12])
    change_set = build(steward, Resource.objects.filter(pk__in=ids), {"verified": True})
    ChangeSet.objects.filter(pk=change_set.pk).update(status=ChangeSet.FAILED, error="Stopped by an error.")
    page = as_steward.get(reverse("bulk:change-set", args=[change_set.pk])).content.decode()
    assert "Retry 12 waiting" in page

    ran = []
    monkeypatch.setattr(tasks.apply_change_set, "delay", lambda pk: ran.append(
        services.run_change_set(pk, client=fast_client(synced))))
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = as_steward.post(reverse("bulk:retry", args=[change_set.pk]), follow=True)
    assert "Retrying 12 resources." in response.content.decode()
    change_set.refresh_from_db()
    assert change_set.status == ChangeSet.COMPLETED and len(ran) == 1
    assert all(synced.workspace.get(i)["verified"] in (True, "True") for i in ids)


@pytest.mark.parametrize("answer", ["ids", "empty", "objects", "records", "count", "no_content"])
def test_a_bulk_edit_is_exact_whatever_bulk_update_answers(synced, steward, answer):
    synced.faults.bulk_answer = answer
    user = owner_name()
    ids = list(Resource.objects.filter(is_owned=False, archived=False).values_list("pk", flat=True)[:150])
    change_set = build(steward, Resource.objects.filter(pk__in=ids), {"owners": {"mode": "add", "users": [user.pk]}})
    submit(change_set, steward)
    writes_before = synced.stats()["writes"]
    done = services.run_change_set(change_set.pk, client=fast_client(synced))
    assert done.status == ChangeSet.COMPLETED
    assert done.items.filter(status=ChangeItem.APPLIED).count() == 150
    assert synced.stats()["writes"] - writes_before == 2, "each batch written once"
    assert all(synced.workspace.get(i)["owners"] == [user.pk] for i in ids)
    assert Resource.objects.filter(pk__in=ids, owners=[user.pk], is_owned=True).count() == 150, \
        "the mirror equals Secoda"
    if answer in ("empty", "objects", "count", "no_content"):
        assert done.items.filter(message="Confirmed by reading it back from Secoda.").count() == 150

    # A retry of a finished change set has nothing to send: what landed is never written twice.
    assert services.retry_failed(done, steward) == 0


def test_a_redirected_write_fails_cleanly_and_writes_nothing(synced, steward):
    synced.faults.redirect_writes = True
    ids = list(Resource.objects.filter(pii=False, archived=False).values_list("pk", flat=True)[:5])
    change_set = build(steward, Resource.objects.filter(pk__in=ids), {"pii": True})
    submit(change_set, steward)
    done = services.run_change_set(change_set.pk, client=fast_client(synced))
    assert done.status == ChangeSet.PARTIAL
    failed = done.items.filter(status=ChangeItem.FAILED)
    assert failed.count() == 5 and "redirected" in failed.first().message
    assert not any(synced.workspace.get(i)["pii"] in (True, "True") for i in ids)


def test_what_a_bulk_edit_reads_from_secoda_updates_the_mirror_at_once(synced, steward):
    ids, change_set, other = owners_edit_fixed_upstream_meanwhile(synced, steward, 3)
    synced.workspace.set_description(ids[1], "Documented upstream meanwhile.")
    services.run_change_set(change_set.pk, client=fast_client(synced))
    skipped = Resource.objects.get(pk=ids[0])
    assert skipped.owners == [other.pk] and skipped.is_owned, "the skipped one shows Secoda's owner now"
    assert Resource.objects.get(pk=ids[1]).description == "Documented upstream meanwhile."
