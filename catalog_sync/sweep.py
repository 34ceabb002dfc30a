"""What a sweep needs to list every resource of a workspace of any size despite the 10,000 cap.

Filter builders, the stable sort, the order of entity types and their parent
types, packing parents into `in` filters by their `children_count` (URLs kept
under 8 KiB), and the page prefetcher. `catalog_sync.slices` drives a sweep
with them.
"""
import json
import queue
import threading
from urllib.parse import quote

from catalog_sync.client import TIMED_OUT_COUNT, listing_url_length
from catalog_sync.models import Resource


# A stable order keeps page boundaries still while we page (the default,
# external_usage desc, shifts as usage changes).
STABLE_SORT = {"field": "created_at", "order": "asc", "tie_breaker": {"field": "id", "order": "asc"}}
PACK_CHILDREN = 9_000  # children per parent-packed slice, under the cap with room for growth
MAX_URL_BYTES = 7_500  # "keep URLs well under 8 KiB"
TYPE_ORDER = [
    "database", "schema", "table", "view", "dashboard", "job", "event_category", "event", "event_property",
    "metric", "dictionary_term", "document", "question", "collection", "column", "chart",
]
PARENT_TYPES = {
    "schema": ["database"],
    "table": ["schema"],
    "view": ["schema"],
    "column": ["table", "view"],
    "chart": ["dashboard"],
    "event": ["event_category"],
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


def pack_parents(parents, base_url, filter_obj, children_per_pack=PACK_CHILDREN):
    """Group parents so each group has at most `children_per_pack` children and a short enough URL."""

    base = listing_url_length(base_url, both(filter_obj, among("parent_id", [])), STABLE_SORT)
    packs, current, children, length = [], [], 0, base
    for parent_id, count in parents:
        count = count if count is not None else 1
        cost = len(quote(json.dumps(parent_id) + ",", safe=""))
        if current and (children + count > children_per_pack or length + cost > MAX_URL_BYTES):
            packs.append(current)
            current, children, length = [], 0, base
        current.append((parent_id, count))
        children += count
        length += cost
    if current:
        packs.append(current)
    return packs
