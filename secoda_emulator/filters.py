"""Evaluation of Secoda's catalog filter and sort JSON objects.

Filter: a field operand ``{"operator": "exact"|"contains"|"in"|"is_set", "field": f, "value": v}``
or a logical one ``{"operator": "and"|"or"|"not", "operands": [...]}``.
Sort: ``{"field": f, "order": "asc"|"desc", "tie_breaker": <sort>|null}``.

Semantics chosen here (Secoda documents little):
- ``exact`` with value null (or the string "None") matches absent values (null or "None").
  A scalar value against a list field (owners, tags...) means membership.
- ``contains`` is a case-insensitive substring test; on list fields it is membership.
- ``in`` takes a list; on list fields it matches when any element is in the list.
- ``is_set`` (optional boolean ``value``, default true): null, "None", "" and [] count as unset.
- ``not`` negates the conjunction of its operands.
Anything malformed raises ValueError (the server answers 400).
Nulls sort last in both orders; ``id`` ascending is always the final tie-breaker.
"""
import json

ALIASES = {"type": "entity_type", "integration_id": "integration", "parent_id": "parent"}
LOGICAL = ("and", "or", "not")
FIELD_OPS = ("exact", "contains", "in", "is_set")
MAX_DEPTH = 32


def canonical_field(name, known):
    if not isinstance(name, str) or not name:
        raise ValueError("filter/sort 'field' must be a non-empty string")
    field = ALIASES.get(name, name)
    if field not in known:
        raise ValueError(f"unknown field {name!r}")
    return field


def is_null(value):
    return value is None or (isinstance(value, str) and value == "None")


def is_unset(value):
    return is_null(value) or value == "" or (isinstance(value, (list, tuple, dict)) and not value)


def _same(a, b):
    """Equality that also matches booleans against "True"/"False" strings."""
    if a == b and type(a) is not bool and type(b) is not bool:
        return True
    if isinstance(a, bool) or isinstance(b, bool):
        return str(a).lower() == str(b).lower()
    return False


# --------------------------------------------------------------------------- parsing

def parse_filter(obj, known, depth=0):
    """Validate a filter object and return a normalized tree of tuples."""
    if depth > MAX_DEPTH:
        raise ValueError("filter is nested too deeply")
    if not isinstance(obj, dict):
        raise ValueError("filter must be a JSON object with an 'operator'")
    op = obj.get("operator")
    if not isinstance(op, str):
        raise ValueError("filter object is missing its 'operator'")
    op = op.lower()
    if op in LOGICAL:
        operands = obj.get("operands")
        if not isinstance(operands, list):
            raise ValueError(f"'{op}' needs a list of 'operands'")
        if op == "not" and not operands:
            raise ValueError("'not' needs at least one operand")
        return (op, tuple(parse_filter(o, known, depth + 1) for o in operands))
    if op not in FIELD_OPS:
        raise ValueError(f"unknown filter operator {op!r} (supported: {', '.join(LOGICAL + FIELD_OPS)})")
    field = canonical_field(obj.get("field"), known)
    if op == "is_set":
        value = obj.get("value", True)
        if isinstance(value, str):
            value = value.lower() not in ("false", "0", "")
        return (op, field, bool(value))
    if "value" not in obj:
        raise ValueError(f"'{op}' on {field!r} needs a 'value'")
    value = obj["value"]
    if op == "in":
        if not isinstance(value, list):
            raise ValueError(f"'in' on {field!r} needs a list value")
        if any(isinstance(v, (list, dict)) for v in value):
            raise ValueError(f"'in' on {field!r}: list items must be scalars")
    if op == "contains":
        if isinstance(value, (list, dict)) or value is None:
            raise ValueError(f"'contains' on {field!r} needs a string value")
        value = str(value)
    return (op, field, value)


def parse_sort(obj, known):
    """Return [(field, descending)] with id ascending as the final tie-breaker."""
    keys = []
    if obj is None:
        keys.append(("external_usage", True))
    node, depth = obj, 0
    while node is not None:
        depth += 1
        if depth > MAX_DEPTH:
            raise ValueError("sort tie_breaker chain is too long")
        if not isinstance(node, dict):
            raise ValueError("sort must be a JSON object with 'field' and 'order'")
        field = canonical_field(node.get("field"), known)
        order = node.get("order", "asc")
        if not isinstance(order, str) or order.lower() not in ("asc", "desc"):
            raise ValueError("sort 'order' must be 'asc' or 'desc'")
        keys.append((field, order.lower() == "desc"))
        node = node.get("tie_breaker")
    if not keys or keys[-1][0] != "id":
        keys.append(("id", False))
    return keys


# --------------------------------------------------------------------------- evaluation

def compile_filter(tree, getters):
    """Turn a parsed filter tree into a predicate over records."""
    op = tree[0]
    if op in LOGICAL:
        preds = [compile_filter(t, getters) for t in tree[1]]
        if op == "and":
            return lambda r: all(p(r) for p in preds)
        if op == "or":
            return lambda r: any(p(r) for p in preds)
        return lambda r: not all(p(r) for p in preds)
    _, field, value = tree
    get = getters[field]
    if op == "is_set":
        return (lambda r: not is_unset(get(r))) if value else (lambda r: is_unset(get(r)))
    if op == "contains":
        needle = value.lower()

        def contains(r):
            v = get(r)
            if is_null(v):
                return False
            if isinstance(v, (list, tuple)):
                return any(str(x).lower() == needle for x in v)
            return needle in str(v).lower()
        return contains
    if op == "exact":
        if is_null(value):
            return lambda r: is_null(get(r))
        if isinstance(value, list):
            wanted = sorted(map(str, value))
            return lambda r: isinstance(get(r), (list, tuple)) and sorted(map(str, get(r))) == wanted

        def exact(r):
            v = get(r)
            if isinstance(v, (list, tuple)):
                return any(_same(x, value) for x in v)
            return _same(v, value)
        return exact
    # in
    want_null = any(is_null(v) for v in value)
    plain = [v for v in value if not is_null(v)]
    hashable = {v for v in plain if not isinstance(v, bool)}
    bools = [v for v in plain if isinstance(v, bool)]

    def member(x):
        if is_null(x):
            return want_null
        if not isinstance(x, bool) and x in hashable:
            return True
        return any(_same(x, v) for v in bools) or (isinstance(x, bool) and any(_same(x, v) for v in plain))

    def inside(r):
        v = get(r)
        if isinstance(v, (list, tuple)):
            return any(member(x) for x in v)
        return member(v)
    return inside


def candidates(tree, lookup):
    """Narrow the records to scan using indexes.

    ``lookup(field, key)`` returns a sized collection of records for an indexed field, or None
    when the field is not indexed. Returns None (scan everything) or a list of such collections
    whose union is a superset of the matches (it may repeat records; see ``union``).
    """
    op = tree[0]
    if op == "and":
        best = None
        for sub in tree[1]:
            found = candidates(sub, lookup)
            if found is not None and (best is None or _size(found) < _size(best)):
                best = found
        return best
    if op == "or":
        buckets = []
        for sub in tree[1]:
            found = candidates(sub, lookup)
            if found is None:
                return None
            buckets.extend(found)
        return buckets
    if op not in ("exact", "in"):
        return None
    _, field, value = tree
    buckets = []
    for v in (value if op == "in" else [value]):
        key = None if is_null(v) else v
        if isinstance(key, (list, dict)):
            return None
        recs = lookup(field, key)
        if recs is None:
            return None
        buckets.append(recs)
    return buckets


def _size(buckets):
    return sum(len(b) for b in buckets)


def union(buckets):
    """Records of candidate buckets, each once."""
    if len(buckets) == 1:
        return list(buckets[0])
    seen = {}
    for bucket in buckets:
        for r in bucket:
            seen[r.id] = r
    return list(seen.values())


def _norm(v):
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (list, tuple)):
        return tuple(str(x) for x in v)
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=True, default=str)
    return v


class _NotNumeric(Exception):
    pass


def _flat_key(gets):
    """One ascending key for all sort fields: descending fields must hold numbers (negated)."""
    def key(r):
        out = []
        for get, desc in gets:
            v = get(r)
            if v is None or v == "None":
                out += (1, 0)
                continue
            if v.__class__ not in (str, int, float):
                v = _norm(v)
            if desc:
                if v.__class__ not in (int, float):
                    raise _NotNumeric
                v = -v
            out += (0, v)
        return tuple(out)
    return key


def sort_records(records, keys, getters):
    """Stable multi-key sort; nulls last whatever the order.

    One pass when descending fields hold numbers (the usual case: usage counts, timestamps as
    epoch floats); otherwise one stable pass per key, from the last key to the first.
    """
    out = list(records)
    try:
        out.sort(key=_flat_key([(getters[f], desc) for f, desc in keys]))
        return out
    except (_NotNumeric, TypeError):
        pass
    for field, desc in reversed(keys):
        get = getters[field]
        present, absent = (1, 0) if desc else (0, 1)

        def key(r, get=get, present=present, absent=absent):
            v = get(r)
            return (absent, 0) if is_null(v) else (present, _norm(v))
        try:
            out.sort(key=key, reverse=desc)
        except TypeError:  # mixed value types in one field: compare as text
            out.sort(key=lambda r, key=key: (key(r)[0], str(key(r)[1])), reverse=desc)
    return out
