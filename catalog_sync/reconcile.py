"""Deletions within one sync interval.

An incremental sync lists what changed since the last sync, but a deleted resource never shows up as a
change. So after listing, the sync compares Secoda's counts with the mirror's: the whole workspace first
(one request); where the mirror holds more than Secoda, each integration; in a large integration each
entity type; in a large type, packs of parents, halved. A piece of at most a couple of pages is listed
again, and what the mirror holds but the listing did not return is looked up one by one and marked
removed once Secoda says it does not exist.

The mirror's counts are taken after this sync wrote what it listed, so they already include what it
created: a piece where as many resources were created as deleted still shows every deletion. Only the
`and`, `exact` and `in` operators are used, which every Secoda answers.

The counts of one level's pieces are independent, so they are asked ahead, SECODA_COUNT_CONCURRENCY at a
time (catalog_sync.counting). Each answer is still used in turn, so the requests, notes and removals are
those of counting one by one (a concurrency of 1), except that a check ending early (an error, MAX_COUNTS
reached) may have made a few counts that were then in flight for nothing.
"""
import logging
import math
import random
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Count, QuerySet
from django.utils import timezone

from catalog_sync.client import PermanentError, SecodaError, listing_cap
from catalog_sync.counting import CountAhead
from catalog_sync.models import Integration, Resource, SyncRun
from catalog_sync.filters import STABLE_SORT, TYPE_ORDER, among, both, exact, pack_parents

logger = logging.getLogger(__name__)

RELIST_PAGES = 2  # pages of resources in a pack of parents
SPLIT_COST = {"workspace": 2}  # requests a split costs per part: its count, and often a listing of it
LOOKUP_BATCH = 100  # ids looked up in one listing (URLs stay under 8 KiB)
MAX_COUNTS = 400  # count requests one check makes at most
MAX_LOOKUPS = 5_000  # more resources gone than this: a sample of CONFIRM_SAMPLE decides for all
CONFIRM_SAMPLE = 20


@dataclass
class Piece:
    label: str
    filter: dict | None
    mirror: QuerySet  # the piece's present resources in the mirror
    level: str  # "workspace", "integration", "type" or "pack"
    integration_id: str | None = None
    entity_type: str | None = None
    parents: list = field(default_factory=list)
    scope: "Piece | None" = None  # a pack's entity type


class Reconciler:
    def __init__(self, run, client, writer, known_missing=(), counts=None):
        self.run = run
        self.counts = counts or CountAhead(client, 1)
        self.asked = 0  # counts asked ahead and not used yet (they are within MAX_COUNTS)
        self.known_missing = list(known_missing)
        self.client = client
        self.writer = writer
        self.type_field = learned_type_field()
        self.page_length = run.options.get("page_length") or client.page_length(None)
        self.base_url = client.base_url
        self.missing = {}  # id -> (integration, entity type, parent) of what the mirror holds and Secoda not
        self.control = None  # a resource Secoda just listed: proof a lookup by ids is honoured
        self.notes = []
        self.counted = self.relisted = 0

    def visit(self, piece, upstream=None, asked=None):
        """Count the piece (unless its count is known, or `asked`, a Future of it, is given); where the mirror
        holds more than Secoda, find out which ones went."""
        unknown = self.unknown_missing(piece)
        if unknown:
            self.notes.append(f"{piece.label}: deletions cannot be told from counts while an unknown number of "
                              f"its resources could not be listed ({unknown}); the next full sweep settles them.")
            return
        if upstream is None:
            if self.counted >= MAX_COUNTS:
                if asked is not None:
                    asked.cancel()
                self.notes.append(f"{piece.label}: not checked, {MAX_COUNTS} counts were made already; the next "
                                  "sync (or the nightly full sweep) goes on.")
                return
            try:
                upstream = asked.result() if asked is not None else self.client.count(piece.filter)
            except PermanentError as exc:
                if exc.status != 400:
                    raise
                self.notes.append(f"{piece.label}: Secoda would not count it ({exc}); deletions there are found "
                                  "by the next full sweep.")
                return
            self.counted += 1
        if upstream is None:  # the count timed out: splitting blindly could cost thousands of requests
            self.notes.append(f"{piece.label}: Secoda did not say how many resources it holds; deletions there "
                              "are found by the next full sweep.")
            return
        held = piece.mirror.count() - self.already_missing(piece)
        upstream -= self.not_mirrored(piece)  # resources Secoda has that the mirror knows it lacks
        if held <= upstream:
            return  # nothing deleted here (or as many created as the mirror lacks: the next full sweep sees it)
        # Split only where counting the parts (and listing again those that hold fewer) costs fewer requests
        # than listing the piece again. Deletions touch most integrations of a workspace but few packs of
        # parents (a dropped table goes with its columns), so a split by integration is dearer.
        pages = math.ceil(held / self.page_length)
        children = self.children(piece) if pages > 1 else []
        cheaper_whole = pages <= SPLIT_COST.get(piece.level, 1) * len(children) and held < listing_cap()
        if len(children) < 2 or cheaper_whole:
            self.relist(piece, held)
            return
        before = len(self.missing)
        self.visit_each(children)
        found = len(self.missing) - before
        if held - upstream > found:
            self.notes.append(
                f"{piece.label}: Secoda holds {held - upstream:,} fewer resources than the mirror but only "
                f"{found:,} of them could be pinned down; the next full sweep settles the rest.")

    def visit_each(self, pieces):
        """Visit the pieces in order, their counts asked a window ahead on the count threads: the same
        requests and conclusions as one by one, without waiting for each count in turn."""
        if not self.counts.enabled:
            for piece in pieces:
                self.visit(piece)
            return
        ahead, following = {}, 0  # index -> Future of its count; the next index to ask for
        try:
            for index, piece in enumerate(pieces):
                following = max(following, index)
                while (following < len(pieces) and len(ahead) < self.counts.window
                       and self.counted + self.asked < MAX_COUNTS):
                    if not self.unknown_missing(pieces[following]):  # such a piece is not counted
                        ahead[following] = self.counts.ask(pieces[following].filter)
                        self.asked += 1
                    following += 1
                asked = ahead.pop(index, None)
                if asked is not None:
                    self.asked -= 1
                self.visit(piece, asked=asked)
        finally:  # the check ended early: counts not started yet are not made
            for future in ahead.values():
                future.cancel()
            self.asked -= len(ahead)

    def within(self, piece, integration_id, entity_type, parent_id):
        if piece.level == "workspace":
            return True
        if integration_id != piece.integration_id:
            return False
        if piece.level == "integration":
            return True
        if entity_type != piece.entity_type:
            return False
        return piece.level == "type" or parent_id in piece.parents

    def already_missing(self, piece):
        """Resources of this piece found gone earlier in this check (kept in memory: no long `IN` lists)."""
        return sum(1 for place in self.missing.values() if self.within(piece, *place))

    def unknown_missing(self, piece):
        """Labels of pieces the last sync could not list, of unknown size, within this piece."""
        return "; ".join(p.get("label", "") for p in self.known_missing
                         if p.get("count") is None and (piece.level == "workspace"
                                                        or p.get("integration_id") == piece.integration_id))

    def not_mirrored(self, piece):
        """How many of the piece's resources the last sync said it could not list."""
        if piece.level == "pack":
            return 0
        return sum(p.get("count") or 0 for p in self.known_missing
                   if piece.level == "workspace"
                   or (p.get("integration_id") == piece.integration_id
                       and (piece.level == "integration" or p.get("entity_type") == piece.entity_type)))

    def children(self, piece):
        present = Resource.objects.present()
        if piece.level == "workspace":
            names = dict(Integration.objects.values_list("id", "name"))
            held = (present.exclude(integration_id="").exclude(integration_id__isnull=True)
                    .values_list("integration_id").annotate(n=Count("id")).order_by("integration_id"))
            return [Piece(names.get(iid) or iid, among("integration_id", [iid]),
                          present.filter(integration_id=iid), "integration", integration_id=iid)
                    for iid, _ in held]
        if piece.level == "integration":
            types = sorted(set(piece.mirror.exclude(entity_type="").values_list("entity_type", flat=True)),
                           key=lambda t: (TYPE_ORDER.index(t) if t in TYPE_ORDER else len(TYPE_ORDER), t))
            # Parents before their children: a dropped table's columns are known gone without listing them.
            return [Piece(f"{piece.label} / {t}", both(piece.filter, exact(self.type_field, t)),
                          piece.mirror.filter(entity_type=t), "type", piece.integration_id, t) for t in types]
        if piece.level == "type":
            if piece.mirror.filter(parent_id__isnull=True).exists() or piece.mirror.filter(parent_id="").exists():
                return []  # those cannot be told apart with `in` alone: the type is listed whole
            parents = list(piece.mirror.values_list("parent_id").annotate(n=Count("id")).order_by("parent_id"))
            packs = pack_parents(parents, self.base_url, piece.filter, children_per_pack=RELIST_PAGES * self.page_length)
            if len(packs) < 2:
                return []
            return [self.pack(piece, [pid for pid, _ in pack]) for pack in packs]
        if piece.level == "pack" and len(piece.parents) > 1:
            middle = len(piece.parents) // 2
            return [self.pack(piece, half) for half in (piece.parents[:middle], piece.parents[middle:])]
        return []

    def pack(self, piece, parent_ids):
        scope = piece if piece.level == "type" else piece.scope
        return Piece(f"{scope.label} (parents {parent_ids[0][:8]}…, {len(parent_ids)} of them)",
                     both(scope.filter, among("parent_id", parent_ids)),
                     scope.mirror.filter(parent_id__in=parent_ids), "pack", piece.integration_id,
                     piece.entity_type, parent_ids, scope)

    def relist(self, piece, held):
        cap = listing_cap()
        if held >= cap:
            self.notes.append(f"{piece.label}: over {cap:,} resources and no narrower way to list them; "
                              "deletions there are found by the next full sweep.")
            return
        try:
            first = self.client.resource_page(piece.filter, STABLE_SORT)
            sort = STABLE_SORT
        except PermanentError as exc:
            if exc.status != 400:
                raise
            first, sort = self.client.resource_page(piece.filter, None), None
        listed = set()
        for page in self.client.iter_resource_pages(piece.filter, sort, first=first):
            self.writer.add(page.results)
            listed.update(str(record.get("id")) for record in page.results)
            if len(listed) >= cap:
                self.notes.append(f"{piece.label}: Secoda now lists over {cap:,} resources there; deletions "
                                  "there are found by the next full sweep.")
                return
        self.writer.flush()
        self.relisted += 1
        if self.control is None and listed:
            self.control = next(iter(listed))
        fields = ("id", "integration_id", "entity_type", "parent_id")
        gone = {row[0]: row[1:] for row in piece.mirror.values_list(*fields)
                if row[0] not in listed and row[0] not in self.missing}
        while gone:  # what sat under a deleted resource went with it (each is still looked up)
            self.missing.update(gone)
            parents, gone = list(gone), {}
            for start in range(0, len(parents), 5_000):
                for row in Resource.objects.present().filter(parent_id__in=parents[start:start + 5_000]) \
                        .values_list(*fields):
                    if row[0] not in self.missing:
                        gone[row[0]] = row[1:]

    def confirm(self):
        """Look every missing resource up (packs of ids in one listing where Secoda allows it) and mark those
        Secoda no longer has removed; the ones it still has are stored fresh. Returns (removed, notes)."""
        ids, gone, kept = sorted(self.missing), [], 0
        notes = []
        if len(ids) > MAX_LOOKUPS:  # a whole integration went: a sample decides, as in a full sweep
            sample = random.sample(ids, CONFIRM_SAMPLE)
            still = {rid: record for rid in sample if (record := self.client.get_resource(rid)) is not None}
            if still:
                self.writer.add(still.values())
                ids = [rid for rid in sample if rid not in still]
                notes.append(f"{len(still)} of {len(sample)} sampled resources missing from a listing still exist "
                             "in Secoda, so only confirmed removals were applied.")
            gone = ids
        else:
            for start in range(0, len(ids), LOOKUP_BATCH):
                chunk = ids[start:start + LOOKUP_BATCH]
                found = self.client.fetch_resources(chunk, self.control)
                self.writer.add(found.values())
                kept += len(found)
                gone.extend(resource_id for resource_id in chunk if resource_id not in found)
        self.writer.flush()
        now = timezone.now()
        removed = sum(Resource.objects.present().filter(id__in=gone[start:start + 5_000]).update(removed_at=now)
                      for start in range(0, len(gone), 5_000))
        if kept:
            notes.append(f"{kept:,} resource(s) missing from a listing still exist in Secoda; they were kept.")
        return removed, notes


def learned_type_field():
    """How this Secoda filters by entity type, as the last sweep that had to ask learned it."""
    options = (SyncRun.objects.filter(options__has_key="type_field").order_by("-started_at")
               .values_list("options", flat=True).first())
    return (options or {}).get("type_field", "entity_type")


def deletions(run, client, writer, known_missing=()):
    """Find what was deleted upstream since the mirror last saw it, and mark it removed once a lookup of
    each one finds it gone. Returns (removed, notes); a Secoda error ends the check with a note, since
    the changes this sync listed are mirrored either way and the next sync checks again."""
    requests_before = client.requests_made
    counts = CountAhead(client, settings.SECODA_COUNT_CONCURRENCY)
    reconciler = Reconciler(run, client, writer, known_missing or (), counts)
    removed, notes = 0, []
    try:
        # The changes listing's first page already counted the workspace.
        reconciler.visit(Piece("The workspace", None, Resource.objects.present(), "workspace"),
                         run.options.get("workspace_count"))
        if reconciler.missing:
            removed, notes = reconciler.confirm()
    except SecodaError as exc:
        logger.warning("Sync #%s: deletions could not be checked: %s", run.pk, client.redact(exc))
        notes.append(f"Deletions could not be checked ({client.redact(exc)}); the next sync checks again.")
    finally:
        counts.close()  # their requests are added to the client's
    writer.flush()
    run.options = {**run.options, "deletions": {
        "requests": client.requests_made - requests_before, "counted": reconciler.counted,
        "relisted": reconciler.relisted, "missing": len(reconciler.missing), "removed": removed}}
    return removed, reconciler.notes + notes
