"""Turn Secoda's JSON records into mirror rows.

Secoda writes absent values as null or as the string "None", booleans
sometimes as "True"/"False", and lists sometimes as null. Everything that
reaches the database goes through here.
"""
import json
import re
from datetime import timezone as dt_timezone
from urllib.parse import urlsplit

from django.utils.dateparse import parse_datetime

from catalog_sync.values import ABSENT, as_int, clean


def is_owned(owners, owners_groups):
    """A fact about a record: someone (a person or a group) owns it."""
    return bool(owners) or bool(owners_groups)


def is_documented(description, definition):
    """A fact about a record: it has a description or documentation that is not only blanks."""
    return bool((description or "").strip()) or bool((definition or "").strip())


def text(value):
    # Same result as `"" if clean(value) is None else str(value)`, with the common cases first; PostgreSQL
    # stores no NUL character, so those are dropped.
    if value.__class__ is str:
        if "\x00" in value:
            value = value.replace("\x00", "")
        return "" if len(value) < 12 and value.strip() in ABSENT else value
    return "" if value is None else str(value).replace("\x00", "")


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # control characters: no link or id may hold one


def http_url(value):
    """`value` when it is an http(s) URL with a host, else "": text from Secoda becomes a link target only
    then (never `javascript:`, `data:` or anything else, whatever its case or leading spaces). Used when the
    sync stores a URL and again by the `safe_url` template filter wherever one is shown."""
    value = text(value).strip()
    # Only a value that starts "http://" or "https://" can have an http(s) scheme and a host (a control
    # character anywhere refuses it), so every other value is refused before it is parsed.
    if not value[:8].lower().startswith(("http://", "https://")) or _CONTROL.search(value):
        return ""
    try:
        parts = urlsplit(value)
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return ""
    return value


def flag(value):
    if value is True or value is False:
        return value
    value = clean(value)
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def integer(value):
    """`as_int` with a quick path for a plain int."""
    return value if value.__class__ is int else as_int(value)


def when(value):
    if value is None:
        return None
    value = clean(value)
    if value is None:
        return None
    try:
        parsed = parse_datetime(str(value))
    except ValueError:
        return None
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt_timezone.utc)
    return parsed


def id_list(value):
    if value.__class__ is list:
        if not value:
            return []
        if len(value) == 1:
            item = value[0]
            if item.__class__ is str and item != "None" and item != "":
                return [item]
        elif all(item.__class__ is str and item not in ("None", "") for item in value):
            return list(dict.fromkeys(value))  # the usual case: a clean list of ids
    value = clean(value)
    if value is None:
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = [part.strip() for part in value.split(",")]
    if not isinstance(value, (list, tuple)):
        value = [value]
    seen = []
    for item in value:
        if isinstance(item, dict):
            item = item.get("id")
        item = clean(item)
        if item is not None and str(item) not in seen:
            seen.append(str(item))
    return seen


def mapping(value):
    value = clean(value)
    return value if isinstance(value, dict) else {}


def resource_row(record):
    """Model field values for one resource record (without bookkeeping fields)."""
    description, definition = text(record.get("description")), text(record.get("definition"))
    owners, owners_groups = id_list(record.get("owners")), id_list(record.get("owners_groups"))
    return {
        "id": str(record["id"]),
        "entity_type": resource_type(record),
        "native_type": text(record.get("native_type"))[:128],
        "title": text(record.get("title")),
        "title_full": text(record.get("title_full")) or text(record.get("title")),
        "icon": text(record.get("icon"))[:255],
        "description": description,
        "definition": definition,
        "definition_version": integer(record.get("definition_version")),
        "integration_id": text(record.get("integration") or record.get("integration_id"))[:64] or None,
        "parent_id": text(record.get("parent") or record.get("parent_id"))[:64] or None,
        "children_count": integer(record.get("children_count")),
        "workspace_id": text(record.get("workspace_id"))[:64],
        "owners": owners,
        "owners_groups": owners_groups,
        "tags": id_list(record.get("tags")),
        "teams": id_list(record.get("teams")),
        "collections": id_list(record.get("collections")),
        "subscribers": id_list(record.get("subscribers")),
        "sources": id_list(record.get("sources")),
        "internal_users": id_list(record.get("internal_users")),
        "external_users": id_list(record.get("external_users")),
        "published": flag(record.get("published")),
        "archived": flag(record.get("archived")),
        "archived_at": when(record.get("archived_at")),
        "pii": flag(record.get("pii")),
        "verified": flag(record.get("verified")),
        "stale": flag(record.get("stale")),
        "stale_at": when(record.get("stale_at")),
        "forced_unstale_by_user": flag(record.get("forced_unstale_by_user")),
        "url": http_url(record.get("url")),
        "internal_usage": integer(record.get("internal_usage")),
        "external_usage": integer(record.get("external_usage")),
        "row_count": integer(record.get("row_count")),
        "byte_size": integer(record.get("byte_size")),
        "search_metadata": mapping(record.get("search_metadata")),
        "created_at": when(record.get("created_at")),
        "updated_at": when(record.get("updated_at")),
        "external_updated_at": when(record.get("external_updated_at")),
        "is_owned": is_owned(owners, owners_groups),
        "is_documented": is_documented(description, definition),
    }


def resource_type(record):
    """A record's entity type ("entity_type", or "type" as some answers name it)."""
    return text(record.get("entity_type") or record.get("type"))[:64]


def integration_row(record):
    return {
        "id": str(record["id"]),
        "name": text(record.get("name"))[:255],
        "type": text(record.get("type"))[:100],
        "teams": id_list(record.get("teams")),
        "created_at": when(record.get("created_at")),
        "updated_at": when(record.get("updated_at")),
        "last_extracted_at": when(record.get("scheduled_extractions_last_run")),
    }


def user_row(record):
    return {
        "id": str(record["id"]),
        "first_name": text(record.get("first_name"))[:255],
        "last_name": text(record.get("last_name"))[:255],
        "email": text(record.get("email"))[:320],
        "role": text(record.get("role"))[:64],
        "disabled": flag(record.get("disabled")),
    }


def group_row(record):
    return {"id": str(record["id"]), "name": text(record.get("name"))[:255], "users": id_list(record.get("users"))}


def team_row(record):
    return {
        "id": str(record["id"]),
        "name": text(record.get("name"))[:255],
        "description": text(record.get("description")),
        "archived": flag(record.get("archived")),
    }


def tag_row(record):
    return {"id": str(record["id"]), "name": text(record.get("name"))[:255], "color": text(record.get("color"))[:32]}


def clean_id(value):
    """A resource's id as the mirror keys it, or None when unusable (blank, a container, control characters
    such as NUL, which PostgreSQL cannot store and no URL can carry)."""
    value = clean(value)
    if value is None or isinstance(value, (dict, list)):
        return None
    value = str(value).strip()[:64]
    if not value or _CONTROL.search(value):
        return None
    if any(part in (".", "..") for part in value.split("/")):
        return None  # a link to it would be rewritten by the browser ("/resources/../x/" is "/x/")
    return value
