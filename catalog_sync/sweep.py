"""List every resource of a workspace of any size despite the 10,000 cap.

A listing whose `count` is at or over the cap (or the 999999 "timed out"
count) is split: the workspace by integration, an integration by entity type,
an entity type by parents packed into `in` filters by their `children_count`
(URLs kept under 8 KiB). Sums of counts tell whether a remainder query is
needed for what no slice covered. Anything that cannot be reached makes the
sweep incomplete, and an incomplete sweep marks nothing removed.
"""
import json
import logging
import queue
import threading
from urllib.parse import quote

from catalog_sync.client import PAGE_CAP, TIMED_OUT_COUNT, PermanentError, listing_url_length
from catalog_sync.models import Resource

logger = logging.getLogger(__name__)

# A stable order keeps page boundaries still while we page (the default,
# external_usage desc, shifts as usage changes).
STABLE_SORT = {"field": "created_at", "order": "asc", "tie_breaker": {"field": "id", "order": "asc"}}
PACK_CHILDREN = 9_000  # children per parent-packed slice, under the cap with room for growth
MAX_URL_BYTES = 7_500  # "keep URLs well under 8 KiB"
TYPE_ORDER = [
    "database", "schema", "table", "view", "dashboard", "job", "event", "event_property",
    "metric", "dictionary_term", "document", "question", "collection", "column", "chart",
]
PARENT_TYPES = {
    "schema": ["database"],
    "table": ["schema"],
    "view": ["schema"],
    "column": ["table", "view"],
    "chart": ["dashboard"],
    "event_property": ["event"],
}


def exact(field, value):
    return {"operator": "exact", "field": field, "value": value}


def among(field, values):
    return {"operator": "in", "field": field, "value": list(values)}


def both(*operands):
    operands = [op for op in operands if op is not None]
    return operands[0] if len(operands) == 1 else {"operator": "and", "operands": operands}


def negate(operand):
    return {"operator": "not", "operands": [operand]}


def real_count(page):
    """The count when it is a real number (not missing, not the timed-out marker)."""
    if page.count is None or page.count == TIMED_OUT_COUNT:
        return None
    return page.count


class Sweep:
    def __init__(self, client, writer, integrations, on_progress=None):
        self.client = client
        self.writer = writer
        self.integrations = integrations  # [(id, name)]
        self.on_progress = on_progress or (lambda sweep, label: None)
        self.sort = STABLE_SORT
        self.complete = True
        self.problems = []
        self.notes = []
        self.slices_done = 0

    # -- driving ---------------------------------------------------------------

    def run(self):
        self.list_slice("all resources", None, self.split_by_integration)
        self.writer.flush()
        return self

    def incomplete(self, message):
        self.complete = False
        self.problems.append(message)
        logger.warning("Sweep incomplete: %s", message)

    def first_page(self, filter_obj):
        try:
            return self.client.resource_page(filter_obj, self.sort)
        except PermanentError as exc:
            if exc.status != 400 or self.sort is None:
                raise
            # This Secoda refuses our sort: fall back to its default order.
            self.notes.append("Secoda refused sorting by created_at; listed in its default order.")
            self.sort = None
            return self.client.resource_page(filter_obj, self.sort)

    def list_slice(self, label, filter_obj, split):
        """List one slice, splitting it when capped. Returns how many resources it holds."""
        first = self.first_page(filter_obj)
        if not first.capped:
            listed = self.stream(first, filter_obj)
            if first.count is not None or listed < PAGE_CAP:
                self.slice_done(label)
                return max(listed, first.count or 0)
            # No count and the listing ran into the cap: it was capped after all.
        # A capped first page is not stored: the narrower slices list the same resources again.
        if split is None:
            self.incomplete(f"{label}: over {PAGE_CAP:,} resources and no narrower way to list them")
            return real_count(first) or PAGE_CAP
        return split(label, filter_obj, first)

    def stream(self, first, filter_obj):
        listed = 0
        for page in prefetched(self.client.iter_resource_pages(filter_obj, self.sort, first=first)):
            self.writer.add(page.results)
            listed += len(page.results)
            if listed >= PAGE_CAP:
                break
        return listed

    def slice_done(self, label):
        self.slices_done += 1
        self.on_progress(self, label)

    def remainder(self, label, filter_obj, expected, listed):
        """List what no slice covered, when counts say something is left."""
        if expected is not None and listed >= expected:
            return 0
        try:
            return self.list_slice(label, filter_obj, None)
        except PermanentError as exc:
            if exc.status != 400:
                raise
            if expected is None or listed < expected:
                gap = "an unknown number of" if expected is None else f"{expected - listed:,}"
                self.incomplete(f"{label}: {gap} resources could not be listed ({exc})")
            return 0

    # -- splitting -------------------------------------------------------------

    def split_by_integration(self, label, filter_obj, first):
        listed = 0
        for integration_id, name in self.integrations:
            scope = both(filter_obj, among("integration_id", [integration_id]))
            listed += self.list_slice(name or integration_id, scope, self.type_splitter(integration_id))
        ids = [integration_id for integration_id, _ in self.integrations]
        outside = negate(among("integration_id", ids)) if ids else None
        listed += self.remainder("resources outside every integration", both(filter_obj, outside),
                                 real_count(first), listed)
        return listed

    def type_splitter(self, integration_id):
        def split(label, filter_obj, first):
            known = set(
                Resource.objects.filter(integration_id=integration_id).order_by()
                .values_list("entity_type", flat=True).distinct()
            )
            types = TYPE_ORDER + sorted(t for t in known if t and t not in TYPE_ORDER)
            expected = real_count(first)
            # The docs filter the type as "type" in one place and "entity_type" in another.
            for attempt, field in enumerate(self.type_fields()):
                try:
                    listed = self.list_types(label, filter_obj, field, types, integration_id)
                except PermanentError as exc:
                    if exc.status != 400 or attempt:
                        raise
                    continue
                if listed or expected == 0 or attempt:
                    self.type_field = field
                    break
            listed += self.remainder(f"{label} / other types",
                                     both(filter_obj, negate(among(self.type_field, types))), expected, listed)
            return listed

        return split

    type_field = "entity_type"

    def type_fields(self):
        return [self.type_field, "type" if self.type_field == "entity_type" else "entity_type"]

    def list_types(self, label, filter_obj, field, types, integration_id):
        listed = 0
        for entity_type in types:
            scope = both(filter_obj, exact(field, entity_type))
            listed += self.list_slice(f"{label} / {entity_type}", scope,
                                      self.parent_splitter(integration_id, entity_type))
        return listed

    def parent_splitter(self, integration_id, entity_type):
        def split(label, filter_obj, first):
            self.writer.flush()  # parents listed earlier in this sweep must be in the mirror
            parents = candidate_parents(integration_id, entity_type)
            listed = 0
            for pack in pack_parents(parents, self.client.base_url, filter_obj):
                listed += self.list_pack(label, filter_obj, pack)
            listed += self.remainder(f"{label} without a parent",
                                     both(filter_obj, negate({"operator": "is_set", "field": "parent_id",
                                                              "value": True})),
                                     real_count(first), listed)
            expected = real_count(first)
            if expected is not None and listed < expected and self.complete:
                self.incomplete(f"{label}: {expected - listed:,} of {expected:,} resources sit under parents "
                                "the mirror does not know")
            return listed

        return split

    def list_pack(self, label, filter_obj, pack):
        scope = both(filter_obj, among("parent_id", [pid for pid, _ in pack]))
        pack_label = f"{label} (parents {pack[0][0][:8]}…, {len(pack)} of them)"
        if len(pack) == 1:
            return self.list_slice(pack_label, scope, None)
        first = self.first_page(scope)
        if not first.capped:
            listed = self.stream(first, scope)
            self.slice_done(pack_label)
            return listed
        # children_count understated the pack: halve it.
        middle = len(pack) // 2
        return self.list_pack(label, filter_obj, pack[:middle]) + self.list_pack(label, filter_obj, pack[middle:])


def prefetched(pages, depth=3):
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
    """(id, children_count) of resources that may hold `entity_type` children, smallest id first."""
    query = Resource.objects.filter(integration_id=integration_id, removed_at__isnull=True)
    parent_types = PARENT_TYPES.get(entity_type)
    if parent_types:
        query = query.filter(entity_type__in=parent_types).exclude(children_count=0)
    else:
        query = query.filter(children_count__gt=0).exclude(entity_type=entity_type)
    return list(query.order_by("id").values_list("id", "children_count"))


def pack_parents(parents, base_url, filter_obj):
    """Group parents so each group has at most PACK_CHILDREN children and a short enough URL."""

    base = listing_url_length(base_url, both(filter_obj, among("parent_id", [])), STABLE_SORT)
    packs, current, children, length = [], [], 0, base
    for parent_id, count in parents:
        count = count if count is not None else 1
        cost = len(quote(json.dumps(parent_id) + ",", safe=""))
        if current and (children + count > PACK_CHILDREN or length + cost > MAX_URL_BYTES):
            packs.append(current)
            current, children, length = [], 0, base
        current.append((parent_id, count))
        children += count
        length += cost
    if current:
        packs.append(current)
    return packs
