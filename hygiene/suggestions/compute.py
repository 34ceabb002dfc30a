"""Suggestions, computed set-wise in the database: two INSERT … SELECT statements (owners, descriptions) over
the whole mirror after every sync and change set, never a loop over resources in Python.

Only resources the rule flags get suggestions (in scope, and unowned or undocumented), and only present,
enabled Secoda people and present groups are suggested as owners. The heuristics, each a row of evidence:

Owners (for an unowned resource)
- parent       80  its parent's owners (a schema's for its tables, a table's for its columns, a dashboard's
                   for its charts).
- siblings     60-90  an owner that at least two thirds of its owned siblings (same parent, same type) share,
                   at least two of them: 60 + 30 × (3 × agreeing − 2 × owned) ÷ owned, rounded down (60 at two
                   thirds, 90 when all agree), then 5 less for each owned sibling under five (two who agree: 75).
- counterpart  85  the owners of the resource with the same path in another integration when the two are
                   linked (either side is dbt, or one lists the other's integration in its `sources`: a dbt
                   model and its warehouse table); 70 for the same path in an unlinked integration.
- usage        50  its most frequent user among Secoda people: `internal_users` and `external_users` entries
                   that are a person's id or e-mail, counted over the resource and its children; 40 each when
                   two or three people tie (more than three: no suggestion).
Descriptions (for an undocumented resource)
- propagation  the description most documented resources of its name and type (columns, event properties)
               agree on elsewhere: at least two, and at least two thirds of them. Confidence grows with the
               agreement count and shrinks with dissent: min(90, 40 + 10 × agreeing) × agreeing ÷ documented,
               rounded down (2 of 2: 60, 3 of 3: 70, 5 of 5: 90, 4 of 5: 64, 3 of 4: 52).
- counterpart  85 / 70  the description of its counterpart (as for owners).

One suggestion per resource, kind and value: when several kinds of evidence point to the same value, their
reasons are joined (strongest first) and the confidence is the strongest one's plus 5 for each other kind, at
most 95 (a suggestion is never certain). A rejected value (`RejectedSuggestion`) is never suggested again.

How: the mirror in scope is copied once into a temporary table with the few columns the evidence reads, and
analyzed, so the planner joins on real row counts (hash joins, not a probe per row); the new suggestions go to a
second temporary table, and only the difference is written: most suggestions survive a sync unchanged, and keep
their row and `computed_at`.
"""
import time

from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from catalog_sync.filters import TYPE_ORDER
from catalog_sync.models import Integration, Resource, ResourceRef, SecodaGroup, SecodaUser
from hygiene.rules import in_scope
from hygiene.suggestions.models import RejectedSuggestion, Suggestion

PROPAGATED_TYPES = ("column", "event_property")  # names that mean the same thing wherever they appear
MAX_CONFIDENCE = 95
CORROBORATION = 5  # added for each other kind of evidence pointing to the same value
# Temporary tables, dropped at the end of the transaction.
SCOPE = "suggest_scope"  # the mirror in scope: the columns the evidence reads
OWNED = "suggest_owned"  # who owns what, among the people a suggestion may name
FRESH = "suggest_fresh"  # this computation's suggestions, before they replace the stored ones
LOCK_KEY = 0x5355_4747  # PostgreSQL advisory lock: "SUGG"


def _table(model):
    return connection.ops.quote_name(model._meta.db_table)


def type_words(column, plural=False):
    """SQL for an entity type in words ("event property", or "event properties")."""
    cases = " ".join(f"WHEN '{name}' THEN '{words(name, plural)}'" for name in TYPE_ORDER)
    fallback = f"REPLACE({column}, '_', ' ')" + (" || 's'" if plural else "")
    return f"CASE {column} {cases} ELSE {fallback} END"


def words(entity_type, plural=False):
    text = entity_type.replace("_", " ")
    if not plural:
        return text
    return text[:-1] + "ies" if text.endswith("y") else text + "s"


def _elements(column, alias):
    """A join that yields one row per element of a JSON list column, as `alias.value` (text)."""
    if connection.vendor == "postgresql":
        return f"CROSS JOIN LATERAL jsonb_array_elements_text({column}) AS {alias}(value)"
    return f"CROSS JOIN json_each({column}) AS {alias}"


def _lists(column, value):
    """SQL: the JSON list `column` holds the text `value`."""
    if connection.vendor == "postgresql":
        return f"{column} @> jsonb_build_array({value})"
    return f"EXISTS (SELECT 1 FROM json_each({column}) AS listed WHERE listed.value = {value})"


def _joined(expression, separator):
    """SQL aggregate joining `expression` strongest evidence first (rows come ordered on SQLite, whose
    group_concat takes no ORDER BY before 3.44)."""
    if connection.vendor == "postgresql":
        return f"string_agg({expression}, '{separator}' ORDER BY e.confidence DESC, e.source)"
    return f"group_concat({expression}, '{separator}')"


def _path(alias):
    return f"COALESCE(NULLIF({alias}.title_full, ''), NULLIF({alias}.title, ''), {alias}.id)"


def _tables():
    return {"resource": _table(Resource), "ref": _table(ResourceRef), "user": _table(SecodaUser),
            "group": _table(SecodaGroup), "integration": _table(Integration), "suggestion": _table(Suggestion),
            "rejected": _table(RejectedSuggestion)}


def _people():
    """SQL: the owners a suggestion may name ('user:<id>', 'group:<id>') with their names: present people who
    are not disabled, present groups."""
    t = _tables()
    name = "COALESCE(NULLIF(TRIM(u.first_name || ' ' || u.last_name), ''), NULLIF(u.email, ''), u.id)"
    return f"""
      SELECT 'user:' || u.id AS owner, {name} AS name
        FROM {t['user']} u WHERE u.removed_at IS NULL AND u.disabled = false
      UNION ALL
      SELECT 'group:' || g.id, COALESCE(NULLIF(g.name, ''), g.id) || ' (group)'
        FROM {t['group']} g WHERE g.removed_at IS NULL"""


# What Python's str.strip() takes off that SQL's TRIM() does not (is_documented strips it): a description of
# line breaks alone is blank, and never suggested.
WHITESPACE = " \t\n\r\x0b\x0c\u00a0"


def _trimmed(column):
    """SQL: `column` without the whitespace around it."""
    function = "BTRIM" if connection.vendor == "postgresql" else "TRIM"
    return f"{function}({column}, '{WHITESPACE}')"


def hold_lock(cursor):
    """PostgreSQL: wait for a computation running now and keep others out until this transaction ends."""
    if connection.vendor == "postgresql":
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])


def scope_sql():
    t = _tables()
    return f"""
      SELECT r.id, r.parent_id, r.integration_id, r.entity_type, r.title, r.title_full,
             LOWER(r.title_full) AS path, r.is_owned, r.is_documented, {_trimmed('r.description')} AS description,
             r.sources, r.internal_users, r.external_users
        FROM {t['resource']} r WHERE r.removed_at IS NULL AND r.archived = false"""


def owned_sql():
    t = _tables()
    return f"""
      SELECT x.resource_id, pe.owner, pe.name
        FROM {t['ref']} x
        JOIN ({_people()}) pe ON pe.owner = CASE x.kind WHEN 'owner' THEN 'user:' ELSE 'group:' END || x.ref_id
       WHERE x.kind IN ('owner', 'owner_group')"""


def _counterparts(flag, condition, joins=""):
    """FROM clause: each resource `f` the rule flags (`flag`) with a resource `c` in scope of the same path in
    another integration (`ci`: its integration; `fi`: the flagged one's), plus `joins`. A path has a dot: a
    bare name matches nothing."""
    t = _tables()
    return f"""
      FROM {SCOPE} f
      JOIN {SCOPE} c ON c.path = f.path AND c.id <> f.id
           AND COALESCE(c.integration_id, '') <> COALESCE(f.integration_id, '') AND {condition}
      LEFT JOIN {t['integration']} ci ON ci.id = c.integration_id
      LEFT JOIN {t['integration']} fi ON fi.id = f.integration_id
      {joins}
      WHERE {flag} AND f.path LIKE '%%.%%'"""


def _counterpart_confidence():
    """85 when the two are linked (dbt on either side, or one's `sources` names the other's integration), else 70."""
    linked = (f"LOWER(COALESCE(ci.type, '')) LIKE '%%dbt%%' OR LOWER(COALESCE(fi.type, '')) LIKE '%%dbt%%' "
              f"OR {_lists('f.sources', 'c.integration_id')} OR {_lists('c.sources', 'f.integration_id')}")
    return f"CASE WHEN {linked} THEN 85 ELSE 70 END"


def _counterpart_words(what):
    return (f"'Its counterpart ' || c.title_full || ' in ' || COALESCE(NULLIF(ci.name, ''), 'another integration') "
            f"|| ' ' || {what}")


def _insert(kind, evidence_sql, value):
    """The INSERT that turns rows of evidence (resource_id, <value>, source, confidence, reason) into one fresh
    suggestion per resource and value, leaving out rejected ones."""
    ordered = "(SELECT * FROM evidence ORDER BY confidence DESC, source)" if connection.vendor != "postgresql" \
        else "evidence"
    boost = f"MAX(e.confidence) + {CORROBORATION} * (COUNT(DISTINCT e.source) - 1)"
    return f"""
    {evidence_sql}
    INSERT INTO {FRESH} (resource_id, kind, value, value_key, reason, evidence, confidence)
    SELECT e.resource_id, '{kind}', e.{value}, MD5(e.{value}),
           {_joined('e.reason', '. ')}, {_joined('e.source', ',')},
           CASE WHEN {boost} > {MAX_CONFIDENCE} THEN {MAX_CONFIDENCE} ELSE {boost} END
      FROM {ordered} e
     WHERE NOT EXISTS (SELECT 1 FROM {_tables()['rejected']} j
                        WHERE j.resource_id = e.resource_id AND j.kind = '{kind}' AND j.value_key = MD5(e.{value}))
     GROUP BY e.resource_id, e.{value}"""


def owner_sql():
    sibling_conf = "60 + (30 * (3 * so.n - 2 * s.owned)) / s.owned - CASE WHEN s.owned < 5 THEN 5 * (5 - s.owned) ELSE 0 END"
    unowned = "f.is_owned = false"
    evidence = f"""
    WITH parent AS (
      SELECT f.id AS resource_id, o.owner, 'parent' AS source, 80 AS confidence,
             'Its ' || {type_words('p.entity_type')} || ' ' || {_path('p')} || ' is owned by ' || o.name AS reason
        FROM {SCOPE} f
        JOIN {SCOPE} p ON p.id = f.parent_id
        JOIN {OWNED} o ON o.resource_id = p.id
       WHERE {unowned}
    ), sibling_owned AS (
      SELECT parent_id, entity_type, COUNT(*) AS owned
        FROM {SCOPE} WHERE is_owned = true AND parent_id IS NOT NULL
       GROUP BY parent_id, entity_type HAVING COUNT(*) >= 2
    ), sibling_owner AS (
      SELECT c.parent_id, c.entity_type, o.owner, o.name, COUNT(*) AS n
        FROM {SCOPE} c JOIN {OWNED} o ON o.resource_id = c.id
       WHERE c.parent_id IS NOT NULL
       GROUP BY c.parent_id, c.entity_type, o.owner, o.name
    ), siblings AS (
      SELECT f.id AS resource_id, so.owner, 'siblings' AS source, {sibling_conf} AS confidence,
             CASE WHEN so.n = s.owned AND s.owned = 2 THEN 'Both'
                  WHEN so.n = s.owned THEN 'All ' || s.owned
                  ELSE so.n || ' of the ' || s.owned END
             || ' owned ' || {type_words('f.entity_type', plural=True)}
             || COALESCE(' in ' || {type_words('p.entity_type')} || ' ' || {_path('p')}, ' beside it')
             || ' are owned by ' || so.name AS reason
        FROM {SCOPE} f
        JOIN sibling_owned s ON s.parent_id = f.parent_id AND s.entity_type = f.entity_type
        JOIN sibling_owner so ON so.parent_id = f.parent_id AND so.entity_type = f.entity_type
             AND 3 * so.n >= 2 * s.owned
        LEFT JOIN {SCOPE} p ON p.id = f.parent_id
       WHERE {unowned}
    ), counterpart AS (
      SELECT f.id AS resource_id, o.owner, 'counterpart' AS source,
             {_counterpart_confidence()} AS confidence,
             {_counterpart_words("'is owned by ' || o.name")} AS reason
      {_counterparts(unowned, 'c.is_owned = true', joins=f'JOIN {OWNED} o ON o.resource_id = c.id')}
    ), people AS ({_people()}
    ), user_keys AS (  -- how a usage entry can name a person: their id or e-mail (one person each)
      SELECT key, MIN(owner) AS owner FROM (
        SELECT LOWER(SUBSTR(owner, 6)) AS key, owner FROM people WHERE owner LIKE 'user:%%'
        UNION
        SELECT LOWER(u.email), 'user:' || u.id
          FROM {_tables()['user']} u WHERE u.removed_at IS NULL AND u.disabled = false AND u.email <> ''
      ) AS keys GROUP BY key HAVING COUNT(DISTINCT owner) = 1
    ), uses AS (
      SELECT f.id AS resource_id, e.value AS who FROM {SCOPE} f {_elements('f.internal_users', 'e')}
       WHERE {unowned}
      UNION ALL
      SELECT f.id, e.value FROM {SCOPE} f {_elements('f.external_users', 'e')} WHERE {unowned}
      UNION ALL
      SELECT f.id, e.value FROM {SCOPE} f JOIN {SCOPE} c ON c.parent_id = f.id {_elements('c.internal_users', 'e')}
       WHERE {unowned}
      UNION ALL
      SELECT f.id, e.value FROM {SCOPE} f JOIN {SCOPE} c ON c.parent_id = f.id {_elements('c.external_users', 'e')}
       WHERE {unowned}
    ), use_counts AS (
      SELECT u.resource_id, k.owner, COUNT(*) AS n
        FROM uses u JOIN user_keys k ON k.key = LOWER(u.who)
       GROUP BY u.resource_id, k.owner
    ), ranked AS (
      SELECT resource_id, owner, n, RANK() OVER (PARTITION BY resource_id ORDER BY n DESC) AS place,
             COUNT(*) OVER (PARTITION BY resource_id, n) AS tied
        FROM use_counts
    ), usage AS (
      SELECT r.resource_id, r.owner, 'usage' AS source, CASE WHEN r.tied = 1 THEN 50 ELSE 40 END AS confidence,
             pe.name || CASE WHEN r.tied = 1 THEN ' is its most frequent user'
                             ELSE ' is one of its ' || r.tied || ' most frequent users' END
             || ' (listed ' || CASE WHEN r.n = 1 THEN 'once' ELSE r.n || ' times' END
             || CASE WHEN r.tied = 1 THEN '' ELSE ' each' END
             || ' among the users of it and its children)' AS reason
        FROM ranked r JOIN people pe ON pe.owner = r.owner
       WHERE r.place = 1 AND r.tied <= 3
    ), evidence AS (
      SELECT * FROM parent UNION ALL SELECT * FROM siblings UNION ALL SELECT * FROM counterpart
      UNION ALL SELECT * FROM usage
    )"""
    return _insert(Suggestion.OWNER, evidence, "owner")


def description_sql():
    types = ", ".join(f"'{name}'" for name in PROPAGATED_TYPES)
    agreeing = "CASE WHEN 40 + 10 * d.n > 90 THEN 90 ELSE 40 + 10 * d.n END"
    undocumented = "f.is_documented = false"
    evidence = f"""
    WITH named AS (
      SELECT entity_type, LOWER(title) AS name, description, COUNT(*) AS n
        FROM {SCOPE} WHERE entity_type IN ({types}) AND description <> ''
       GROUP BY entity_type, LOWER(title), description
    ), named_total AS (
      SELECT entity_type, name, CAST(SUM(n) AS INTEGER) AS total FROM named GROUP BY entity_type, name
    ), propagation AS (
      SELECT f.id AS resource_id, d.description, 'propagation' AS source,
             {agreeing} * d.n / nt.total AS confidence,
             CASE WHEN d.n = nt.total AND d.n = 2 THEN 'Both'
                  WHEN d.n = nt.total THEN 'All ' || d.n
                  ELSE d.n || ' of the ' || nt.total END
             || ' documented ' || {type_words('f.entity_type', plural=True)} || ' named “' || f.title
             || '” elsewhere in the workspace say this' AS reason
        FROM {SCOPE} f
        JOIN named_total nt ON nt.entity_type = f.entity_type AND nt.name = LOWER(f.title)
        JOIN named d ON d.entity_type = nt.entity_type AND d.name = nt.name
       WHERE {undocumented} AND f.entity_type IN ({types}) AND d.n >= 2 AND 3 * d.n >= 2 * nt.total
    ), counterpart AS (
      SELECT f.id AS resource_id, c.description, 'counterpart' AS source,
             {_counterpart_confidence()} AS confidence,
             {_counterpart_words("'says this'")} AS reason
      {_counterparts(undocumented, "c.description <> ''")}
    ), evidence AS (
      SELECT * FROM propagation UNION ALL SELECT * FROM counterpart
    )"""
    return _insert(Suggestion.DESCRIPTION, evidence, "description")


def _temporary(cursor, name, select=None, columns=None):
    """A temporary table from `select` (or with `columns`), analyzed; PostgreSQL drops it at commit."""
    postgres = connection.vendor == "postgresql"
    # One left by an earlier computation in the same (outer) transaction, as in tests.
    cursor.execute(f"DROP TABLE IF EXISTS {'pg_temp' if postgres else 'temp'}.{name}")
    on_commit = " ON COMMIT DROP" if postgres else ""
    if select:
        cursor.execute(f"CREATE TEMPORARY TABLE {name}{on_commit} AS {select}")
    else:
        cursor.execute(f"CREATE TEMPORARY TABLE {name} ({columns}){on_commit}")
    if postgres:
        cursor.execute(f"ANALYZE {name}")


def _apply_fresh(cursor, now):
    """Make the stored suggestions those of FRESH, writing only the difference. Returns (removed, changed,
    added)."""
    table = _tables()["suggestion"]
    same = "f.resource_id = s.resource_id AND f.kind = s.kind AND f.value_key = s.value_key"
    cursor.execute(f"DELETE FROM {table} AS s WHERE NOT EXISTS (SELECT 1 FROM {FRESH} f WHERE {same})")
    removed = cursor.rowcount
    cursor.execute(f"""
      UPDATE {table} AS s SET reason = f.reason, evidence = f.evidence, confidence = f.confidence, computed_at = %s
        FROM {FRESH} f
       WHERE {same} AND (f.reason <> s.reason OR f.evidence <> s.evidence OR f.confidence <> s.confidence)""", [now])
    changed = cursor.rowcount
    # What is stored already leaves FRESH first: an INSERT that tested each row against the table it fills would
    # rescan its own new rows, 98,000 of them the first time.
    cursor.execute(f"DELETE FROM {FRESH} AS f WHERE EXISTS (SELECT 1 FROM {table} s WHERE {same})")
    cursor.execute(f"""
      INSERT INTO {table} (resource_id, kind, value, value_key, reason, evidence, confidence, computed_at)
      SELECT f.resource_id, f.kind, f.value, f.value_key, f.reason, f.evidence, f.confidence, %s FROM {FRESH} f""",
                   [now])
    return removed, changed, cursor.rowcount


def recompute(now=None):
    """Make the stored suggestions what the mirror says now, in one transaction (pages see the old set until it
    commits). Returns how many of each kind there are, how many rows were removed, changed and added, and the
    wall time."""
    started = time.perf_counter()
    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        # One computation at a time (a sync's and a change set's may meet): the second waits, then works from
        # what the first committed, so neither writes a row the other is writing. A rejection waits too.
        hold_lock(cursor)
        _temporary(cursor, SCOPE, scope_sql())
        _temporary(cursor, OWNED, owned_sql())
        _temporary(cursor, FRESH, columns="resource_id varchar(64), kind varchar(16), value text, "
                                          "value_key varchar(32), reason text, evidence varchar(100), confidence integer")
        cursor.execute(owner_sql())
        cursor.execute(description_sql())
        cursor.execute(f"SELECT kind, COUNT(*) FROM {FRESH} GROUP BY kind")
        made = dict(cursor.fetchall())
        owners, descriptions = made.get(Suggestion.OWNER, 0), made.get(Suggestion.DESCRIPTION, 0)
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {FRESH}")
        removed, changed, added = _apply_fresh(cursor, now)
        if connection.vendor == "postgresql" and removed + added > (owners + descriptions) // 10:
            # The first computation (or a big change): the overview's share counts on fresh statistics.
            cursor.execute(f"ANALYZE {_tables()['suggestion']}")
        if connection.vendor != "postgresql":
            for name in (SCOPE, OWNED, FRESH):
                cursor.execute(f"DROP TABLE IF EXISTS temp.{name}")
    return {Suggestion.OWNER: owners, Suggestion.DESCRIPTION: descriptions, "removed": removed, "changed": changed,
            "added": added, "seconds": round(time.perf_counter() - started, 3)}

def share_counts(open_filters):
    """For the snapshot's totals (`suggested_<rule>`): how many open issues of the unowned and undocumented rules
    have at least one suggestion. One count per rule, a semi-join the planner can hash (a subquery inside the
    totals' aggregate was tested row by row: hours at a million resources on PostgreSQL's default memory)."""
    counts = {}
    for kind, rule in Suggestion.RULE_OF_KIND.items():
        if rule in open_filters:
            suggested = Suggestion.objects.filter(kind=kind, resource_id=OuterRef("pk"))
            counts[f"suggested_{rule}"] = in_scope().filter(open_filters[rule]).filter(Exists(suggested)).count()
    return counts
