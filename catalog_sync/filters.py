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
