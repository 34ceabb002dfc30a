"""The sync service: mirror a whole Secoda workspace into the database.

Called by the Celery task, the `sync_catalog` command and the admin alike.
Presence changes (marking things removed) happen only at the very end, after
every listing succeeded, so a sync that fails halfway removes nothing.
"""
import json
import logging
import random
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Q, Sum
from django.utils import timezone

from catalog_sync import locks, normalize, reconcile, slices
from catalog_sync.client import PermanentError, listing_cap, SecodaClient, SecodaError
from catalog_sync.mirror import ResourceWriter, refresh_planner_statistics, upsert_simple
from catalog_sync.models import (
    DbtTestStatus, Integration, Resource, SecodaGroup, SecodaUser, SyncRun, SyncSlice, Tag, Team, is_dbt_type,
)
from catalog_sync.signals import sync_succeeded

logger = logging.getLogger(__name__)

LOCK_NAME = locks.SYNC_LOCK
CONFIRM_EACH_UP_TO = 100  # missing resources checked one by one before being marked removed
CONFIRM_SAMPLE = 20


class SyncAlreadyRunning(Exception):
    def __init__(self, run, lease):
        since = timezone.localtime(lease.acquired_at).strftime("%Y-%m-%d %H:%M:%S %Z") if lease else "a moment ago"
        super().__init__(f"Another sync is running (started {since}); this one was not started.")
        self.run = run


class Progress:
    """Writes progress to the SyncRun at most every few seconds, and tells a listener."""

    def __init__(self, run, holder, listener=None, every=2.0):
        self.run = run
        self.holder = holder
        self.listener = listener
        self.every = every
        self._last = 0.0

    def update(self, stage, force=False, **fields):
        for name, value in fields.items():
            setattr(self.run, name, value)
        now = time.monotonic()
        if force or now - self._last >= self.every:
            self._last = now
            locks.renew(LOCK_NAME, self.holder, settings.SYNC_LOCK_SECONDS)
            SyncRun.objects.filter(pk=self.run.pk).update(progress_at=timezone.now(), **{
                name: getattr(self.run, name)
                for name in ("fetched", "created", "updated", "unchanged", "requests", "slices_done")
            })
        if self.listener:
            self.listener(self.run, stage)


def fan_out_available():
    """Slices as separate Celery tasks need a database many processes can write at once, and a broker
    every worker shares; SQLite and the folder broker of a first run get the in-process sweep."""
    return bool(settings.SYNC_FAN_OUT and settings.REDIS_URL and connection.vendor == "postgresql")


def start_run(trigger, kind, client, mode=SyncRun.IN_PROCESS, concurrency=1):
    """Take the sync lock and record the run; raises SyncAlreadyRunning."""
    holder = locks.new_holder()
    if not locks.acquire(LOCK_NAME, holder, settings.SYNC_LOCK_SECONDS):
        lease = locks.current(LOCK_NAME)
        run = SyncRun.objects.create(
            trigger=trigger, kind=kind, status=SyncRun.REFUSED, finished_at=timezone.now(), holder=holder,
            error="Another sync was already running.",
        )
        raise SyncAlreadyRunning(run, lease)
    return SyncRun.objects.create(trigger=trigger, kind=kind, holder=holder, mode=mode, concurrency=concurrency,
                                  options={"base_url": client.base_url})


def run_sync(trigger="manual", client=None, listener=None, kind=SyncRun.FULL, concurrency=1, fan_out=None):
    """Run one sync: an incremental one, or a full sweep with `concurrency` slices at once in this process.
    With `fan_out` (a function that queues slice ids), a sweep's slices are handed to workers instead.

    Returns the SyncRun (succeeded, failed, or fanned out and running); raises SyncAlreadyRunning.
    """
    client = client or SecodaClient.from_settings()
    run = start_run(trigger, kind, client, concurrency=concurrency)
    return drive(run, client, FanOut(fan_out) if fan_out is not None else InProcess(concurrency), listener)


def resume_in_process(run, client=None, concurrency=1, listener=None):
    """Run a retried sweep's slices here and finish it."""
    return drive(run, client or SecodaClient.from_settings(), InProcess(concurrency), listener, begin_first=False)


class InProcess:
    """Runs a sweep's slices in this process (one by one, or `concurrency` threads); the sweep is over
    when it returns."""

    def __init__(self, concurrency=1):
        self.concurrency = concurrency

    def sweep(self, run, client, listener=None):
        locks.with_reconnect(lambda: sweep_in_process(run, client, self.concurrency, listener))
        return True


class FanOut:
    """Hands a sweep's slices to Celery workers through `dispatch`: the worker that ends the last slice
    finishes the sweep (`tasks.sync_slice`, then `finish_sweep`)."""

    def __init__(self, dispatch):
        self.dispatch = dispatch

    def sweep(self, run, client, listener=None):
        SyncRun.objects.filter(pk=run.pk).update(mode=SyncRun.FAN_OUT, progress_at=timezone.now())
        run.mode = SyncRun.FAN_OUT
        self.dispatch(slices.runnable_ids(run))
        return False


def drive(run, client, executor, listener=None, begin_first=True):
    """begin → sweep (with the executor: here, or on workers) → finish, or fail: the one path every sync
    takes, whoever runs its slices."""
    try:
        with holding_lock(run):
            sweeping = locks.with_reconnect(lambda: begin(run, client, listener)) if begin_first else True
            if sweeping and not executor.sweep(run, client, listener):
                return run  # handed on: the worker that ends the last slice finishes the sweep
            locks.with_reconnect(lambda: finish(run, client, listener))
    except Exception as exc:  # record every failure; the mirror keeps what it had
        fail(run, client, exc, resume_when_reachable=isinstance(exc, SecodaUnreachable))
    return run


class SweepStalled(RuntimeError):
    expected = True  # a plain message, no traceback


class SecodaUnreachable(Exception):
    """Slice after slice failed because Secoda could not be reached: the sweep stops early."""


def outage(run, piece):
    """A SecodaUnreachable when this slice's failure makes SYNC_OUTAGE_SLICES unreachable ones in a row."""
    if piece is None or not getattr(piece, "unreachable", False):
        return None
    streak = SyncRun.objects.filter(pk=run.pk).values_list("unreachable_streak", flat=True).first() or 0
    if streak < settings.SYNC_OUTAGE_SLICES:
        return None
    return SecodaUnreachable(
        f"Secoda could not be reached: {streak} slices in a row failed ({piece.error}). The sweep stopped "
        "early and resumes by itself once Secoda answers again; nothing was marked removed.")


def holding_lock(run):
    """Keep the sync lock alive from a heartbeat while this process runs the sync: if the process dies,
    the lock expires within SYNC_LOCK_SECONDS and the watcher fails the run."""
    return locks.Heartbeat(lambda: locks.extend(LOCK_NAME, run.holder, settings.SYNC_LOCK_SECONDS))


def fail(run, client, exc, **fields):
    """Record the run as failed and free the lock. Survives a dropped database connection (it reconnects);
    if the database stays away, the run is left for the watcher, which fails it once the lock expires."""
    logger.warning("Sync #%s failed: %s", run.pk, client.redact(describe(exc)),
                   exc_info=not isinstance(exc, (SecodaError, locks.LeaseLost, SecodaUnreachable, *locks.DATABASE_GONE))
                   and not getattr(exc, "expected", False))
    locks.recover_connection()

    def record():
        with transaction.atomic():
            SyncRun.objects.filter(pk=run.pk, status=SyncRun.RUNNING).update(
                status=SyncRun.FAILED, stage=SyncRun.DONE, error=client.redact(describe(exc)),
                finished_at=timezone.now(), lease_until=None, **fields)
            # Their workers see the run failed and stop; a retry puts them back in the queue.
            run.slices.filter(status__in=slices.ACTIVE).update(
                status=SyncSlice.FAILED, lease_until=None, error="Stopped: the sweep ended before this slice ran.")
            # In the same commit: nobody sees the run failed while its lock still refuses incremental syncs.
            locks.release(LOCK_NAME, run.holder)
        run.refresh_from_db()

    try:
        locks.with_reconnect(record)
    except locks.DATABASE_GONE as gone:
        logger.error("Sync #%s: could not record its failure (%s); the watcher will once the lock expires.",
                     run.pk, gone)
        run.status, run.error = SyncRun.FAILED, client.redact(describe(exc))


describe = slices.describe


def begin(run, client, listener=None):
    """Refresh the small listings, then sync incrementally or plan a full sweep.

    Returns True when a full sweep's slices are waiting to run.
    """
    progress = Progress(run, run.holder, listener)
    requests_before = client.requests_made
    progress.update("integrations", force=True)
    integrations = [normalize.integration_row(r) for r in client.integrations() if normalize.clean_id(r.get("id"))]
    upsert_simple(Integration, integrations, run.pk)
    people = {
        SecodaUser: [normalize.user_row(r) for r in client.users() if normalize.clean_id(r.get("id"))],
        SecodaGroup: [normalize.group_row(r) for r in client.groups() if normalize.clean_id(r.get("id"))],
        Team: [normalize.team_row(r) for r in client.teams() if normalize.clean_id(r.get("id"))],
        Tag: [normalize.tag_row(r) for r in client.tags() if normalize.clean_id(r.get("id"))],
    }
    for model, rows in people.items():
        upsert_simple(model, rows, run.pk)
    progress.update("people", force=True, requests=client.requests_made - requests_before)
    if run.kind == SyncRun.INCREMENTAL:
        reason = incremental(run, client, progress, requests_before)
        if reason is None:
            return retry_missing(run)
        logger.info("Sync #%s: %s; running a full sweep instead.", run.pk, reason)
        run.kind = SyncRun.FULL
        run.fallback_reason = reason
        run.save(update_fields=["kind", "fallback_reason"])
    run.requests = client.requests_made - requests_before
    run.stage = SyncRun.SWEEPING
    run.save(update_fields=["requests", "stage"])
    SyncSlice.objects.create(run=run, label="All resources", split="integrations")
    return True


def retry_missing(run):
    """After an incremental listing: try again, as slices, only the pieces the last sync could not list.
    True when there are some (they run like a sweep's slices, and may split further)."""
    pieces, seen = [], set()
    for piece in still_missing(run):
        key = (json.dumps(piece["filter"], sort_keys=True), piece["split"])
        if key not in seen:
            seen.add(key)
            pieces.append({**piece, "attempts": piece.get("attempts", 0) + 1})
    # A listing Secoda refused outright, or a piece tried RETRY_MISSING times, waits for the nightly sweep
    # (it stays named as missing meanwhile).
    retry = [p for p in pieces if not p.get("refused") and p["attempts"] <= RETRY_MISSING]
    waiting = [p for p in pieces if p not in retry]
    run.options = {**run.options, "retrying": retry, "missing_waiting": waiting}
    if not retry:
        run.save(update_fields=["options"])
        return False
    run.stage = SyncRun.SWEEPING
    run.save(update_fields=["options", "stage"])
    SyncSlice.objects.bulk_create([
        SyncSlice(run=run, label=piece["label"][:300], filter=piece["filter"], split=piece["split"] or "",
                  integration_id=piece["integration_id"] or "", entity_type=piece["entity_type"] or "")
        for piece in retry])
    return True


RETRY_MISSING = 3  # incremental syncs that try a missing piece again before leaving it to the nightly sweep


class SliceLoop:
    """Runs a sweep's slices one after another in this process, through one writer for every slice (see
    SliceRunner)."""

    running = ()

    def __init__(self, run, client, holder, on_done):
        self.client, self.holder, self.on_done = client, holder, on_done
        self.writer = ResourceWriter(run.pk, settings.SYNC_BATCH_SIZE)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def start(self, slice_id):
        self.on_done(slices.run_slice(slice_id, self.client, self.holder, self.writer))

    def wait(self):
        pass

    def flush(self):
        self.writer.flush()  # what comes next may pack parents listed so far


class SliceThreads:
    """Runs a sweep's slices `concurrency` at a time, each thread with its own client and connection."""

    def __init__(self, client, holder, on_done, concurrency):
        self.client, self.holder, self.on_done = client, holder, on_done
        self.pool = ThreadPoolExecutor(concurrency, thread_name_prefix="sweep")
        self.local = threading.local()
        self.running = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.pool.shutdown(wait=True)
        return False

    def work(self, slice_id):
        try:
            if not hasattr(self.local, "client"):
                self.local.client = self.client.clone()
            return slices.run_slice(slice_id, self.local.client, self.holder)
        finally:
            connection.close()

    def start(self, slice_id):
        if slice_id not in self.running.values():
            self.running[self.pool.submit(self.work, slice_id)] = slice_id

    def wait(self):
        if not self.running:
            return
        done, _ = wait(self.running, return_when=FIRST_COMPLETED)
        for future in done:
            self.running.pop(future)
            self.on_done(future.result())

    def flush(self):
        pass  # each slice flushes its own writer


def sweep_in_process(run, client, concurrency, listener=None):
    """Run the sweep's slices here: one loop, whether they run one by one or on threads."""
    holder = f"{run.holder}:sweep"  # the same on a re-entry after a dropped connection
    # Slices this sweep was running when its connection dropped are nobody else's: run them again.
    run.slices.filter(status=SyncSlice.RUNNING, holder=holder).update(status=SyncSlice.PENDING, lease_until=None)

    def done(piece):
        if piece is None:  # in-process, nobody else runs this sweep's slices: a lost claim means a stall
            raise SweepStalled("The sweep stalled: a slice could not be claimed (is the run still running?).")
        stop = outage(run, piece)
        if stop is not None:
            raise stop
        if listener:
            run.refresh_from_db(fields=["fetched", "created", "updated", "unchanged", "requests"])
            listener(run, "resources")

    def sweep_over():
        """Nothing left to run: move the sweep on (new slices, or its end). True when it is over."""
        new, over = slices.advance(run.pk)
        if over or new or slices.runnable_ids(run):
            return over
        delay = slices.waiting_retry(run)
        if delay is None:
            raise SweepStalled("The sweep stalled: slices are held by a worker that is not this one.")
        time.sleep(delay)  # a slice waits to be retried
        return False

    executor = (SliceThreads(client, holder, done, concurrency) if concurrency > 1
                else SliceLoop(run, client, holder, done))
    with executor:
        while True:
            for slice_id in slices.runnable_ids(run):
                executor.start(slice_id)
            executor.wait()
            if executor.running or slices.runnable_ids(run):
                continue
            executor.flush()
            if sweep_over():
                return


def incremental(run, client, progress, requests_before):
    """List what changed since the last successful sync, newest first. Returns None, or why a full
    sweep is needed instead."""
    previous = (SyncRun.objects.filter(status__in=[SyncRun.SUCCEEDED, SyncRun.INCOMPLETE], high_water_mark__isnull=False)
                .exclude(pk=run.pk).order_by("-started_at").first())
    if previous is None:
        return "no earlier successful sync has recorded how far it got"
    since = previous.high_water_mark - timedelta(seconds=settings.SYNC_OVERLAP_SECONDS)
    run.options = {**run.options, "since": since.isoformat()}

    def flushed(writer):
        progress.update("changes", fetched=writer.fetched, created=writer.created, updated=writer.updated,
                        unchanged=writer.unchanged, requests=client.requests_made - requests_before)

    writer = ResourceWriter(run.pk, settings.SYNC_BATCH_SIZE, on_flush=flushed)
    newest, previous_stamp, seen = None, None, 0
    try:
        first = client.resource_page(None, NEWEST_FIRST)
    except PermanentError as exc:
        if exc.status != 400:
            raise
        return f"Secoda refused sorting by updated_at ({exc})"
    run.options = {**run.options, "page_length": client.page_length(first),
                   "workspace_count": slices.real_count(first)}
    reached = False
    # No read-ahead here: the page that crosses the mark ends the listing, and a page fetched ahead is wasted.
    for page in client.iter_resource_pages(None, NEWEST_FIRST, first=first):
        changed = []
        for record in page.results:
            stamp = normalize.when(record.get("updated_at"))
            if stamp is None:
                return "a resource came without an updated_at, so changes cannot be told apart"
            if previous_stamp is not None and stamp > previous_stamp:
                return "Secoda's answer was not sorted by updated_at"
            previous_stamp = stamp
            newest = stamp if newest is None else max(newest, stamp)
            if stamp >= since:
                changed.append(record)
            else:
                reached = True
        writer.add(changed)
        seen += len(page.results)
        if reached:
            break
        if seen >= listing_cap():
            writer.flush()
            return (f"more than {listing_cap():,} resources changed since {timezone.localtime(since):%Y-%m-%d %H:%M}, "
                    "more than one listing returns")
    writer.flush()
    run.fetched, run.created, run.updated, run.unchanged = (
        writer.fetched, writer.created, writer.updated, writer.unchanged)
    run.requests = client.requests_made - requests_before
    run.high_water_mark = max(previous.high_water_mark, newest) if newest else previous.high_water_mark
    run.save()
    return None


STATISTICS_AFTER_CHANGES = 5_000
NEWEST_FIRST = {"field": "updated_at", "order": "desc", "tie_breaker": {"field": "id", "order": "asc"}}


def finish(run, client, listener=None, finisher=None):
    """Everything after the listing, step by step: dbt results, what left the complete listings, the
    sweep's or the retry's outcome, deletions (incremental), then the outcome is recorded, the lock freed
    and the dashboard told.

    The outcome is written only if the run is still running (and, for a fanned-out sweep, this worker
    still holds the finish lease): a run the watcher failed meanwhile stays failed."""
    run.refresh_from_db()
    Progress(run, run.holder, listener).update("finishing", force=True)
    requests_before = client.requests_made
    warnings = ["Secoda refused sorting by created_at; listed in its default order."] \
        if run.options.get("sort_refused") else []
    seconds = {}  # each step's time, kept in the run's options ("finish_seconds") for the admin and benchmarks
    warnings += timed(seconds, "dbt_results", lambda: read_dbt_results(run, client))
    mark_gone_from_listings(run)
    removed, failed, incomplete = 0, False, False
    if run.kind == SyncRun.FULL:
        removed, failed, incomplete = timed(seconds, "removals", lambda: settle_sweep(run, client, warnings))
    elif run.slices.exists() or run.options.get("missing_waiting"):
        incomplete = settle_retry(run)
    if run.kind == SyncRun.INCREMENTAL and settings.SYNC_RECONCILE_DELETIONS:
        removed = timed(seconds, "deletions", lambda: check_deletions(
            run, client, run.options.get("missing") if incomplete else [], warnings))
    changes = run.created + run.updated + removed
    if changes and (run.kind == SyncRun.FULL or changes >= STATISTICS_AFTER_CHANGES):
        # A few hundred changed rows leave the statistics good enough.
        timed(seconds, "planner_statistics", refresh_planner_statistics)
    run.options = {**run.options, "finish_seconds": seconds}
    run.removed = removed
    run.requests += client.requests_made - requests_before
    run.warnings = "\n".join(filter(None, [run.warnings, *warnings]))
    run.status = SyncRun.FAILED if failed else SyncRun.INCOMPLETE if incomplete else SyncRun.SUCCEEDED
    if not record_outcome(run, finisher):
        logger.warning("Sync #%s ended elsewhere while this worker finished it; its outcome stands.", run.pk)
        run.refresh_from_db()
        return run
    locks.release(LOCK_NAME, run.holder)
    announce(run, listener)
    return run


def timed(seconds, step, work):
    """`work()`, its seconds kept in `seconds[step]` even when it fails (a sync's finish, a snapshot's steps)."""
    started = time.monotonic()
    try:
        return work()
    finally:
        seconds[step] = round(time.monotonic() - started, 2)


def read_dbt_results(run, client):
    """Replace the dbt test results of the dbt integrations this run listed; returns warnings. An
    integration whose results cannot be read keeps its previous ones."""
    warnings, dbt_status, dbt_unreadable = [], {}, []
    for row in Integration.objects.filter(last_seen_run=run.pk).values("id", "name", "type"):
        if not is_dbt_type(row["type"]):
            continue
        try:
            dbt_status[row["id"]] = client.dbt_test_status(row["id"])
        except PermanentError as exc:  # e.g. a dbt Cloud integration without test results
            dbt_unreadable.append(row["id"])
            warnings.append(f"dbt test results of {row['name'] or row['id']} could not be read ({exc}); "
                            "the previous ones were kept.")
    with transaction.atomic():
        replace_dbt_status(dbt_status, keep=dbt_unreadable)
    return warnings


def mark_gone_from_listings(run):
    """Integrations, people, groups, teams and tags are listed whole in every kind of run: what this run
    did not see is gone. Rows a newer run saw are not this run's to judge (a sweep resumed after an outage
    ends late)."""
    now = timezone.now()
    for model in (Integration, SecodaUser, SecodaGroup, Team, Tag):
        model.objects.present().filter(last_seen_run__lt=run.pk).update(removed_at=now)


def settle_sweep(run, client, warnings):
    """A full sweep's outcome: removals when it listed everything; otherwise what is missing, named (never
    a silent partial mirror). Returns (removed, failed, incomplete)."""
    removed, incomplete = 0, False
    found = slices.problems(run)
    failed = run.slices.filter(status=SyncSlice.FAILED).exists()
    if not found:
        writer = ResourceWriter(run.pk, settings.SYNC_BATCH_SIZE)
        removed, confirm_notes = mark_removed_resources(run, client, writer)
        warnings.extend(confirm_notes)
        run.removals_checked = True
        run.updated += writer.updated
        run.created += writer.created
    elif not failed:
        incomplete = True
        run.error = ("Not every resource could be listed, so counts may be partial and nothing was marked "
                     "removed: " + "; ".join(found) + " The next sync tries these again.")
        run.options = {**run.options, "missing": with_names(slices.missing_pieces(run))}
    if failed:
        run.error = "Nothing was marked removed. " + "; ".join(found) + \
            " The failed slices can be retried from the admin (Sync runs)."
    count_slices(run)
    # A slice re-run after its worker died counted its rows twice in the running totals; what the slices
    # listed is exact.
    run.fetched = run.slices.aggregate(total=Sum("listed"))["total"] or 0
    run.unchanged = max(0, run.fetched - run.created - run.updated)
    if not failed:  # what was listed is mirrored up to here, even when some pieces could not be
        run.high_water_mark = full_sweep_mark(run)
    return removed, failed, incomplete


def settle_retry(run):
    """An incremental sync after an incomplete one tried again what that one could not list: what is still
    missing, named. Returns whether the run is incomplete."""
    retry_failed = run.slices.filter(status=SyncSlice.FAILED).exists()
    retried, waiting = run.options.get("retrying", []), run.options.get("missing_waiting", [])
    missing = retried if retry_failed else carry_attempts(with_names(slices.missing_pieces(run)), retried)
    count_slices(run)
    if not (missing or waiting):
        return False
    found = slices.problems(run) + [slices.describe_missing(p) for p in waiting]
    if retry_failed:  # the failed slices say why; what they were retrying is still missing
        found += [slices.describe_missing(p) for p in retried]
    run.error = ("Still not every resource could be listed, so counts may be partial: " + "; ".join(found)
                 + (" The next sync tries these again." if missing else "")
                 + (" Pieces Secoda refused, or tried three times, wait for the nightly full sweep."
                    if waiting else ""))
    run.options = {**run.options, "missing": missing + waiting}
    return True


def check_deletions(run, client, known_missing, warnings):
    """An incremental sync notices deletions by comparing counts (catalog_sync.reconcile). What is known to
    be missing from the mirror is no sign of deletions elsewhere being masked. Returns how many it removed."""
    writer = ResourceWriter(run.pk, settings.SYNC_BATCH_SIZE)
    removed, notes = reconcile.deletions(run, client, writer, known_missing)
    warnings.extend(notes)
    run.updated += writer.updated
    run.created += writer.created
    return removed


def record_outcome(run, finisher=None):
    """Write the run's outcome if it is still running (and still this finisher's). Returns whether it did."""
    run.stage = SyncRun.DONE
    run.finished_at = timezone.now()
    run.lease_until = None
    outcome = {field.attname: getattr(run, field.attname) for field in SyncRun._meta.concrete_fields
               if not field.primary_key}
    still_ours = SyncRun.objects.filter(pk=run.pk, status=SyncRun.RUNNING)
    if finisher is not None:
        still_ours = still_ours.filter(finisher=finisher)
    return bool(still_ours.update(**outcome))


def announce(run, listener=None):
    """Tell the rest of the product: the dashboard snapshots what was mirrored."""
    if run.status in (SyncRun.SUCCEEDED, SyncRun.INCOMPLETE):
        for receiver, error in sync_succeeded.send_robust(sender=SyncRun, run=run):
            if error is not None:  # the run's outcome stands either way
                logger.error("After sync #%s, %s failed: %s", run.pk, getattr(receiver, "__name__", receiver), error)
    if listener:
        listener(run, "finished")


def finish_sweep(run_id, client):
    """Finish a fanned-out sweep whose slices are over, unless a live worker is finishing it already
    (a lease on the run, renewed by a heartbeat; the watcher takes over from a finisher that died)."""
    finisher = locks.new_holder()
    # The run's `holder` is the sync lock's; the finish lease is held in `finisher`.
    claimed = locks.take(SyncRun.objects.filter(pk=run_id, status=SyncRun.RUNNING, stage=SyncRun.FINISHING),
                         Q(lease_until__isnull=True) | Q(lease_until__lt=timezone.now()), finisher,
                         settings.WORK_LEASE_SECONDS, holder_field="finisher")
    if not claimed:
        return None
    run = SyncRun.objects.get(pk=run_id)
    run.options = {**run.options, "finish_attempts": run.options.get("finish_attempts", 0) + 1}
    SyncRun.objects.filter(pk=run_id).update(options=run.options)

    def renew_finish():
        SyncRun.objects.filter(pk=run_id, stage=SyncRun.FINISHING, finisher=finisher).update(
            lease_until=timezone.now() + timedelta(seconds=settings.WORK_LEASE_SECONDS))

    try:
        with locks.Heartbeat(renew_finish, lambda: locks.extend(LOCK_NAME, run.holder, settings.SYNC_LOCK_SECONDS)):
            locks.with_reconnect(lambda: finish(run, client, finisher=finisher))
    except Exception as exc:
        fail(run, client, exc)
    return run


def carry_attempts(pieces, retried):
    """Pieces still missing after a retry keep the count of tries of the piece they came from."""
    tries = max((p.get("attempts", 0) for p in retried), default=0)
    return [{**piece, "attempts": tries} for piece in pieces]


def count_slices(run):
    run.slices_total = run.slices.count()
    run.slices_done = run.slices.filter(status=SyncSlice.DONE).count()


def with_names(pieces):
    """Missing pieces with their integration's name, for the overview and the report e-mails."""
    names = dict(Integration.objects.filter(id__in={p["integration_id"] for p in pieces}).values_list("id", "name"))
    return [{**piece, "integration": names.get(piece["integration_id"], "")} for piece in pieces]


def still_missing(run=None):
    """What the mirror still lacks: the pieces the last sync that mirrored anything (before `run`, if given)
    could not list, when it ended incomplete. The overview, the report e-mails and the next sync read it."""
    finished = SyncRun.objects.filter(status__in=[SyncRun.SUCCEEDED, SyncRun.INCOMPLETE])
    if run is not None:
        finished = finished.exclude(pk=run.pk)
    return missing_after(finished.order_by("-started_at").only("status", "options").first())


def missing_after(last):
    """The pieces `last` (the latest sync that mirrored anything) could not list."""
    if last is None or last.status != SyncRun.INCOMPLETE:
        return []
    return last.options.get("missing", [])


def full_sweep_mark(run):
    """The high-water mark a full sweep vouches for: the newest change it saw, but no later than its own
    start (a change made while it listed may have been missed, and its updated_at is later than that)."""
    newest = Resource.objects.filter(last_seen_run=run.pk).aggregate(newest=Max("updated_at"))["newest"]
    if newest is None:
        return run.started_at
    return min(newest, run.started_at)


def retry_failed_slices(run):
    """Put a failed sweep's failed slices back in the queue. Returns their ids; raises SyncAlreadyRunning."""
    run.refresh_from_db()
    if run.status != SyncRun.FAILED or not run.slices.filter(status=SyncSlice.FAILED).exists():
        raise ValueError(f"Sync #{run.pk} has no failed slices to retry.")
    if not locks.acquire(LOCK_NAME, run.holder, settings.SYNC_LOCK_SECONDS):
        raise SyncAlreadyRunning(run, locks.current(LOCK_NAME))
    with transaction.atomic():
        # Only one retry wins (two clicks, or a click and the watcher's resume after an outage).
        if not SyncRun.objects.filter(pk=run.pk, status=SyncRun.FAILED).update(
                status=SyncRun.RUNNING, stage=SyncRun.SWEEPING, error="", finished_at=None,
                progress_at=timezone.now(), unreachable_streak=0, resume_when_reachable=False, lease_until=None):
            raise ValueError(f"Sync #{run.pk} is being retried already.")
        ids = list(run.slices.filter(status=SyncSlice.FAILED).values_list("id", flat=True))
        run.slices.filter(pk__in=ids).update(status=SyncSlice.PENDING, attempts=0, error="", not_before=None,
                                             dispatched_at=None)
    run.refresh_from_db()
    return ids


def replace_dbt_status(status_by_integration, keep=()):
    """Replace each dbt integration's failing/warning lists as one change."""
    for integration_id, status in status_by_integration.items():
        current = set(
            DbtTestStatus.objects.filter(integration_id=integration_id).values_list("resource_id", "status"))
        wanted = {(rid, kind) for kind in (DbtTestStatus.FAILING, DbtTestStatus.WARNING) for rid in status[kind]}
        for resource_id, kind in current - wanted:
            DbtTestStatus.objects.filter(integration_id=integration_id, resource_id=resource_id, status=kind).delete()
        DbtTestStatus.objects.bulk_create(
            [DbtTestStatus(integration_id=integration_id, resource_id=rid, status=kind) for rid, kind in wanted - current],
            ignore_conflicts=True,
        )
    # Integrations that stopped being dbt (or vanished) no longer report anything.
    DbtTestStatus.objects.exclude(integration_id__in=[*status_by_integration, *keep]).delete()


def mark_removed_resources(run, client, writer):
    """Mark resources missing from a complete sweep as removed, after confirming with Secoda."""
    return confirm_removals(Resource.objects.present().filter(last_seen_run__lt=run.pk), client, writer)


def confirm_removals(missing, client, writer):
    """Mark these resources (missing from a listing) removed once Secoda confirms they are gone.

    A listing can skip a row when something is deleted while we page, so each
    missing resource is looked up on its own before it is marked removed; when
    many are missing, a sample decides. Returns (removed, notes).
    """
    missing_ids = list(missing.values_list("id", flat=True)[: CONFIRM_EACH_UP_TO + 1])
    if not missing_ids:
        return 0, []
    notes = []
    if len(missing_ids) <= CONFIRM_EACH_UP_TO:
        to_check, decide_rest = missing_ids, False
    else:
        to_check = random.sample(list(missing.values_list("id", flat=True)), CONFIRM_SAMPLE)
        decide_rest = True
    gone, still_there = [], []
    for resource_id in to_check:
        record = client.get_resource(resource_id)
        if record is None:
            gone.append(resource_id)
        else:
            still_there.append(resource_id)
            writer.add([record])
    writer.flush()
    now = timezone.now()
    if decide_rest and not still_there:
        removed = missing.update(removed_at=now)
    else:
        removed = Resource.objects.filter(id__in=gone).update(removed_at=now)
        if decide_rest:
            notes.append(
                f"{len(still_there)} of {len(to_check)} sampled resources missing from the listing still exist "
                "in Secoda, so only confirmed removals were applied.")
    if still_there:
        notes.append(f"{len(still_there)} resource(s) were missing from the listing but still exist in Secoda; "
                     "they were kept.")
    return removed, notes
