"""A full sweep as slices that any worker can run.

A sweep starts as one slice, "all resources". A slice lists its filter; when
the listing's count says it holds more than one listing may return (the
10,000 cap, or the 999999 timed-out count) it splits instead: the workspace
by integration, an integration by the entity types it holds (the mirror's and
those on its first page; the others in one listing, split the same way), an
entity type by parents packed into `in` filters (URLs under 8 KiB, children
filling whole pages), a pack in halves. A long listing
keeps its first pages and hands the later ones to range slices, so the pages
of one listing are fetched by several workers at once.

A split by parents needs the parents in the mirror, so it waits: when no
slice is left to run, waiting splits whose parent types are done pack the
parents the mirror now holds (and, when counts say children are still
missing, go round again with parents found since). Every slice is claimed with
a conditional UPDATE, so two workers never run the same slice.

Presence changes happen only in `catalog_sync.sync.finish_sweep`, after every
slice succeeded.
"""
import logging
import math
import queue
import threading
import resource as os_resource
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from catalog_sync import locks, normalize
from catalog_sync.client import (
    TIMED_OUT_COUNT, PermanentError, RetryableError, SecodaError, listing_cap, next_page_number,
)
from catalog_sync.filters import PARENT_TYPES, STABLE_SORT, TYPE_ORDER, among, both, exact, negate, pack_parents
from catalog_sync.mirror import ResourceWriter
from catalog_sync.models import Integration, Resource, SyncRun, SyncSlice

logger = logging.getLogger(__name__)


def real_count(page):
    """The count when it is a real number (not missing, not the timed-out marker)."""
    if page.count is None or page.count == TIMED_OUT_COUNT:
        return None
    return page.count


def prefetched(pages, depth=16):
    """Fetch the next pages in a thread while the caller stores the current one.

    Only the thread makes HTTP calls while this runs; the caller keeps the
    database work, so each side waits on its own I/O.
    """
    buffer = queue.Queue(depth)
    stop = threading.Event()

    def fetch():
        try:
            for page in pages:
                buffer.put(("page", page))
                if stop.is_set():
                    return
            buffer.put(("end", None))
        except BaseException as exc:  # handed to the caller, raised there
            buffer.put(("error", exc))

    worker = threading.Thread(target=fetch, name="sweep-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = buffer.get()
            if kind == "page":
                yield value
            elif kind == "end":
                return
            else:
                raise value
    finally:
        stop.set()
        while worker.is_alive():
            try:
                buffer.get_nowait()
            except queue.Empty:
                worker.join(0.05)


def candidate_parents(integration_id, entity_type):
    """(id, children_count or None) of resources that may hold `entity_type` children, smallest id first.

    A children_count of 0 is not trusted (Secoda answers 0 unless a listing asks it to count, and some
    never count): every resource of a parent type is a candidate, its count None when it says 0, and a
    pack that turns out over the cap is halved until it fits."""
    query = Resource.objects.filter(integration_id=integration_id, removed_at__isnull=True)
    parent_types = PARENT_TYPES.get(entity_type)
    if parent_types:
        query = query.filter(entity_type__in=parent_types)
    else:
        # Types without a known parent type (jobs, say) may nest in their own type: Airflow tasks sit
        # under DAGs, both "job". Those that say they have children; all of them when none says so.
        counted = query.filter(children_count__gt=0)
        query = counted if counted.exists() else query.filter(entity_type=entity_type)
    return [(pid, count or None) for pid, count in query.order_by("id").values_list("id", "children_count")]

ACTIVE = (SyncSlice.PENDING, SyncSlice.RUNNING)


# -- what a sweep learned about this Secoda ----------------------------------------------------

def sweep_sort(run):
    return None if run.options.get("sort_refused") else STABLE_SORT


def learn(run, **facts):
    """Remember something about this Secoda for every slice of the run (e.g. it refuses our sort)."""
    with transaction.atomic():
        fresh = SyncRun.objects.select_for_update().get(pk=run.pk)
        fresh.options = {**fresh.options, **facts}
        fresh.save(update_fields=["options"])
    run.options = fresh.options


# -- claiming ---------------------------------------------------------------------------------

def claim(slice_id, holder):
    """Take a slice for this worker: pending (and due), or running under a lease that expired. None if taken."""
    now = timezone.now()
    if not SyncSlice.objects.filter(pk=slice_id, run__status=SyncRun.RUNNING).exists():
        return None
    # Only the slice's own columns in the WHERE (see locks.take): the run's status was checked above.
    due = Q(not_before__isnull=True) | Q(not_before__lte=now)
    free = (Q(status=SyncSlice.PENDING) & due) | (Q(status=SyncSlice.RUNNING) & SyncSlice.lapsed(now))
    taken = locks.take(SyncSlice.objects.filter(pk=slice_id), free, holder, settings.WORK_LEASE_SECONDS, now=now,
                       status=SyncSlice.RUNNING, attempts=F("attempts") + 1, started_at=now, error="",
                       not_before=None)
    return SyncSlice.objects.select_related("run").get(pk=slice_id) if taken else None


def lease_renewals(piece):
    """What a worker running this slice keeps alive: the slice's lease and the sync lock."""
    def renew():
        # The sync lock is kept alive only by a worker that still holds its slice.
        if locks.prolong(SyncSlice.objects.filter(pk=piece.pk, status=SyncSlice.RUNNING), piece.holder,
                         settings.WORK_LEASE_SECONDS):
            locks.extend(locks.SYNC_LOCK, piece.run.holder, settings.SYNC_LOCK_SECONDS)

    return (renew,)


def runnable_ids(run):
    """Pending slices that are due (a retry waits for its `not_before`)."""
    now = timezone.now()
    return list(run.slices.filter(status=SyncSlice.PENDING)
                .filter(Q(not_before__isnull=True) | Q(not_before__lte=now)).values_list("id", flat=True))


def waiting_retry(run):
    """Seconds until the next pending slice is due (0 when one already is), or None when none is pending. A
    retry that fell due since `runnable_ids` looked is still waiting, not lost: the clock moves between them."""
    soonest = run.slices.filter(status=SyncSlice.PENDING).order_by(F("not_before").asc(nulls_first=True)).values_list(
        "pk", "not_before").first()
    if soonest is None:
        return None
    return 0.0 if soonest[1] is None else max(0.0, (soonest[1] - timezone.now()).total_seconds())


# -- running one slice ------------------------------------------------------------------------

class SliceRunner:
    """Runs one claimed slice: lists its pages into the mirror, or splits it."""

    def __init__(self, piece, client, writer=None):
        self.piece = piece
        self.run = piece.run
        self.client = client
        self.requests_before = self.requests_at_start = client.requests_made
        self.writer = writer or ResourceWriter(self.run.pk, settings.SYNC_BATCH_SIZE)
        self.writer.on_flush = self.flushed
        self.fetched_at_start = self.writer.fetched
        self._counted = {name: getattr(self.writer, name) for name in ("fetched", "created", "updated", "unchanged")}
        self.ended = False
        self.unsorted = False  # this slice's first page came unsorted: its later pages must match

    # progress, shared with every other slice of the run through F() increments
    def flushed(self, writer):
        delta = {name: getattr(writer, name) - seen for name, seen in self._counted.items()}
        self._counted = {name: getattr(writer, name) for name in self._counted}
        requests = self.client.requests_made - self.requests_before
        self.requests_before = self.client.requests_made
        locks.renew(locks.SYNC_LOCK, self.run.holder, settings.SYNC_LOCK_SECONDS)
        now = timezone.now()
        SyncRun.objects.filter(pk=self.run.pk).update(
            requests=F("requests") + requests, progress_at=now,
            **{name: F(name) + value for name, value in delta.items()})
        kept = SyncSlice.objects.filter(pk=self.piece.pk, holder=self.piece.holder, status=SyncSlice.RUNNING).update(
            listed=writer.fetched - self.fetched_at_start, requests=F("requests") + requests,
            lease_until=now + timedelta(seconds=settings.WORK_LEASE_SECONDS))
        if not kept and not self.ended:  # a shared writer may flush this slice's rows after it ended
            raise locks.LeaseLost("This slice was taken over by another worker (or its sweep ended).")

    def execute(self):
        piece = self.piece
        try:
            if piece.first_page == 1:
                self.probe_and_list()
            else:
                self.list_pages(piece.first_page, piece.last_page)
            # Its rows are written before it can end done: a sweep that stops or is taken over later (a
            # shared writer's rows would otherwise wait for the next slice) never lists a done slice again.
            self.writer.flush()
        except PermanentError as exc:
            self.writer.flush()
            if not (piece.remainder and exc.status == 400):
                raise
            # This Secoda will not run the "everything else" listing; counts decide at the end.
            piece.refused = True
            piece.note = f"Secoda refused this listing ({exc})."
            if piece.split == "types" and self.list_known_types_instead():
                piece.note = f"Secoda refused this listing ({exc}); the known entity types were listed one by one."
        finally:
            self.flushed(self.writer)
        piece.listed = self.listed

    @property
    def listed(self):
        return self.writer.fetched - self.fetched_at_start

    @property
    def requests_made(self):
        return self.client.requests_made - self.requests_at_start

    def first(self, filter_obj):
        """The listing's first page, sorted when this Secoda sorts. A 400 is pinned on what caused it: the
        same filter unsorted failing means the filter (an operator) was refused, not the sort."""
        sort = sweep_sort(self.run)
        try:
            return self.client.resource_page(filter_obj, sort)
        except PermanentError as exc:
            if exc.status != 400 or sort is None:
                raise
        page = self.client.resource_page(filter_obj, None)  # raises if the filter is what was refused
        try:
            self.client.resource_page(None, sort)
        except PermanentError as exc:
            if exc.status != 400:
                raise
            learn(self.run, sort_refused=True)  # the sort alone is refused: every later slice lists unsorted
        else:
            self.piece.note = "Secoda refused this listing sorted; listed in its default order."
        self.unsorted = True
        return page

    def probe_and_list(self):
        piece = self.piece
        first = self.first(piece.filter)
        piece.expected = real_count(first)
        if "page_length" not in self.run.options and next_page_number(first, len(first.results)) is not None:
            learn(self.run, page_length=len(first.results))  # packs of parents fill whole pages of this length
        if first.capped:
            self.split(first)
            return
        self.writer.add(first.results)
        last = None
        total = total_pages(first)
        per_slice = pages_per_slice(first)
        # Handing pages on only pays when someone else can take them; alone, one unbroken listing keeps
        # the prefetcher busy.
        shared = self.run.mode == SyncRun.FAN_OUT or self.run.concurrency > 1
        if shared and total and total > per_slice and not self.unsorted:  # ranges of an unsorted listing may overlap
            last = per_slice
            # A re-run (its worker died) keeps the ranges it handed on the first time: their last one runs
            # to the end of the listing, so none overlap and none is created twice.
            if not piece.spawned.filter(first_page__gt=1).exists():
                self.hand_on_pages(per_slice + 1, total, per_slice)
        listed = len(first.results) + self.list_pages(2, last, after=first)
        if last is None and first.count is None and listed >= listing_cap():
            # No count, and the listing ran into the cap: it was capped after all.
            self.split(first)

    def hand_on_pages(self, start, total, per_slice):
        piece = self.piece
        ranges = []
        for first_page in range(start, total + 1, per_slice):
            last_page = first_page + per_slice - 1
            ranges.append((first_page, last_page if last_page < total else None))  # the last runs to the end
        spawn(piece, [
            SyncSlice(run=self.run, spawned_by=piece, label=piece.label, filter=piece.filter,
                      integration_id=piece.integration_id, entity_type=piece.entity_type,
                      first_page=a, last_page=b) for a, b in ranges
        ])

    def list_pages(self, start, last, after=None):
        """Pages `start`..`last` (None: to the end). `after` is the page before `start`, when known."""
        sort = None if self.unsorted else sweep_sort(self.run)
        listed = 0

        def pages():
            page = after
            if page is None:
                page = self.client.resource_page(self.piece.filter, sort, start)
                if not page.results:
                    return
                yield page
            while last is None or page.number < last:
                following = next_page_number(page, page.number * max(1, len(page.results)))
                if following is None:
                    return
                page = self.client.resource_page(self.piece.filter, sort, following)
                if not page.results:
                    return
                yield page

        for page in prefetched(pages()):
            self.writer.add(page.results)
            listed += len(page.results)
        return listed

    # -- splitting ------------------------------------------------------------------------------

    def child(self, label, filter_obj, split="", **fields):
        return SyncSlice(run=self.run, spawned_by=self.piece, label=label[:300], filter=filter_obj, split=split,
                         integration_id=fields.get("integration_id", self.piece.integration_id),
                         entity_type=fields.get("entity_type", self.piece.entity_type),
                         remainder=fields.get("remainder", False))

    def split(self, first):
        piece = self.piece
        kind = piece.split
        if kind == "integrations":
            children = self.by_integration()
        elif kind == "types":
            children = self.by_type(first)
            if not children:  # a remainder whose first page shows no type left to list on its own
                piece.incomplete = True
                piece.note = f"Over {listing_cap():,} resources and no narrower way to list them."
                return
        elif kind == "parents":
            piece.status = SyncSlice.WAITING  # packs its parents once they are mirrored
            return
        elif kind == "pack" and len(pack_ids(piece.filter)) > 1:
            ids = pack_ids(piece.filter)
            middle = len(ids) // 2
            scope = without_pack(piece.filter)
            children = [self.child(pack_label(piece.label.split(" (parents")[0].split(" under ")[0], half),
                                   both(scope, among("parent_id", half)), "pack")
                        for half in (ids[:middle], ids[middle:])]
        else:
            piece.incomplete = True
            piece.note = f"Over {listing_cap():,} resources and no narrower way to list them."
            return
        spawn(piece, children)

    def by_integration(self):
        scope = self.piece.filter
        integrations = list(Integration.objects.present().order_by("name", "id").values_list("id", "name"))
        children = [self.child(name or integration_id, both(scope, among("integration_id", [integration_id])),
                               "types", integration_id=integration_id) for integration_id, name in integrations]
        outside = negate(among("integration_id", [i for i, _ in integrations])) if integrations else None
        children.append(self.child("Resources outside every integration", both(scope, outside), remainder=True))
        return children

    def types_for(self, integration_id, first=None):
        """The entity types to list one by one: those the mirror holds in this integration and those on the
        capped listing's first page, in TYPE_ORDER; every type of TYPE_ORDER when neither names one. The
        "other types" remainder lists the rest (an integration holds a few of the sixteen: listing each of
        them costs a request a type, most of them empty)."""
        known = set(Resource.objects.filter(integration_id=integration_id).order_by()
                    .values_list("entity_type", flat=True).distinct())
        if first is not None:
            known |= {normalize.resource_type(record) for record in first.results}
        known.discard("")
        if not known:
            return list(TYPE_ORDER)
        return [t for t in TYPE_ORDER if t in known] + sorted(t for t in known if t not in TYPE_ORDER)

    def by_type(self, first=None):
        """A slice for each entity type, then one for the others (split again by the types its first page
        shows, when it is capped too). Empty when no type is left to list on its own."""
        piece = self.piece
        _, excluded = type_exclusions(piece.filter)
        types = [t for t in self.types_for(piece.integration_id, first) if t not in excluded]
        if not types:
            return []
        field = self.type_field(types)
        children = [self.child(f"{piece.label} / {entity_type}", both(piece.filter, exact(field, entity_type)),
                               "parents", entity_type=entity_type) for entity_type in types]
        label = piece.label if piece.remainder else f"{piece.label} / other types"
        children.append(self.child(label, both(piece.filter, negate(among(field, types))), "types",
                                   remainder=True))
        return children

    def list_known_types_instead(self):
        """A type remainder Secoda refused (no `not`): list each type of TYPE_ORDER it was to cover on its
        own instead. Returns whether any was left to list."""
        piece = self.piece
        scope, excluded = type_exclusions(piece.filter)
        types = [t for t in TYPE_ORDER if t not in excluded]
        if not types:
            return False
        field = self.run.options.get("type_field", "entity_type")
        base = piece.label.removesuffix(" / other types")
        spawn(piece, [self.child(f"{base} / {entity_type}", both(scope, exact(field, entity_type)), "parents",
                                 entity_type=entity_type) for entity_type in types])
        return True

    def type_field(self, types):
        """The docs filter the type as "entity_type" in one place and "type" in another: ask which works."""
        learned = self.run.options.get("type_field")
        if learned:
            return learned
        expected = self.piece.expected
        for field in ("entity_type", "type"):
            try:
                page = self.client.resource_page(both(self.piece.filter, among(field, types)), sweep_sort(self.run))
            except PermanentError as exc:
                if exc.status != 400:
                    raise
                continue
            if page.results or expected == 0:
                learn(self.run, type_field=field)
                return field
        return "entity_type"


def type_exclusions(filter_obj):
    """(`filter_obj` without its "not one of these entity types" operands, the types those leave out)."""
    if not filter_obj:
        return filter_obj, set()
    operator = filter_obj.get("operator")
    if operator == "not" and len(filter_obj.get("operands", [])) == 1:
        inner = filter_obj["operands"][0]
        if inner.get("operator") == "in" and inner.get("field") in ("entity_type", "type"):
            return None, set(inner.get("value") or ())
    if operator == "and":
        kept, excluded = [], set()
        for operand in filter_obj.get("operands", []):
            rest, left_out = type_exclusions(operand)
            excluded |= left_out
            if rest is not None:
                kept.append(rest)
        return (both(*kept) if kept else None), excluded
    return filter_obj, set()


def pack_label(base, parent_ids):
    """A pack's label: its one parent by name, or how many parents it holds."""
    if len(parent_ids) == 1:
        title = Resource.objects.filter(id=parent_ids[0]).values_list("title_full", flat=True).first()
        return f"{base} under {title or parent_ids[0]}"
    return f"{base} (parents {parent_ids[0][:8]}…, {len(parent_ids)} of them)"


def spawn(piece, children):
    """Create the slices this one hands on, once: a slice re-run after its worker died finds the ones it
    created before (maybe never queued, maybe already running) and adds only what is missing."""
    with transaction.atomic():
        # Locking the parent's row serialises two workers that both think they run it; only its holder spawns.
        if not SyncSlice.objects.select_for_update().filter(pk=piece.pk, holder=piece.holder,
                                                            status=SyncSlice.RUNNING).exists():
            raise locks.LeaseLost("This slice was taken over by another worker (or its sweep ended).")
        existing = {slice_key(kid) for kid in piece.spawned.all()}
        fresh = [kid for kid in children if slice_key(kid) not in existing]
        if fresh:
            SyncSlice.objects.bulk_create(fresh)
    return fresh


def slice_key(piece):
    import json

    return (json.dumps(piece.filter, sort_keys=True), piece.first_page, piece.last_page, piece.remainder,
            piece.split)


def pages_per_slice(first):
    """Pages a slice lists before handing the rest on: SYNC_SLICE_PAGES pages of 50 resources, in pages of
    the length this listing answers with (one page of 1,000 when Secoda honours page_size)."""
    length = max(1, len(first.results))
    return max(1, settings.SYNC_SLICE_PAGES * 50 // length)


def total_pages(page):
    if page.total_pages:
        return page.total_pages
    if page.count is not None and page.results:
        return math.ceil(min(page.count, listing_cap()) / len(page.results))
    return None


def pack_ids(filter_obj):
    for operand in (filter_obj or {}).get("operands", [filter_obj] if filter_obj else []):
        if operand.get("operator") == "in" and operand.get("field") == "parent_id":
            return list(operand["value"])
    return []


def without_pack(filter_obj):
    if not filter_obj or filter_obj.get("operator") != "and":
        return None
    rest = [op for op in filter_obj["operands"] if not (op.get("operator") == "in" and op.get("field") == "parent_id")]
    return both(*rest) if rest else None


def run_slice(slice_id, client, holder, writer=None):
    """Claim and run one slice. Returns the slice, or None when another worker has it.

    A failure leaves the slice failed, or pending with a `not_before` for a retry, and raises nothing:
    callers look at `slice.status` and `slice.unreachable` (Secoda could not be reached).
    """
    piece = claim(slice_id, holder)
    if piece is None:
        return None
    runner = SliceRunner(piece, client, writer)
    piece.unreachable = False
    try:
        with locks.Heartbeat(*lease_renewals(piece)):
            try:
                runner.execute()
            finally:
                runner.ended = True
    except Exception as exc:  # recorded on the slice; other slices go on
        locks.recover_connection()
        piece.listed = runner.listed
        piece.error = client.redact(describe(exc))
        piece.unreachable = isinstance(exc, RetryableError) and exc.unreachable
        retry = is_transient(exc) and piece.attempts <= settings.SYNC_SLICE_RETRIES
        if retry:
            piece.status = SyncSlice.PENDING
            piece.not_before = timezone.now() + timedelta(seconds=retry_delay(client, piece.attempts))
        else:
            piece.status = SyncSlice.FAILED
        logger.warning("Slice %s of sync #%s %s: %s", piece, piece.run_id,
                       "will be retried" if retry else "failed", piece.error)
    else:
        if piece.status == SyncSlice.RUNNING:
            piece.status = SyncSlice.DONE
    piece.requests = runner.requests_made
    piece.finished_at = timezone.now()
    piece.peak_rss_mb = os_resource.getrusage(os_resource.RUSAGE_SELF).ru_maxrss / 1024
    if not locks.with_reconnect(lambda: save_outcome(piece)):
        logger.warning("Slice %s of sync #%s was taken over while it ran; its outcome was not recorded.",
                       piece, piece.run_id)
        return None
    return piece


def is_transient(exc):
    """Worth trying the same slice again: Secoda or the database was unreachable for a while."""
    if isinstance(exc, locks.LeaseLost):
        return False
    return isinstance(exc, (RetryableError, ConnectionError, OSError, *locks.DATABASE_GONE))


def retry_delay(client, attempts):
    return min(client.max_backoff, client.backoff * 2 ** attempts)


def save_outcome(piece):
    """Record how the slice ended, only if this worker still holds it (True when it did)."""
    fields = ("status", "listed", "error", "requests", "finished_at", "peak_rss_mb", "not_before", "expected",
              "refused", "incomplete", "note")
    with transaction.atomic():
        kept = SyncSlice.objects.filter(pk=piece.pk, holder=piece.holder, status=SyncSlice.RUNNING).update(
            lease_until=None, dispatched_at=None, **{name: getattr(piece, name) for name in fields})
        if kept:
            now = timezone.now()
            if piece.unreachable:
                SyncRun.objects.filter(pk=piece.run_id).update(unreachable_streak=F("unreachable_streak") + 1,
                                                               progress_at=now)
            elif piece.status != SyncSlice.FAILED:
                SyncRun.objects.filter(pk=piece.run_id).update(unreachable_streak=0, progress_at=now)
    return bool(kept)


def describe(exc):
    if isinstance(exc, SecodaError):
        return str(exc)
    if isinstance(exc, locks.LeaseLost):
        return f"{exc} This sync stopped so two syncs never write at once."
    if isinstance(exc, locks.DATABASE_GONE):
        detail = str(exc).strip() or type(exc).__name__
        if locks.connection_lost(exc):
            return f"Lost the connection to the database ({detail})."
        return f"The database could not do it ({detail})."  # a full disk, a timeout, a deadlock
    return f"{type(exc).__name__}: {exc}"


# -- moving the sweep on ----------------------------------------------------------------------

def advance(run_id):
    """Called whenever a slice ends. Returns (new slice ids to run, whether the sweep is over).

    Only one caller sees the sweep over (the run row is locked while deciding).
    """
    with transaction.atomic():
        run = SyncRun.objects.select_for_update().get(pk=run_id)
        if run.status != SyncRun.RUNNING or run.stage != SyncRun.SWEEPING:
            return [], False
        if run.slices.filter(status__in=ACTIVE).exists():
            return [], False
        new = expand_waiting(run)
        if new:
            return new, False
        run.stage = SyncRun.FINISHING
        run.save(update_fields=["stage"])
        return [], True


def expand_waiting(run):
    """Pack the parents of waiting splits whose parent types are settled. Returns new slice ids.

    When the ready splits all turn out done (their packs listed everything) without new slices, the splits
    they held back (columns behind their tables) are looked at again at once: otherwise nothing would be
    left to run and the sweep would end with them still waiting."""
    while True:
        waiting = list(run.slices.filter(status=SyncSlice.WAITING))
        if not waiting:
            return []
        ready = [spec for spec in waiting if not blocked_by(spec, waiting)] or waiting[:1]
        slices = {s.pk: s for s in run.slices.all()}
        children = children_map(slices.values())
        created = []
        for spec in ready:
            created.extend(expand(spec, slices, children))
        if created or all(spec.status == SyncSlice.WAITING for spec in ready):
            return created


def blocked_by(spec, waiting):
    parent_types = PARENT_TYPES.get(spec.entity_type)
    for other in waiting:
        if other.pk == spec.pk or other.integration_id != spec.integration_id:
            continue
        if parent_types is None or other.entity_type in parent_types:
            return True
    return False


def expand(spec, slices, children):
    own = children.get(spec.pk, [])
    listed = subtree_listed(spec.pk, slices, children)
    if own and (spec.expected is None or listed >= spec.expected):
        spec.status = SyncSlice.DONE
        spec.save(update_fields=["status"])
        return []
    packed = {pid for kid in own if kid.split in ("pack", "") and not kid.remainder for pid in pack_ids(kid.filter)}
    new = []
    if not own:
        new.append(SyncSlice(run=spec.run, spawned_by=spec, label=f"{spec.label} without a parent",
                             filter=both(spec.filter, negate({"operator": "is_set", "field": "parent_id",
                                                              "value": True})),
                             integration_id=spec.integration_id, entity_type=spec.entity_type, remainder=True))
    parents = [(pid, count) for pid, count in candidate_parents(spec.integration_id, spec.entity_type)
               if pid not in packed]
    if own and not parents:
        spec.status = SyncSlice.DONE  # the shortfall, if any, is reported when the sweep ends
        spec.save(update_fields=["status"])
        return []
    page_length = spec.run.options.get("page_length") or settings.SECODA_PAGE_SIZE
    for pack in pack_parents(parents, spec.run.options.get("base_url", ""), spec.filter, page_length=page_length):
        ids = [pid for pid, _ in pack]
        new.append(SyncSlice(run=spec.run, spawned_by=spec, split="pack" if len(ids) > 1 else "",
                             label=pack_label(spec.label, ids),
                             filter=both(spec.filter, among("parent_id", ids)),
                             integration_id=spec.integration_id, entity_type=spec.entity_type))
    return [s.pk for s in SyncSlice.objects.bulk_create(new)]


def children_map(slices):
    children = {}
    for piece in slices:
        if piece.spawned_by_id:
            children.setdefault(piece.spawned_by_id, []).append(piece)
    return children


def subtree(root_id, slices, children):
    """The slices below this one."""
    found, stack = [], [kid.pk for kid in children.get(root_id, [])]
    while stack:
        node = stack.pop()
        found.append(slices[node])
        stack.extend(kid.pk for kid in children.get(node, []))
    return found


def subtree_listed(root_id, slices, children):
    total, stack = 0, [root_id]
    while stack:
        node = stack.pop()
        total += slices[node].listed
        stack.extend(kid.pk for kid in children.get(node, []))
    return total


def missing_pieces(run):
    """What this run could not list, piece by piece: dicts with the piece's label, integration, entity type,
    how many resources (None: unknown), why, and what a later run needs to try it again."""
    slices = {s.pk: s for s in run.slices.all()}
    children = children_map(slices.values())
    pieces = []

    def missing(piece, count, why, retry=None, refused=False):
        retry = retry or piece
        pieces.append({"label": piece.label, "integration_id": piece.integration_id,
                       "entity_type": piece.entity_type, "count": count, "why": why,
                       "filter": retry.filter, "split": retry.split, "refused": refused})

    for piece in slices.values():
        if piece.incomplete:
            count = None if piece.expected is None else max(0, piece.expected - piece.listed)
            missing(piece, count, piece.note)
        if piece.status == SyncSlice.WAITING:
            missing(piece, piece.expected, "its parents were never listed")
        if piece.split == "parents" and piece.status == SyncSlice.DONE and children.get(piece.pk) \
                and piece.expected is not None:
            listed = subtree_listed(piece.pk, slices, children)
            # Packs that could not be listed are named on their own; what is left sits elsewhere.
            named = sum(max(0, (kid.expected or 0) - kid.listed)
                        for kid in subtree(piece.pk, slices, children) if kid.incomplete)
            if listed + named < piece.expected:
                missing(piece, piece.expected - listed - named, "they sit under parents the mirror does not know")
        if piece.refused and piece.spawned_by_id:
            parent = slices[piece.spawned_by_id]
            listed = subtree_listed(parent.pk, slices, children)
            if parent.expected is None or listed < parent.expected:
                missing(parent, None if parent.expected is None else parent.expected - listed,
                        f"they could not be listed ({piece.note})", retry=parent, refused=True)
    unique = {}
    for piece in pieces:  # a type can show a gap under unknown parents and a refused remainder: once
        key = (piece["label"], piece["split"])
        if key not in unique or (unique[key]["count"] or 0) < (piece["count"] or 0):
            unique[key] = piece
    return list(unique.values())


def describe_missing(piece):
    how_many = "an unknown number of" if piece["count"] is None else f"{piece['count']:,}"
    return f"{piece['label']}: {how_many} resources missing, {piece['why'].rstrip('.')}."


def problems(run):
    """Why this sweep cannot vouch for removals (empty when it can)."""
    found = []
    failed = list(run.slices.filter(status=SyncSlice.FAILED))
    if failed:
        found.append(f"{len(failed)} of {run.slices.count()} slices failed: " + "; ".join(
            f"{s} ({s.error or 'no detail'})" for s in failed[:5]) + (" …" if len(failed) > 5 else ""))
    return found + [describe_missing(piece) for piece in missing_pieces(run)]


def peak_memory_by_worker(run):
    """{host:pid: peak RSS in MB} over the slices each worker process ran."""
    peaks = {}
    for holder, rss in run.slices.exclude(peak_rss_mb=None).values_list("holder", "peak_rss_mb"):
        process = holder.rsplit(":", 1)[0]
        peaks[process] = max(peaks.get(process, 0), rss)
    return peaks
