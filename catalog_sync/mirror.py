"""Batched writes into the mirror. No row-by-row saves: a batch of resources
costs a handful of queries however large it is. On PostgreSQL a batch goes
through COPY into a staging table and one INSERT ... ON CONFLICT; elsewhere
through the ORM's bulk upsert."""
import hashlib
import json
from contextlib import contextmanager

from django.db import connection, transaction
from django.utils import timezone

from catalog_sync import normalize
from catalog_sync.models import Resource, ResourceChange, ResourceRef

# Fields a sync never writes: the dashboard derives the health score and "open since" after each sync.
DERIVED_ELSEWHERE = ("health_score", "issues_open_since", "issues_open_since_seen")
RESOURCE_UPDATE_FIELDS = [
    f.name for f in Resource._meta.concrete_fields
    if f.name not in ("id", "first_seen_at", *DERIVED_ELSEWHERE)
]


class ResourceWriter:
    """Buffers resource records and upserts them in batches.

    A record whose stored values did not change only gets its `last_seen_run`
    bumped; new and changed ones are upserted with their owner/tag/team refs.
    """

    def __init__(self, run_id, batch_size=500, on_flush=None, keep_seen=False, ours=()):
        self.run_id = run_id
        # Ids whose change is our own write read back (a bulk edit's): not history "seen in Secoda".
        self.ours = frozenset(ours)
        # Records read outside a sync (a bulk edit's re-reads): stored, but each row keeps the sync that last
        # listed it, so a sweep running meanwhile still knows what it listed.
        self.keep_seen = keep_seen
        self.batch_size = batch_size
        self.on_flush = on_flush
        self.buffer = {}
        self.fetched = self.created = self.updated = self.unchanged = 0

    def add(self, records):
        buffer, clean_id = self.buffer, normalize.clean_id
        for record in records:
            resource_id = record.get("id")
            if resource_id.__class__ is not str or not 0 < len(resource_id) <= 64 or resource_id != resource_id.strip():
                resource_id = clean_id(resource_id)  # the usual id (a short, trimmed string) is already clean
                if resource_id is None:
                    continue
            elif len(resource_id) < 12 and resource_id in _ABSENT_IDS:
                continue
            self.fetched += 1
            buffer[resource_id] = record
            if len(buffer) >= self.batch_size:
                self.flush()
                buffer = self.buffer

    def flush(self):
        if not self.buffer:
            return
        rows, lines, hashes = {}, {}, {}
        for resource_id, record in self.buffer.items():
            if record.get("id") != resource_id:
                record = {**record, "id": resource_id}
            row = rows[resource_id] = normalize.resource_row(record)
            line = lines[resource_id] = _stored_text(row)
            hashes[resource_id] = row_hash(line)
        self.buffer = {}
        postgres = connection.vendor == "postgresql"
        if postgres:
            with by_index(), connection.cursor() as cursor:
                cursor.execute(f"SELECT id, content_hash FROM {Resource._meta.db_table} WHERE id = ANY(%s)",
                               [list(rows)])
                existing = dict(cursor.fetchall())
        else:
            existing = dict(Resource.objects.filter(id__in=list(rows)).values_list("id", "content_hash"))
        changed, unchanged = [], []
        for rid, content_hash in hashes.items():
            stored = existing.get(rid)
            if stored == content_hash:
                unchanged.append(rid)
            else:
                changed.append(rid)
        now = timezone.now()
        seen_changes = watched_changes(
            {rid: rows[rid] for rid in changed if rid in existing and rid not in self.ours}, self.run_id, now)
        relaxed_commit = postgres and not connection.in_atomic_block
        with transaction.atomic():
            if relaxed_commit:
                with connection.cursor() as cursor:
                    # A commit lost in a crash only loses rows the next sync writes again.
                    cursor.execute("SET LOCAL synchronous_commit = off")
            if changed:
                if postgres:
                    copy_upsert([lines[rid] + "\t" + hashes[rid] for rid in changed], now, self.run_id,
                                keep_seen=self.keep_seen)
                else:
                    Resource.objects.bulk_create(
                        [Resource(**rows[rid], content_hash=hashes[rid], changed_at=now, first_seen_at=now,
                                  last_seen_run=self.run_id, removed_at=None) for rid in changed],
                        update_conflicts=True, unique_fields=["id"],
                        update_fields=[f for f in RESOURCE_UPDATE_FIELDS
                                       if not (self.keep_seen and f == "last_seen_run")],
                    )
                # Every changed id, new ones too: another worker may have written the same resource since
                # we looked (the upsert above waited for its row lock), and its refs must not collide with ours.
                replace_refs({rid: rows[rid] for rid in changed}, changed)
                if seen_changes:
                    ResourceChange.objects.bulk_create(seen_changes)
            if unchanged and not self.keep_seen:
                if postgres:
                    with by_index(), connection.cursor() as cursor:
                        cursor.execute(
                            f"UPDATE {Resource._meta.db_table} SET last_seen_run = %s, removed_at = NULL "
                            "WHERE id = ANY(%s)", [self.run_id, unchanged])
                else:
                    Resource.objects.filter(id__in=unchanged).update(last_seen_run=self.run_id, removed_at=None)
        created = sum(1 for rid in changed if rid not in existing)
        self.created += created
        self.updated += len(changed) - created
        self.unchanged += len(unchanged)
        if self.on_flush:
            self.on_flush(self)


_ABSENT_IDS = frozenset(("None", "null"))
_SYNCED_FIELDS = [f for f in Resource._meta.concrete_fields if f.name not in DERIVED_ELSEWHERE]
_COLUMNS = [f.column for f in _SYNCED_FIELDS]
_ATTNAMES = [f.attname for f in _SYNCED_FIELDS]
_JSON_COLUMNS = {f.attname for f in Resource._meta.concrete_fields if f.get_internal_type() == "JSONField"}
# Bookkeeping columns: not part of a row's content (nor of its hash).
_BOOKKEEPING = ("content_hash", "changed_at", "first_seen_at", "last_seen_run", "removed_at")
# The fields `normalize.resource_row` returns, in the order the staging COPY takes them.
_CONTENT_FIELDS = [f for f in _SYNCED_FIELDS if f.attname not in _BOOKKEEPING]
HASH_PREFIX = "v2"  # every stored hash has it: a row from before hashes had it is written again once


def json_text(value):
    """JSON for a column value; a quick path for the common list of plain ids."""
    if value.__class__ is list and all(
            item.__class__ is str and '"' not in item and "\\" not in item and item.isprintable() for item in value):
        return '["' + '","'.join(value) + '"]' if value else "[]"
    return json.dumps(value)


def _copy_text(value):
    """A string as a field of PostgreSQL's COPY text format."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


def _copy_nullable_text(value):
    return "\\N" if value is None else _copy_text(value)


def _copy_int(value):
    return "\\N" if value is None else str(int(value))


def _copy_when(value):
    return "\\N" if value is None else value.isoformat()


def _copy_json(value):
    if value.__class__ is list and not value:
        return "[]"
    return _copy_text(json_text(value))


def _compile_stored_text():
    """`_stored_text(row)`: a row's content fields as one line of COPY text (also what its hash covers)."""
    parts = []
    for field in _CONTENT_FIELDS:
        kind = field.get_internal_type()
        value = f"row[{field.attname!r}]"
        if kind == "JSONField":
            parts.append(f"j({value})")
        elif kind == "BooleanField":
            parts.append(f"('t' if {value} else 'f')")
        elif kind in ("IntegerField", "BigIntegerField", "SmallIntegerField", "PositiveIntegerField"):
            parts.append(f"n({value})")
        elif kind == "DateTimeField":
            parts.append(f"d({value})")
        elif kind in ("CharField", "TextField", "ForeignKey"):
            parts.append(f"s({value})" if field.null else f"t({value})")
        else:
            raise TypeError(f"No COPY text for {field.attname} ({kind})")
    source = "def _stored_text(row):\n    return '\\t'.join((" + ", ".join(parts) + ",))\n"
    namespace = {"j": _copy_json, "n": _copy_int, "d": _copy_when, "s": _copy_nullable_text, "t": _copy_text}
    exec(source, namespace)
    return namespace["_stored_text"]


_stored_text = _compile_stored_text()


def row_hash(line):
    """The content hash of a row from its COPY text (see `_stored_text`)."""
    return HASH_PREFIX + hashlib.blake2b(line.encode(), digest_size=19).hexdigest()


_STAGE_COLUMNS = [f.column for f in _CONTENT_FIELDS] + ["content_hash"]


def copy_upsert(lines, now, run_id, keep_seen=False):
    """PostgreSQL: COPY the rows (content fields and hash, as COPY text lines) into a per-connection
    staging table, then upsert them in one statement with their bookkeeping values."""
    table = Resource._meta.db_table
    stage_columns = ", ".join(f'"{c}"' for c in _STAGE_COLUMNS)
    kept = ("id", "first_seen_at", "last_seen_run") if keep_seen else ("id", "first_seen_at")
    updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in _COLUMNS if c not in kept)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS resource_stage_v2 AS "
                       f"SELECT {stage_columns} FROM {table} WITH NO DATA")
        cursor.execute("TRUNCATE resource_stage_v2")
        # COPY goes to psycopg's own cursor: its errors are made Django's here, so a connection the server
        # dropped is known as one (retried, and closed before the next query) and not as a bug.
        with connection.wrap_database_errors, \
                cursor.cursor.copy(f"COPY resource_stage_v2 ({stage_columns}) FROM STDIN") as copy:
            copy.write("\n".join(lines) + "\n")
        cursor.execute(
            f'INSERT INTO {table} ({stage_columns}, "changed_at", "first_seen_at", "last_seen_run", "removed_at") '
            # In id order: two workers writing overlapping batches lock rows in the same order (no deadlock).
            f"SELECT {stage_columns}, %s, %s, %s, NULL FROM resource_stage_v2 ORDER BY id "
            f"ON CONFLICT (id) DO UPDATE SET {updates}",
            [now, now, run_id])


def watched_changes(rows, run_id, now):
    """ResourceChange rows for the stored resources whose watched fields differ from `rows` (read before
    the upsert overwrites them; a batch with nothing changed costs no query)."""
    if not rows:
        return []
    fields = ResourceChange.WATCHED
    changes = []
    with by_index():
        stored = list(Resource.objects.filter(pk__in=list(rows)).values("id", *fields))
    for before in stored:
        after = rows[before["id"]]
        diff = {f: [before[f], after[f]] for f in fields if not same(before[f], after.get(f, before[f]))}
        if diff:
            changes.append(ResourceChange(resource_id=before["id"], sync_run_id=run_id, at=now, changes=diff))
    return changes


def same(left, right):
    """Lists (owners, tags, teams) are the same whatever their order."""
    if isinstance(left, list) and isinstance(right, list):
        return sorted(map(str, left)) == sorted(map(str, right))
    return left == right


@contextmanager
def by_index():
    """PostgreSQL: the statements inside, each on a batch of keys, go through the keys' indexes whatever the
    planner's statistics say (in a transaction of their own, or a savepoint). A sweep into an empty mirror
    writes a million rows before anything analyzes them (autovacuum may be off or behind): to a planner that
    has never seen the tables, 1,000 ids look like most of the table, and each batch read every row stored so
    far (the reference deletes of one sweep of 1,000,000 read 2 billion rows, twice PostgreSQL's CPU for the
    whole sweep). Elsewhere (SQLite) nothing changes, and no transaction is opened for a read."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('enable_seqscan'), set_config('enable_seqscan', 'off', true)")
            before = cursor.fetchone()[0]
        yield
        with connection.cursor() as cursor:  # not reached on an error: the rollback undoes the setting
            cursor.execute("SELECT set_config('enable_seqscan', %s, true)", [before])


def replace_refs(rows, previously_stored):
    if previously_stored:
        with by_index():
            ResourceRef.objects.filter(resource_id__in=previously_stored).delete()
    refs = [
        (rid, kind, ref_id)
        for rid, row in rows.items()
        for kind, field in ResourceRef.LIST_FIELDS.items()
        for ref_id in row[field]
    ]
    if connection.vendor == "postgresql":
        if not refs:
            return
        with connection.cursor() as cursor, connection.wrap_database_errors:  # as in copy_upsert
            with cursor.cursor.copy(f"COPY {ResourceRef._meta.db_table} (resource_id, kind, ref_id) FROM STDIN") as copy:
                copy.write("".join(
                    f"{_copy_text(rid)}\t{kind}\t{_copy_text(ref_id)}\n" for rid, kind, ref_id in refs))
    else:
        ResourceRef.objects.bulk_create(
            [ResourceRef(resource_id=rid, kind=kind, ref_id=ref_id) for rid, kind, ref_id in refs],
            ignore_conflicts=True,
        )


def upsert_simple(model, rows, run_id):
    """Upsert a small, complete listing (integrations, users, groups, teams, tags)."""
    if not rows:
        return 0
    by_id = {row["id"]: row for row in rows}
    fields = [name for name in next(iter(by_id.values())) if name != "id"] + ["last_seen_run", "removed_at"]
    model.objects.bulk_create(
        [model(**row, last_seen_run=run_id, removed_at=None) for row in by_id.values()],
        update_conflicts=True, unique_fields=["id"], update_fields=fields,
    )
    return len(by_id)


def refresh_planner_statistics(models=(Resource, ResourceRef)):
    """PostgreSQL: after many rows of `models` were written, refresh the planner's statistics now rather than
    waiting for autovacuum (stale statistics turn 80 ms issue lists into 300 ms ones)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f"ANALYZE {model._meta.db_table}")
