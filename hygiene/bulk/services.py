"""Bulk edits as change sets: build (preview), submit, run in batches, retry, undo.

Views, Celery tasks and commands all call these functions.
"""
import logging
import math
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from catalog_sync import locks, normalize
from catalog_sync.client import BULK_UPDATE_LIMIT, PermanentError, RetryableError, SecodaClient
from catalog_sync.mirror import ResourceWriter, replace_refs
from catalog_sync.models import Resource
from hygiene.bulk.edits import EDITABLE_FIELDS, LIST_FIELDS, current_values, matches, planned_change
from hygiene.bulk.models import ChangeItem, ChangeSet
from hygiene.dashboard.models import Snapshot
from hygiene.domain.snapshots import take_snapshot

APPLY_TASK = "hygiene.bulk.tasks.apply_change_set"
logger = logging.getLogger(__name__)


class NothingToChange(Exception):
    """The edit would not change any selected resource."""


def estimate(changed, writes_per_minute=None):
    """API calls and a rough duration for `changed` resources (100 a call, 30 writes a minute)."""
    writes_per_minute = writes_per_minute or settings.SECODA_WRITES_PER_MINUTE
    calls = math.ceil(changed / BULK_UPDATE_LIMIT)
    minutes_waiting = max(0, calls - writes_per_minute) / writes_per_minute
    seconds = minutes_waiting * 60 + calls * 2  # ~2 s a batch: re-read, then write
    return {"calls": calls, "seconds": round(seconds), "per_minute": writes_per_minute}


@transaction.atomic
def build_change_set(user, resources, edit, summary, filter_query="", filter_label="", rule="", undo_of=None,
                     planned=None):
    """A draft change set with one item per resource the edit changes (the preview).

    `planned` ({resource_id: (before, after)}) replaces computing the change
    from `edit` (undo uses it). Raises NothingToChange when nothing would change.
    """
    items, selected = [], 0
    for resource in resources.only("id", "title_full", "title", *EDITABLE_FIELDS).iterator(chunk_size=2000):
        selected += 1
        if planned is not None:
            if resource.pk not in planned:
                continue
            before, after = planned[resource.pk]
        else:
            before, after = planned_change(current_values(resource), edit)
        if after:
            items.append(ChangeItem(resource_id=resource.pk, title=resource.title_full or resource.title,
                                    before=before, after=after))
    if not items:
        raise NothingToChange("None of the selected resources would change: they already have these values.")
    change_set = ChangeSet.objects.create(created_by=user, summary=summary[:500], edit=edit,
                                          filter_query=filter_query, filter_label=filter_label[:300], rule=rule,
                                          undo_of=undo_of, selected=selected)
    for item in items:
        item.change_set = change_set
    ChangeItem.objects.bulk_create(items, batch_size=1000)
    return change_set


def progress(change_set):
    counts = dict(change_set.items.order_by().values_list("status").annotate(n=Count("pk")))
    total = sum(counts.values())
    done = total - counts.get(ChangeItem.PENDING, 0)
    return {
        "status": change_set.status, "status_label": change_set.get_status_display(), "total": total,
        "done": done, "percent": round(100 * done / total) if total else 100,
        **{status: counts.get(status, 0) for status, _ in ChangeItem.STATUSES},
        "api_calls": change_set.api_calls, "finished": change_set.is_finished, "error": change_set.error,
    }


def submit(change_set, user):
    """Mark a previewed change set to run and hand it to a worker. Returns False if it was not a draft."""
    taken = ChangeSet.objects.filter(pk=change_set.pk, status=ChangeSet.DRAFT).update(
        status=ChangeSet.PENDING, applied_by=user, applied_at=timezone.now())
    if taken:
        enqueue(change_set.pk)
    return bool(taken)


def enqueue(change_set_id):
    """Queue the run once the transaction commits. If the broker is down, the change set stays
    pending and the periodic `resume_change_sets` task picks it up later."""
    transaction.on_commit(lambda: queue_now(change_set_id))


def queue_now(change_set_id):
    """Hand the change set to the broker now; if it is down, the change set stays pending, unqueued."""
    try:
        # By name from the Celery app: the tasks module calls this one, so this one does not import it.
        current_app.tasks[APPLY_TASK].delay(change_set_id)
    except Exception as exc:  # broker down: nothing is lost, the change set is stored as pending
        logger.warning("Could not queue change set #%s (%s); it stays pending.", change_set_id, exc)
        return
    ChangeSet.objects.filter(pk=change_set_id).update(queued_at=timezone.now())


def claim(change_set_id, worker):
    """Take the change set for this worker: only one worker at a time (pending and due, or running under a
    lease that lapsed because its worker died). A resumed change set keeps the time it first started."""
    now = timezone.now()
    due = Q(retry_at__isnull=True) | Q(retry_at__lte=now)
    free = (Q(status=ChangeSet.PENDING) & due) | (Q(status=ChangeSet.RUNNING) & ChangeSet.lapsed(now))
    return locks.take(ChangeSet.objects.filter(pk=change_set_id), free, worker, settings.WORK_LEASE_SECONDS,
                      now=now, status=ChangeSet.RUNNING, retry_at=None,
                      started_at=Coalesce(F("started_at"), Value(now))) == 1


def run_change_set(change_set_id, client=None, worker=None):
    """Apply a pending change set in batches of at most 100. Returns the change set, or None if another
    worker has it.

    When Secoda or the database cannot be reached, the change set goes back to pending with a `retry_at`
    (the resume task picks it up then): an outage never strands a change set with items waiting. Every
    API call is counted before it is sent, so a killed worker's last calls are counted too.
    """
    worker = worker or locks.new_holder()
    if not claim(change_set_id, worker):
        return None
    client = client or SecodaClient.from_settings()
    change_set = ChangeSet.objects.get(pk=change_set_id)
    client.before_request = call_counter(change_set_id)

    def renew():
        return locks.prolong(ChangeSet.objects.filter(pk=change_set_id, status=ChangeSet.RUNNING), worker,
                             settings.WORK_LEASE_SECONDS)

    def next_batch():
        """Apply the next batch. False when none is left; None when another worker took over."""
        batch = list(change_set.items.filter(status=ChangeItem.PENDING)[:BULK_UPDATE_LIMIT])
        if not batch:
            return False
        if not renew():  # our lease lapsed and another worker took it: it writes, not us
            return None
        apply_batch(client, batch)
        return True

    try:
        with locks.Heartbeat(renew):
            # A batch cut off by a dropped connection runs again after a reconnect: it is re-read from
            # Secoda first, so what was written is not written again.
            while (more := locks.with_reconnect(next_batch)):
                pass
        if more is None:
            logger.warning("Change set #%s was taken over by another worker; stopping.", change_set.pk)
            return None
    except (RetryableError, *locks.DATABASE_GONE) as exc:
        locks.recover_connection()
        delay = min(600, 30 * 2 ** change_set.retries)
        message = client.redact(str(exc))[:1000]
        logger.warning("Change set #%s waits %ss to retry: %s", change_set.pk, delay, message)
        locks.with_reconnect(lambda: ChangeSet.objects.filter(pk=change_set.pk, holder=worker).update(
            status=ChangeSet.PENDING, lease_until=None, retry_at=timezone.now() + timedelta(seconds=delay),
            retries=F("retries") + 1, queued_at=None,
            error=f"Waiting to retry at {timezone.localtime(timezone.now() + timedelta(seconds=delay)):%H:%M:%S}: "
                  f"{message}"))
        change_set.refresh_from_db()
        return change_set
    except Exception as exc:
        logger.exception("Change set #%s failed", change_set.pk)
        locks.recover_connection()
        error = client.redact(str(exc))[:2000]
        locks.with_reconnect(lambda: ChangeSet.objects.filter(pk=change_set.pk, holder=worker).update(
            status=ChangeSet.FAILED, error=error, finished_at=timezone.now(), lease_until=None))
        raise
    finally:
        client.before_request = None
    # Counts, scores and issue history first, under the lease: once the change set reads as finished, every
    # page already counts what it fixed.
    try:
        with locks.Heartbeat(renew):
            refresh_counts(change_set.pk)
    except Exception:
        locks.recover_connection()
        logger.exception("Counts after change set #%s could not be refreshed; the next sync refreshes them.",
                         change_set.pk)
    failed = change_set.items.filter(status=ChangeItem.FAILED).exists()
    ChangeSet.objects.filter(pk=change_set.pk, holder=worker).update(
        status=ChangeSet.PARTIAL if failed else ChangeSet.COMPLETED, finished_at=timezone.now(),
        lease_until=None, error="", retries=0)
    change_set.refresh_from_db()
    return change_set


def call_counter(change_set_id):
    """A function that counts one API call on the change set, committed at once. One plain UPDATE, its SQL
    built here once: a change set may make a thousand calls (one GET a resource where Secoda refuses filters
    on ids), and the ORM would compile the same statement each time."""
    quote = connection.ops.quote_name
    calls = quote(ChangeSet._meta.get_field("api_calls").column)
    sql = (f"UPDATE {quote(ChangeSet._meta.db_table)} SET {calls} = {calls} + 1 "
           f"WHERE {quote(ChangeSet._meta.pk.column)} = %s")

    def count():
        with connection.cursor() as cursor:
            cursor.execute(sql, [change_set_id])

    return count


def apply_batch(client, batch):
    """Re-read the batch from Secoda, skip what changed since the preview, write the rest, and
    update the mirror for what Secoda confirmed."""
    now = timezone.now()
    fresh = client.fetch_resources([item.resource_id for item in batch])
    to_send, done = [], []
    for item in batch:
        record = fresh.get(item.resource_id)
        if record is None:
            item.status, item.message = ChangeItem.FAILED, "This resource no longer exists in Secoda."
            done.append(item)
            continue
        values = current_values(normalize.resource_row(record))
        if matches(values, item.after):
            # Already applied (e.g. a worker stopped after writing): nothing to send, nothing overwritten.
            item.status, item.message = ChangeItem.APPLIED, "Already had the new value in Secoda."
            done.append(item)
        elif not matches(values, item.before):
            item.status = ChangeItem.SKIPPED
            item.message = "Changed in Secoda since the preview; left as it is. Preview again to include it."
            done.append(item)
        else:
            to_send.append(item)
    read_back = {}
    if to_send:
        # Counted before the write leaves: a worker killed while it waits for Secoda's answer is still counted.
        ChangeItem.objects.filter(pk__in=[item.pk for item in to_send]).update(attempts=F("attempts") + 1)
        refused = None
        try:
            named = set(client.bulk_update([{"id": item.resource_id, "data": item.after} for item in to_send]))
        except PermanentError as exc:
            named, refused = set(), exc
        # What the answer does not name is read back: a write that landed is never called failed (nor sent
        # again by a retry), and one that did not is never called applied.
        unconfirmed = [item for item in to_send if item.resource_id not in named]
        if unconfirmed:
            read_back = client.fetch_resources([item.resource_id for item in unconfirmed])
        for item in to_send:
            record = read_back.get(item.resource_id)
            if item.resource_id in named:
                item.status, item.message = ChangeItem.APPLIED, ""
            elif record is not None and matches(current_values(normalize.resource_row(record)), item.after):
                item.status, item.message = ChangeItem.APPLIED, "Confirmed by reading it back from Secoda."
            else:
                item.status = ChangeItem.FAILED
                item.message = (f"Secoda refused the change: {refused}" if refused is not None else
                                "Secoda did not apply this change (read back after the write).")
    sent = {item.pk for item in to_send}  # by pk: a model's == costs more than a set lookup
    for item in batch:
        item.done_at = now
    # Everything read from Secoda goes into the mirror at once: what was read before the write, then what
    # was read back after it, then the confirmed new values of what the answer named.
    # What differs from the mirror in the first read was changed in Secoda by someone (the history keeps
    # it); what was read back after our write, or already held our values, is this change set's own doing.
    ours = set(read_back) | {item.resource_id for item in batch
                             if item.status == ChangeItem.APPLIED and item.pk not in sent}
    writer = ResourceWriter(None, keep_seen=True, ours=ours)
    writer.add(list(fresh.values()))
    writer.add(list(read_back.values()))  # the later read of a resource wins
    # Items share a handful of outcomes (status and message): one UPDATE an outcome, not a CASE a row. Those
    # not sent count their attempt here (the sent ones were counted before the write).
    outcomes = {}
    for item in batch:
        outcomes.setdefault((item.status, item.message, item.pk not in sent), []).append(item.pk)
    with transaction.atomic():
        for (status, message, not_sent), pks in outcomes.items():
            ChangeItem.objects.filter(pk__in=pks).update(
                status=status, message=message, done_at=now, **({"attempts": F("attempts") + 1} if not_sent else {}))
        writer.flush()
        update_mirror([item for item in batch
                       if item.status == ChangeItem.APPLIED and item.resource_id not in read_back
                       and item.pk in sent])


def update_mirror(items):
    """Write confirmed values into the mirror (only ids Secoda confirmed)."""
    if not items:
        return
    written = sorted({field for item in items for field in item.after})
    read = dict.fromkeys(["owners", "owners_groups", "description", "definition", *LIST_FIELDS, *written])
    stored = {row["id"]: row for row in Resource.objects.filter(pk__in=[item.resource_id for item in items])
              .values("id", *read)}
    now = timezone.now()  # Secoda stamped the write too
    fields = [Resource._meta.get_field(name)
              for name in sorted({*written, "is_owned", "is_documented", "changed_at", "updated_at"})]
    rows, changed_rows = [], {}
    for item in items:
        row = stored.get(item.resource_id)
        if row is None:
            continue
        row.update(item.after)
        row["is_owned"] = normalize.is_owned(row["owners"], row["owners_groups"])
        row["is_documented"] = normalize.is_documented(row["description"], row["definition"])
        row["changed_at"] = row["updated_at"] = now
        rows.append([field.get_db_prep_save(row[field.name], connection) for field in fields] + [row["id"]])
        changed_rows[row["id"]] = {field: row[field] for field in LIST_FIELDS}
    if not rows:
        return
    # One prepared UPDATE a row, sent together: the ORM's bulk_update builds a CASE of every row for every
    # field, which cost more CPU than the rest of the batch.
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {quote(Resource._meta.db_table)} SET "
            + ", ".join(f"{quote(field.column)} = %s" for field in fields)
            + f" WHERE {quote(Resource._meta.pk.column)} = %s", rows)
    if any(field in LIST_FIELDS for field in written):
        replace_refs(changed_rows, list(changed_rows))


def refresh_counts(change_set_id=None):
    """Counts, scores and the issue history after a change set (its fixes close their issues)."""
    take_snapshot(Snapshot.REFRESH, change_set_id=change_set_id)


def retry_failed(change_set, user):
    """Put failed items back in the queue and run the change set again, with any items a stopped run left
    waiting. Returns how many items will run."""
    if change_set.status not in (ChangeSet.PARTIAL, ChangeSet.FAILED):
        return 0
    with transaction.atomic():
        # Only one retry wins (a double click): the change set must still be finished.
        locked = ChangeSet.objects.select_for_update().filter(
            pk=change_set.pk, status__in=(ChangeSet.PARTIAL, ChangeSet.FAILED)).first()
        if locked is None:
            return 0
        change_set.items.filter(status=ChangeItem.FAILED).update(status=ChangeItem.PENDING, message="")
        count = change_set.items.filter(status=ChangeItem.PENDING).count()
        if count:
            ChangeSet.objects.filter(pk=change_set.pk).update(status=ChangeSet.PENDING, error="", finished_at=None,
                                                              applied_by=user, retry_at=None, retries=0)
            enqueue(change_set.pk)
    return count


class AlreadyUndone(Exception):
    def __init__(self, undo):
        super().__init__(f"Change set #{undo.undo_of_id} has an undo already: #{undo.pk}.")
        self.undo = undo


def build_undo(change_set, user):
    """A draft change set that puts back the values the applied items had before. One per change set:
    raises AlreadyUndone (naming it) when one exists that was not discarded."""
    with transaction.atomic():
        ChangeSet.objects.select_for_update().filter(pk=change_set.pk).first()  # two clicks queue up here
        existing = change_set.undone_by.exclude(status=ChangeSet.DISCARDED).first()
        if existing is not None:
            raise AlreadyUndone(existing)
        applied = change_set.items.filter(status=ChangeItem.APPLIED)
        planned = {item.resource_id: (item.after, item.before) for item in applied}
        try:
            with transaction.atomic():
                return build_change_set(
                    user, Resource.objects.filter(pk__in=list(planned)), edit={"undo_of": change_set.pk},
                    summary=f"Undo #{change_set.pk}: {change_set.summary}", filter_query=change_set.filter_query,
                    filter_label=change_set.filter_label, rule=change_set.rule, undo_of=change_set,
                    planned=planned)
        except IntegrityError:  # the database's own guard, should a second one slip past the lock
            raise AlreadyUndone(change_set.undone_by.exclude(status=ChangeSet.DISCARDED).first()) from None


def resumable():
    """Change sets a worker should pick up now: pending ones that are due and were never queued (or were
    queued a lease ago and not taken: the message was lost), and running ones whose worker died."""
    now = timezone.now()
    due = Q(retry_at__isnull=True) | Q(retry_at__lte=now)
    unqueued = Q(queued_at__isnull=True) | Q(queued_at__lt=now - timedelta(seconds=settings.WORK_LEASE_SECONDS))
    return list(ChangeSet.objects.filter(
        (Q(status=ChangeSet.PENDING) & due & unqueued) | (Q(status=ChangeSet.RUNNING) & ChangeSet.lapsed(now))
    ).values_list("pk", flat=True))
