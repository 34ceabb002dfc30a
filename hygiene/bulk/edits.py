"""What a bulk edit does to one resource: pure functions, no database, no HTTP.

An edit is a dict built by the edit form:
    {"owners": {"mode": "add"|"remove"|"replace"|"clear", "users": [ids], "groups": [ids]},
     "tags": {"mode": ..., "ids": [ids]}, "teams": {"mode": ..., "ids": [ids]},
     "description": {"text": str, "only_blank": bool},
     "verified": bool, "pii": bool, "published": bool}
Absent keys leave a field alone. No edit sets `definition`: a migration's or an
undo's planned values carry it (build_change_set's `planned`). List fields are
sent whole to Secoda (it replaces lists), so "add" means the current list plus
the new ids.
"""
LIST_FIELDS = ("owners", "owners_groups", "tags", "teams")
# Secoda's reference lists both as writable: `description` (short text) and `definition` (markdown).
TEXT_FIELDS = ("description", "definition")
FLAG_FIELDS = ("verified", "pii", "published")
EDITABLE_FIELDS = LIST_FIELDS + TEXT_FIELDS + FLAG_FIELDS


def _apply_list(current, mode, ids):
    current = list(current or [])
    if mode == "add":
        return current + [i for i in ids if i not in current]
    if mode == "remove":
        return [i for i in current if i not in ids]
    if mode == "replace":
        return list(dict.fromkeys(ids))
    if mode == "clear":
        return []
    return current


def current_values(resource):
    """The editable fields of a mirrored resource (or a Secoda record, already normalized)."""
    get = resource.get if isinstance(resource, dict) else lambda name: getattr(resource, name)
    return {name: (list(get(name) or []) if name in LIST_FIELDS else get(name)) for name in EDITABLE_FIELDS}


def planned_change(values, edit):
    """(before, after) for the fields this edit changes; both empty when nothing changes."""
    after = dict(values)
    owners = edit.get("owners")
    if owners and owners.get("mode"):
        after["owners"] = _apply_list(values["owners"], owners["mode"], owners.get("users", []))
        after["owners_groups"] = _apply_list(values["owners_groups"], owners["mode"], owners.get("groups", []))
    for field in ("tags", "teams"):
        spec = edit.get(field)
        if spec and spec.get("mode"):
            after[field] = _apply_list(values[field], spec["mode"], spec.get("ids", []))
    description = edit.get("description")
    if description is not None:
        blank = not (values.get("description") or "").strip()
        if blank or not description.get("only_blank"):
            after["description"] = description["text"]
    for flag in FLAG_FIELDS:
        if edit.get(flag) is not None:
            after[flag] = bool(edit[flag])
    changed = [name for name in EDITABLE_FIELDS if not same_value(name, values.get(name), after.get(name))]
    return {name: values.get(name) for name in changed}, {name: after[name] for name in changed}


def one_line_breaks(text):
    """Browsers send a textarea's line breaks as CR LF: the same text either way."""
    return (text or "").replace("\r\n", "\n").replace("\r", "\n")


def same_value(field, left, right):
    if field in LIST_FIELDS:
        return sorted(left or []) == sorted(right or [])
    if field in TEXT_FIELDS:
        return one_line_breaks(left).strip() == one_line_breaks(right).strip()
    return bool(left) == bool(right)


def matches(values, expected):
    """True when `values` hold what `expected` says for every field it names."""
    return all(same_value(name, values.get(name), value) for name, value in expected.items())
