"""Compact storage of catalog resources and their serialization to Secoda's JSON shape.

A resource keeps only the fields that vary (``Res`` with ``__slots__``); everything constant or
derivable (url, title_full, workspace_id, databuilder_id, ...) is added when serialized.
Absent values come out as JSON null or as the string "None", chosen per resource by ``style``
bits, as Secoda's own documentation shows both.
"""
from datetime import datetime, timezone
from functools import lru_cache

# Every documented field of a resource, in the order of Secoda's reference page.
FIELDS = (
    "id", "created_at", "updated_at", "entity_type", "native_type", "icon", "title", "title_full",
    "title_cased", "description", "definition", "definition_version", "multiplayers",
    "multiplayer_last_modified_by", "multiplayer_last_modified", "owners", "owners_groups",
    "collections", "tags", "workspace_id", "published", "archived", "archived_at", "pii", "verified",
    "url", "parent", "children_count", "bookmarked_by", "integration", "external_updated_at",
    "internal_usage", "internal_users", "external_users", "external_usage", "databuilder_id",
    "search_metadata", "sources", "subscribers", "teams", "stale", "stale_at", "forced_unstale_by_user",
    "current_user_permissions", "row_count", "byte_size", "display_metadata", "question_status",
    "question_priority", "question_answered_by", "question_assigned_to",
)

# Fields that PATCH / bulk_update / create may set, with their kind.
EDITABLE = {
    "description": "text", "definition": "text", "pii": "bool", "verified": "bool", "published": "bool",
    "teams": "ids", "owners": "ids", "owners_groups": "ids", "collections": "ids", "tags": "ids",
    "subscribers": "ids",
}
WAREHOUSE_TYPES = ("database", "schema", "table", "column")


class Res:
    """One catalog resource: only the varying fields. Timestamps are epoch floats."""
    __slots__ = (
        "id", "entity_type", "native_type", "title", "description", "definition", "definition_version",
        "parent", "integration", "children_count", "created", "updated", "ext_updated", "stale",
        "stale_at", "forced_unstale", "archived", "archived_at", "owners", "owners_groups", "collections",
        "tags", "teams", "subscribers", "bookmarked_by", "internal_users", "external_users", "sources",
        "pii", "verified", "published", "internal_usage", "external_usage", "row_count", "byte_size",
        "style",
    )

    def __init__(self, **fields):
        for name in self.__slots__:
            setattr(self, name, fields.get(name))


def iso(ts):
    """Epoch float -> ISO 8601 with microseconds and Z; absent markers pass through."""
    if ts is None or ts == "None":
        return ts
    return _iso(ts)


@lru_cache(maxsize=1 << 18)  # a record's times are written out every time it is listed or read
def _iso(ts):
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="microseconds")[:-6] + "Z"


@lru_cache(maxsize=65536)  # titles repeat a lot (column names), so this is nearly free
def camel(title):
    words = [w for w in title.replace("_", " ").replace(".", " ").split() if w]
    if not words:
        return title
    return words[0].lower() + "".join(w[:1].upper() + w[1:].lower() for w in words[1:])


def coerce_editable(fields):
    """Validate editable fields of a write; return {field: stored value}. Others are ignored."""
    if not isinstance(fields, dict):
        raise ValueError("the body must be a JSON object of fields")
    out = {}
    for name, kind in EDITABLE.items():
        if name not in fields:
            continue
        value = fields[name]
        if kind == "text":
            if value is not None and not isinstance(value, str):
                raise ValueError(f"'{name}' must be a string or null")
        elif kind == "bool":
            if isinstance(value, str) and value.lower() in ("true", "false"):
                value = value.lower() == "true"
            if not isinstance(value, bool):
                raise ValueError(f"'{name}' must be true or false")
        else:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"'{name}' must be a list of id strings")
            value = tuple(dict.fromkeys(value))
        out[name] = value
    return out


class RecordView:
    """Serializes resources and exposes per-field getters for filtering and sorting."""

    def __init__(self, workspace_id, records, integration_types):
        self.workspace_id = workspace_id
        self.records = records                      # id -> Res (shared, live)
        self.integration_types = integration_types  # integration id -> type
        self.getters = self._build_getters()
        # Sorting compares the stored epoch floats: same order as the ISO strings, much cheaper.
        self.sort_getters = dict(self.getters, created_at=lambda r: r.created, updated_at=lambda r: r.updated,
                                 external_updated_at=lambda r: r.ext_updated)

    @staticmethod
    def absent(rec, bit):
        return "None" if (rec.style >> bit) & 1 else None

    def ancestry(self, rec):
        chain, seen = [rec], 0
        parent = rec.parent
        while parent and parent != "None" and seen < 16:
            up = self.records.get(parent)
            if up is None:
                break
            chain.append(up)
            parent, seen = up.parent, seen + 1
        chain.reverse()
        return chain

    def title_full(self, rec):
        return ".".join(r.title for r in self.ancestry(rec))

    def search_metadata(self, rec):
        meta = {"type": rec.entity_type}
        if rec.entity_type in WAREHOUSE_TYPES:
            meta["cluster"] = self.integration_types.get(rec.integration, "custom")
            for up in self.ancestry(rec):
                if up.entity_type in ("database", "schema", "table") and up is not rec:
                    meta[up.entity_type] = up.title
        return meta

    def databuilder_id(self, rec):
        return f"{rec.integration}.x{rec.id[:8]}" if rec.integration else self.absent(rec, 0)

    def to_dict(self, rec):
        a = rec.style
        none0 = "None" if a & 1 else None
        none1 = "None" if a & 2 else None
        none2 = "None" if a & 4 else None
        return {
            "id": rec.id,
            "created_at": iso(rec.created),
            "updated_at": iso(rec.updated),
            "entity_type": rec.entity_type,
            "native_type": rec.native_type,
            "icon": none0,
            "title": rec.title,
            "title_full": self.title_full(rec),
            "title_cased": camel(rec.title),
            "description": rec.description,
            "definition": rec.definition,
            "definition_version": rec.definition_version,
            "multiplayers": [],
            "multiplayer_last_modified_by": none1,
            "multiplayer_last_modified": none1,
            "owners": list(rec.owners),
            "owners_groups": list(rec.owners_groups),
            "collections": list(rec.collections),
            "tags": list(rec.tags),
            "workspace_id": self.workspace_id,
            "published": rec.published,
            "archived": rec.archived,
            "archived_at": iso(rec.archived_at) if rec.archived_at is not None else none2,
            "pii": rec.pii,
            "verified": rec.verified,
            "url": f"https://app.secoda.co/{rec.entity_type}/{rec.id}",
            "parent": rec.parent,
            "children_count": rec.children_count,
            "bookmarked_by": list(rec.bookmarked_by),
            "integration": rec.integration,
            "external_updated_at": iso(rec.ext_updated),
            "internal_usage": rec.internal_usage,
            "internal_users": list(rec.internal_users),
            "external_users": list(rec.external_users),
            "external_usage": rec.external_usage,
            "databuilder_id": self.databuilder_id(rec),
            "search_metadata": self.search_metadata(rec),
            "sources": list(rec.sources),
            "subscribers": list(rec.subscribers),
            "teams": list(rec.teams),
            "stale": rec.stale,
            "stale_at": iso(rec.stale_at) if rec.stale_at is not None else none2,
            "forced_unstale_by_user": rec.forced_unstale,
            "current_user_permissions": "edit",
            "row_count": rec.row_count,
            "byte_size": rec.byte_size,
            "display_metadata": {},
            "question_status": none0,
            "question_priority": None,
            "question_answered_by": none1,
            "question_assigned_to": none1,
        }

    def _build_getters(self):
        def attr(name):
            return lambda r: getattr(r, name)

        def derived(name):
            return lambda r: self.to_dict(r)[name]

        direct = {
            "id": "id", "entity_type": "entity_type", "native_type": "native_type", "title": "title",
            "description": "description", "definition": "definition",
            "definition_version": "definition_version", "owners": "owners", "owners_groups": "owners_groups",
            "collections": "collections", "tags": "tags", "published": "published", "archived": "archived",
            "pii": "pii", "verified": "verified", "parent": "parent", "children_count": "children_count",
            "bookmarked_by": "bookmarked_by", "integration": "integration", "internal_usage": "internal_usage",
            "internal_users": "internal_users", "external_users": "external_users",
            "external_usage": "external_usage", "sources": "sources", "subscribers": "subscribers",
            "teams": "teams", "stale": "stale", "forced_unstale_by_user": "forced_unstale",
            "row_count": "row_count", "byte_size": "byte_size",
        }
        getters = {f: derived(f) for f in FIELDS}
        getters.update({f: attr(a) for f, a in direct.items()})
        # Timestamps: filters compare the ISO strings clients see.
        getters["created_at"] = lambda r: iso(r.created)
        getters["updated_at"] = lambda r: iso(r.updated)
        getters["external_updated_at"] = lambda r: iso(r.ext_updated)
        getters["title_full"] = self.title_full
        getters["title_cased"] = lambda r: camel(r.title)
        getters["url"] = lambda r: f"https://app.secoda.co/{r.entity_type}/{r.id}"
        getters["workspace_id"] = lambda r: self.workspace_id
        return getters
