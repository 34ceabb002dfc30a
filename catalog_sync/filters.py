"""The listing filters Secoda takes, and what builds them: the operators, the stable sort, the order of
entity types and their parent types, and parents packed into `in` filters by their `children_count`
(URLs kept under 8 KiB). `catalog_sync.slices` and `catalog_sync.reconcile` list with them.
"""
import json
from urllib.parse import quote

from catalog_sync.client import listing_url_length


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


def pack_parents(parents, base_url, filter_obj, children_per_pack=PACK_CHILDREN, page_length=None):
    """Group parents so each group has at most `children_per_pack` children and a short enough URL.

    With `page_length`, a group that must close (its URL or its children full) gives its last parents to the
    next group when that makes its children fill whole pages: 1,815 columns of 165 tables are two requests,
    the first 990 of them one."""
    base = listing_url_length(base_url, both(filter_obj, among("parent_id", [])), STABLE_SORT)
    packs, current = [], []

    def cost(parent_id):
        return len(quote(json.dumps(parent_id) + ",", safe=""))

    def size(pack):
        return sum(count for _, count in pack), base + sum(cost(pid) for pid, _ in pack)

    children, length = 0, base
    for parent_id, count in parents:
        count = count if count is not None else 1
        if current and (children + count > children_per_pack or length + cost(parent_id) > MAX_URL_BYTES):
            kept = whole_pages(current, page_length)
            packs.append(kept)
            current = current[len(kept):]
            children, length = size(current)
            if current and (children + count > children_per_pack or length + cost(parent_id) > MAX_URL_BYTES):
                packs.append(current)  # what was carried leaves no room: it goes as it is
                current, children, length = [], 0, base
        current.append((parent_id, count))
        children += count
        length += cost(parent_id)
    if current:
        packs.append(current)
    return packs


def whole_pages(pack, page_length):
    """The longest head of `pack` whose children fill its pages to the last but one (the whole pack when it
    already does, holds less than a page, or no page length is known)."""
    total = sum(count for _, count in pack)
    if not page_length or total <= page_length or total % page_length == 0:
        return pack
    room, children = (total // page_length) * page_length, 0
    for index, (_, count) in enumerate(pack):
        if children + count > room:
            return pack[:index] or pack
        children += count
    return pack
