"""An in-memory Secoda workspace: generated data, thread-safe mutations, cached listings.

Pure Python (no Django). ``Workspace.generate(resources, seed, now)`` builds a deterministic,
realistic catalog (see ``generator`` for the mix); the HTTP emulator serves it.
"""
import copy
import json
import random
import threading
import time
import uuid
from collections import OrderedDict
from datetime import datetime, timezone

from . import filters
from .generator import CHILD_KIND, Builder
from .migration_pair import add_migration_pair
from .records import FIELDS, RecordView, Res, coerce_editable

CACHE_SIZE = 64


def _canon(obj):
    return None if obj is None else json.dumps(obj, sort_keys=True, separators=(",", ":"))


class Workspace:
    def __init__(self, seed=1, now=None):
        if now is None:
            now = datetime.now(timezone.utc)
        elif now.tzinfo is None:
            now = now.replace(tzinfo=timezone.utc)
        self.seed = seed
        self.now = now
        self.now_ts = now.timestamp()
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self.workspace_id = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        self._records = {}           # id -> Res, in creation order
        self._by_parent = {}         # parent id (None for roots) -> {id: Res}
        self._by_integration = {}    # integration id -> {id: Res}
        self._by_type = {}           # entity_type -> {id: Res}
        self._users, self._groups, self._teams, self._tags = [], [], [], []
        self._integrations, self._collections = [], []
        self._integration_types = {}
        self._dbt_tests = {}         # dbt integration id -> (warning ids, failing ids)
        self._cache = OrderedDict()  # (filter, sort, teams) -> tuple of ids
        self._indexes = {"parent": self._by_parent, "integration": self._by_integration,
                         "entity_type": self._by_type}
        self.view = RecordView(self.workspace_id, self._records, self._integration_types)
        self._known = set(self.view.getters)
        self._builder = None

    # A workspace pickles (the tests keep one copy of each they generate and hand out copies): its lock, its
    # listing cache and its view (per-field getters, rebuilt from the records) are made again.
    _UNPICKLED = ("_lock", "_cache", "view", "_known")

    def __getstate__(self):
        return {key: value for key, value in self.__dict__.items() if key not in self._UNPICKLED}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.RLock()
        self._cache = OrderedDict()
        self.view = RecordView(self.workspace_id, self._records, self._integration_types)
        self._known = set(self.view.getters)

    @classmethod
    def generate(cls, resources, seed=1, now=None, migration_pair=False, dbt_models=0.0):
        """`migration_pair` adds an old and a new warehouse for "Migrate documentation" (see migration_pair)
        after the `resources`, leaving them as they are without it. `dbt_models`: the share of the resources
        that are dbt models of Snowflake tables (none by default)."""
        ws = cls(seed=seed, now=now)
        ws._builder = Builder(ws)
        ws._builder.build(max(0, int(resources)), dbt_models=dbt_models)
        if migration_pair:
            add_migration_pair(ws)
        return ws

    @staticmethod
    def clock():
        return time.time()

    # ------------------------------------------------------------------ bookkeeping
    def _insert(self, rec):
        self._records[rec.id] = rec
        pkey = rec.parent if rec.parent and rec.parent != "None" else None
        self._by_parent.setdefault(pkey, {})[rec.id] = rec
        self._by_integration.setdefault(rec.integration, {})[rec.id] = rec
        self._by_type.setdefault(rec.entity_type, {})[rec.id] = rec
        if pkey is not None and pkey in self._records:
            self._records[pkey].children_count += 1
        self._cache.clear()

    def _remove(self, rec):
        del self._records[rec.id]
        pkey = rec.parent if rec.parent and rec.parent != "None" else None
        self._by_parent.get(pkey, {}).pop(rec.id, None)
        self._by_integration.get(rec.integration, {}).pop(rec.id, None)
        self._by_type.get(rec.entity_type, {}).pop(rec.id, None)
        parent = self._records.get(pkey) if pkey else None
        if parent is not None:
            parent.children_count = max(0, parent.children_count - 1)
        self._cache.clear()

    def _touch(self, rec):
        rec.updated = self.clock()
        self._cache.clear()

    def _lookup(self, field, key):
        index = self._indexes.get(field)
        if index is None:
            return None
        try:
            found = index.get(key)
        except TypeError:
            return None
        return found.values() if found else ()

    # ------------------------------------------------------------------ reads
    def get(self, resource_id):
        with self._lock:
            rec = self._records.get(resource_id) if isinstance(resource_id, str) else None
            return self.view.to_dict(rec) if rec is not None else None

    def records(self, ids):
        """Serialized records for ids (unknown ids skipped), in the order given."""
        with self._lock:
            out = []
            for rid in ids:
                rec = self._records.get(rid)
                if rec is not None:
                    out.append(self.view.to_dict(rec))
            return out

    def resource_count(self):
        return len(self._records)

    def ids(self, filter=None):
        """Ids in creation order; ``filter`` is a Secoda filter object or a callable(record dict)."""
        with self._lock:
            if filter is None:
                return list(self._records)
            if callable(filter):
                return [rid for rid, rec in self._records.items() if filter(self.view.to_dict(rec))]
            pred = filters.compile_filter(filters.parse_filter(filter, self._known), self.view.getters)
            return [rid for rid, rec in self._records.items() if pred(rec)]

    def children_counts(self):
        """{parent id: number of resources whose parent it is} (roots excluded)."""
        with self._lock:
            return {k: len(v) for k, v in self._by_parent.items() if k is not None and v}

    def list_resources(self, filter_obj=None, sort_obj=None, teams=None):
        """Ids matching the filter, sorted; cached per (filter, sort, teams) until a mutation.

        Raises ValueError for a malformed filter or sort (unknown operator or field...).
        """
        if filter_obj == {}:
            filter_obj = None
        key = (_canon(filter_obj), _canon(sort_obj), teams or None)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
            getters = self.view.getters
            keys = filters.parse_sort(sort_obj, self._known)
            if filter_obj is None:
                recs = list(self._records.values())
            else:
                tree = filters.parse_filter(filter_obj, self._known)
                buckets = filters.candidates(tree, self._lookup)
                pool = self._records.values() if buckets is None else filters.union(buckets)
                pred = filters.compile_filter(tree, getters)
                recs = [r for r in pool if pred(r)]
            if teams:
                recs = [r for r in recs if teams in r.teams]
            ids = tuple(r.id for r in filters.sort_records(recs, keys, self.view.sort_getters))
            self._cache[key] = ids
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
            return ids

    # ------------------------------------------------------------------ people, labels, integrations
    def users(self):
        return copy.deepcopy(self._users)

    def groups(self):
        return copy.deepcopy(self._groups)

    def teams(self):
        return copy.deepcopy(self._teams)

    def tags(self):
        return copy.deepcopy(self._tags)

    def collections(self):
        return list(self._collections)

    def integrations(self, type=None):
        found = [i for i in self._integrations if type is None or i["type"].lower() == str(type).lower()]
        return copy.deepcopy(found)

    def integration(self, integration_id):
        found = [i for i in self._integrations if i["id"] == integration_id]
        return copy.deepcopy(found[0]) if found else None

    def integration_id(self, type):
        """Id of the first integration of a type ("snowflake", "dbt_cloud"...), or None."""
        return next((i["id"] for i in self._integrations if i["type"] == type), None)

    def failing_tests(self, integration_id):
        """{"warning": [ids], "failing": [ids]} for a dbt integration; None otherwise."""
        if "dbt" not in self._integration_types.get(integration_id, ""):
            return None
        warning, failing = self._dbt_tests.get(integration_id, ((), ()))
        with self._lock:
            return {"warning": [i for i in warning if i in self._records],
                    "failing": [i for i in failing if i in self._records]}

    # ------------------------------------------------------------------ writes
    def create(self, record_fields):
        """Create a resource from POSTed fields; returns the serialized record."""
        if not isinstance(record_fields, dict):
            raise ValueError("the body must be a JSON object")
        editable = coerce_editable(record_fields)
        title = record_fields.get("title", "Untitled")
        entity_type = record_fields.get("entity_type") or "resource"
        native_type = record_fields.get("native_type") or entity_type
        for name, value in (("title", title), ("entity_type", entity_type), ("native_type", native_type)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"'{name}' must be a non-empty string")
        with self._lock:
            parent_id = record_fields.get("parent")
            parent = None
            if parent_id not in (None, "", "None"):
                parent = self._records.get(parent_id) if isinstance(parent_id, str) else None
                if parent is None:
                    raise ValueError(f"parent {parent_id!r} does not exist")
            integration = record_fields.get("integration") or (parent.integration if parent else None)
            if integration is not None and not isinstance(integration, str):
                raise ValueError("'integration' must be an id string")
            now = self.clock()
            rec = Res(
                id=str(uuid.uuid4()), entity_type=entity_type, native_type=native_type, title=title,
                description=editable.get("description", ""), definition=editable.get("definition", ""),
                definition_version=1 if editable.get("definition") else 0,
                parent=parent.id if parent else None, integration=integration, children_count=0,
                created=now, updated=now, ext_updated=None, stale=False, stale_at=None,
                forced_unstale=False, archived=False, archived_at=None,
                owners=editable.get("owners", ()), owners_groups=editable.get("owners_groups", ()),
                collections=editable.get("collections", ()), tags=editable.get("tags", ()),
                teams=editable.get("teams", ()), subscribers=editable.get("subscribers", ()),
                bookmarked_by=(), internal_users=(), external_users=(), sources=(),
                pii=editable.get("pii", False), verified=editable.get("verified", False),
                published=editable.get("published", True), internal_usage=0, external_usage=None,
                row_count=None, byte_size=None, style=0,
            )
            self._insert(rec)
            return self.view.to_dict(rec)

    def _apply(self, rec, editable):
        for name, value in editable.items():
            setattr(rec, name, value)
        if "definition" in editable:
            rec.definition_version = (rec.definition_version or 0) + 1
        self._touch(rec)

    def patch(self, resource_id, fields):
        """Set editable fields (others ignored); returns the record, or None for an unknown id."""
        editable = coerce_editable(fields)
        with self._lock:
            rec = self._records.get(resource_id) if isinstance(resource_id, str) else None
            if rec is None:
                return None
            if editable:
                self._apply(rec, editable)
            return self.view.to_dict(rec)

    def bulk_update(self, entries):
        """Apply [{"id", "data"}] entries; validates all first. Returns the ids updated."""
        if not isinstance(entries, list):
            raise ValueError("the body must be a JSON array of {\"id\", \"data\"} objects")
        checked = []
        for n, entry in enumerate(entries):
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) \
                    or not isinstance(entry.get("data"), dict):
                raise ValueError(f"entry {n} must be an object with a string 'id' and an object 'data'")
            try:
                checked.append((entry["id"], coerce_editable(entry["data"])))
            except ValueError as exc:
                raise ValueError(f"entry {n}: {exc}") from None
        updated = []
        with self._lock:
            for rid, editable in checked:
                rec = self._records.get(rid)
                if rec is None:
                    continue
                self._apply(rec, editable)
                updated.append(rid)
        return updated

    def delete(self, resource_id):
        """Delete one resource (its children are kept, pointing at a missing parent)."""
        with self._lock:
            rec = self._records.get(resource_id) if isinstance(resource_id, str) else None
            if rec is None:
                return False
            self._remove(rec)
            return True

    def move(self, resource_id, new_parent_id):
        """Move a resource under another parent (as a re-extraction would); returns the record."""
        with self._lock:
            rec = self._records[resource_id]
            self._remove(rec)
            rec.parent = new_parent_id
            self._insert(rec)
            self._touch(rec)
            return self.view.to_dict(rec)

    def set_owners(self, resource_id, users, groups=()):
        return self.patch(resource_id, {"owners": list(users), "owners_groups": list(groups)})

    def set_description(self, resource_id, text):
        return self.patch(resource_id, {"description": text})

    def add_resources(self, n, integration_id=None, parent_id=None):
        """Add n generated resources (created now); returns their ids.

        With parent_id: children of that resource. Otherwise, spread over the integration's
        (default Snowflake) containers: tables into schemas, charts into dashboards, tasks into
        DAGs; root jobs for dbt.
        """
        with self._lock:
            builder = self._builder
            if builder is None:
                raise ValueError("add_resources needs a workspace made by Workspace.generate")
            if parent_id is not None:
                parent = self._records.get(parent_id)
                if parent is None:
                    raise ValueError(f"parent {parent_id!r} does not exist")
                containers, integration = [parent], parent.integration
            else:
                integration = integration_id or self.integration_id("snowflake")
                kind = self._integration_types.get(integration)
                if kind is None:
                    raise ValueError(f"integration {integration_id!r} does not exist")
                want = {"snowflake": "schema", "postgres": "schema", "tableau": "dashboard",
                        "looker": "dashboard", "airflow": "dag", "segment": "event_category"}.get(kind)
                containers = [r for r in self._by_integration.get(integration, {}).values()
                              if want in (r.entity_type, r.native_type)] if want else []
            root = {"snowflake": "database", "postgres": "database", "tableau": "dashboard",
                    "looker": "dashboard", "segment": "event_category"}.get(self._integration_types.get(integration), "job")
            added = []
            for i in range(int(n)):
                parent = containers[i % len(containers)] if containers else None
                added.append(self._add_one(builder, parent, integration, root).id)
            return added

    def _add_one(self, builder, parent, integration, root="job"):
        if parent is None:
            kind, native = root, root
        elif parent.native_type == "dag":
            kind, native = "job", "task"
        else:
            kind = CHILD_KIND.get(parent.entity_type, parent.entity_type)
            native = {"chart": "sheet"}.get(kind, kind)
        used = {r.title for r in (self._by_parent.get(parent.id if parent else None) or {}).values()}
        title = f"new_{kind}_{len(used) + 1}"
        while title in used:
            title += "_x"
        profile = builder.profile()
        return builder.make(kind, native, title, parent, integration, profile, fresh=True,
                            pii="email" in title)

    def summary(self):
        with self._lock:
            return {"resources": len(self._records), "integrations": len(self._integrations),
                    "users": len(self._users), "groups": len(self._groups), "teams": len(self._teams),
                    "tags": len(self._tags)}


__all__ = ["Workspace", "FIELDS"]
