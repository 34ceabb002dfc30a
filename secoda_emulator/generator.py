"""Deterministic generation of a realistic Secoda workspace (people, integrations, resources).

All randomness comes from the workspace's ``random.Random(seed)``, so a seed and a ``now`` give the
same workspace every time. Resource mix for ``n`` resources (exact total ``n``):

- Snowflake warehouse: the rest (~55.5%): databases > schemas (3-60 tables) > tables (8-14 columns).
- Postgres app database: 15%, same hierarchy with app names (5-40 tables a schema).
- Tableau: 12%, dashboards (roots) > charts (4-20 each).
- Looker: 10%, dashboards > looks.
- Airflow: 7.5%, DAG jobs (roots) > task jobs (3-12 each).
- dbt Cloud: a few root jobs (2 + n // 5000, at most 8; none below 20 resources).
- Segment (product events): 5%, event categories (roots) > events (4-12 each) > event properties (3-9
  each), as the Events reference pages describe them.
- dbt models (only with ``dbt_models``, a share of ``n`` taken from Snowflake's): Snowflake tables again in
  the dbt integration, at the same path (database > schema > model > columns), as Secoda lists a dbt
  project; owned and documented more often than the warehouse. Off by default: the tests' workspaces stay
  as they were.

Most documented columns (and event properties) of one name share a description, as a team's conventions
would make them; the rest vary. Nothing else depends on that: the same resources are documented either way.
"""
import math
import uuid
import zlib

from . import names
from .records import Res, iso

DAY = 86400.0
TWO_YEARS = 730 * DAY
SHARE = (("postgres", 0.15), ("tableau", 0.12), ("looker", 0.10), ("airflow", 0.075), ("segment", 0.05))
INTEGRATIONS = (
    ("snowflake", "Snowflake (warehouse)"),
    ("postgres", "Postgres (app database)"),
    ("tableau", "Tableau"),
    ("looker", "Looker"),
    ("airflow", "Airflow"),
    ("dbt_cloud", "dbt Cloud"),
    ("segment", "Segment (product events)"),
)
COLUMN_DESCRIPTIONS = ("{T} of the record.", "The {t}.", "{T}; null when unknown.",
                       "{T} as sent by the source system.")
PROPERTY_DESCRIPTIONS = ("{T} sent with the event.", "{T}; missing on older app versions.")
CHILD_KIND = {"database": "schema", "schema": "table", "table": "column", "dashboard": "chart",
              "event_category": "event", "event": "event_property"}


def singular(word):
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "xes")):
        return word[:-2]
    return word[:-1] if word.endswith("s") else word


def unique(base, used):
    name, i = base, 2
    while name in used:
        name, i = f"{base}_{i}", i + 1
    used.add(name)
    return name


def budgets(n, dbt_models=0.0):
    """How many resources each integration gets; sums to exactly n."""
    dbt = 0 if n < 20 else min(8, 2 + n // 5000)
    shares = {kind: int(round(n * share)) for kind, share in SHARE}
    shares["dbt_cloud"] = dbt
    shares["dbt_models"] = int(round(n * dbt_models)) if dbt else 0
    shares["snowflake"] = n - sum(shares.values())
    return shares


class Builder:
    """Adds generated people, integrations and resources to a Workspace."""

    def __init__(self, ws):
        self.ws = ws
        self.rng = ws._rng
        self.now = ws.now_ts
        self.root_toggle = False
        self.handles = []
        self.profiles = []
        self.sf_tables = []
        self.modelled = []  # (database, schema, table, columns, profile) of Snowflake tables a dbt model may copy
        self.named_described = 0  # documented columns and event properties so far

    # ------------------------------------------------------------------ basics
    def uuid(self):
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def when(self, start=None, end=None):
        end = self.now if end is None else end
        start = end - TWO_YEARS if start is None else start
        return start + self.rng.random() * max(0.0, end - start)

    def pareto(self, scale, cap=250000):
        return min(cap, int(self.rng.paretovariate(1.16) * scale))

    def few(self, pool, k_max, p):
        if not pool or self.rng.random() >= p:
            return ()
        return tuple(self.rng.sample(pool, min(len(pool), self.rng.randint(1, k_max))))

    # ------------------------------------------------------------------ people and integrations
    def people(self):
        ws, rng = self.ws, self.rng
        pairs = [(f, l) for f in names.FIRST_NAMES for l in names.LAST_NAMES]
        humans = rng.sample(pairs, 27)
        roles = ["admin"] * 3 + ["editor"] * 11 + ["viewer"] * 13
        rng.shuffle(roles)
        for i, (first, last) in enumerate(humans + list(names.SERVICE_ACCOUNTS)):
            service = i >= len(humans)
            r = rng.random()
            disabled = True if (r < 0.1 and not service) else ("False" if r < 0.4 else False)
            handle = (first[0] + last).lower()
            if not service:
                self.handles.append(handle)
            created = self.when()
            ws._users.append({
                "id": self.uuid(), "first_name": first, "last_name": last,
                "display_name": f"{first} {last}",
                "email": f"{first.lower()}.{last.lower()}@{names.EMAIL_DOMAIN}" if not service
                else f"{first.lower()}-{last.lower()}@svc.{names.EMAIL_DOMAIN}",
                "role": "editor" if service else roles[i],
                "disabled": disabled, "is_service_account": service,
                "is_service_account_hidden": "False" if service else False,
                "profile_picture": "None",
                "created_at": _iso(created), "updated_at": _iso(self.when(created)),
                "last_login": "None" if rng.random() < 0.15 else _iso(self.when(created)),
            })
        human_ids = [u["id"] for u in ws._users if not u["is_service_account"]]
        for name, description in names.GROUPS:
            ws._groups.append({
                "id": self.uuid(), "name": name, "description": description, "icon": "None",
                "users": sorted(rng.sample(human_ids, rng.randint(3, 8))),
                "created_at": _iso(self.when()),
            })
        for name, description, archived in names.TEAMS:
            ws._teams.append({
                "id": self.uuid(), "name": name, "description": description, "archived": archived,
                "icon": "None", "type": "open" if rng.random() < 0.6 else "closed",
                "created_at": _iso(self.when()),
            })
        for name, color in names.TAGS:
            ws._tags.append({"id": self.uuid(), "name": name, "color": color,
                             "description": "None" if rng.random() < 0.5 else f"{name} resources."})
        ws._collections = [self.uuid() for _ in names.COLLECTIONS]
        self.human_ids = human_ids
        self.group_ids = [g["id"] for g in ws._groups]
        self.team_ids = [t["id"] for t in ws._teams]
        self.live_team_ids = [t["id"] for t in ws._teams if t["archived"] is not True]
        self.tag_ids = {t["name"]: t["id"] for t in ws._tags}
        self.plain_tags = [t["id"] for t in ws._tags if t["name"] not in ("PII", "Deprecated")]
        self.external_handles = [h.upper() for h in self.handles] + ["LOOKER_SVC", "TABLEAU_EXTRACT", "FIVETRAN"]

    def integrations(self):
        ws = self.ws
        for kind, title in INTEGRATIONS:
            created = self.when()
            last_run = self.when(self.now - 3 * DAY)
            ws._integrations.append({
                "id": self.uuid(), "created_at": _iso(created), "updated_at": _iso(self.when(created)),
                "name": title, "type": kind, "credentials": {}, "workspace_id": ws.workspace_id,
                "ssh_tunnel": "None", "execute_access": [ws.workspace_id],
                "scheduled_extractions_hour": self.rng.randint(0, 23),
                "scheduled_extractions_frequency": self.rng.choice((1, 1, 7)),
                "scheduled_extractions_next_run": _iso(last_run + DAY),
                "scheduled_extractions_last_run": _iso(last_run),
                "properties": {}, "preview_access_users": [], "preview_access_roles": ["Admin", "Editor"],
                "preview_access_groups": [], "teams": list(self.few(self.live_team_ids, 2, 0.7)),
            })
        ws._integration_types.update({i["id"]: i["type"] for i in ws._integrations})
        self.integration_ids = {i["type"]: i["id"] for i in ws._integrations}

    def profile(self, tag_name=None):
        """Who tends to own and document a branch of the catalog."""
        return (self.rng.choice(self.human_ids), self.rng.choice(self.group_ids),
                self.rng.choice(self.live_team_ids), self.tag_ids.get(tag_name))

    # ------------------------------------------------------------------ one resource
    def make(self, kind, native, title, parent, integration, profile, pii=False, unused=False,
             thing=None, fresh=False):
        rng, r = self.rng, self.rng.random
        user, group, team, topic_tag = profile
        if fresh:
            created = updated = ext_updated = self.ws.clock()
        else:
            created = self.when(parent.created) if parent is not None else self.when()
            updated = self.when(created)
            ext_updated = None
        # ownership: ~35% none, ~10% group only, ~43% user(s), ~12% user + group
        x = r()
        if x < 0.35:
            owners, groups = (), ()
        elif x < 0.45:
            owners, groups = (), (group,)
        else:
            owners = (user,) if r() < 0.8 else (user, rng.choice(self.human_ids))
            owners = tuple(dict.fromkeys(owners))
            groups = (group,) if x >= 0.88 else ()
        # documentation: ~45% blank description and definition
        thing = thing or title.replace("_", " ")
        if r() < 0.45:
            description = rng.choice(("", None, "None"))
            definition = rng.choice(("", None, "None"))
            version = 0
        else:
            description = self.describe(kind, title, thing)
            templates = names.COLUMN_DEFINITIONS if kind == "column" else names.DEFINITIONS
            definition = rng.choice(templates).format(thing=thing, Thing=thing.capitalize(), name=title) \
                if r() < 0.4 else ""
            version = rng.randint(1, 6)
        stale = r() < 0.06
        internal, external = self.usage(kind, unused)
        if ext_updated is None:
            y = r()
            if unused:
                ext_updated = self.now - rng.uniform(200, 700) * DAY
            elif y < 0.08:
                ext_updated = "None"
            elif y < 0.12:
                ext_updated = None
            else:
                ext_updated = self.when(created)
        tags = ()
        if pii and r() < 0.85:
            tags = (self.tag_ids["PII"],)
        if stale and r() < 0.4:
            tags += (self.tag_ids["Deprecated"],)
        if topic_tag and r() < 0.3:
            tags += (topic_tag,)
        tags = tuple(dict.fromkeys(tags + self.few(self.plain_tags, 2, 0.15)))
        x = r()
        teams = (team,) if x < 0.7 else ((team, rng.choice(self.team_ids)) if x < 0.8 else ())
        row_count = byte_size = None
        if kind == "table" and native == "table":
            row_count = int(10 ** rng.uniform(1, 9))
            byte_size = row_count * rng.randint(40, 400)
        archived = r() < 0.005
        rec = Res(
            id=self.uuid(), entity_type=kind, native_type=native, title=title,
            description=description, definition=definition, definition_version=version,
            parent=parent.id if parent is not None else self.root_marker(),
            integration=integration, children_count=0, created=created, updated=updated,
            ext_updated=ext_updated, stale=stale, stale_at=self.when(created) if stale else None,
            forced_unstale=(not stale and r() < 0.01), archived=archived,
            archived_at=self.when(created) if archived else None,
            owners=owners, owners_groups=groups, collections=self.few(self.ws._collections, 1, 0.08),
            tags=tags, teams=tuple(dict.fromkeys(teams)), subscribers=self.few(self.human_ids, 3, 0.15),
            bookmarked_by=self.few(self.human_ids, 2, 0.05),
            internal_users=self.few(self.human_ids, 3, 1.0) if internal else (),
            external_users=self.few(self.external_handles, 3, 0.8) if external else (),
            sources=(self.integration_ids["dbt_cloud"],)
            if integration == self.integration_ids["snowflake"] and kind in ("table", "column")
            and r() < 0.3 else (),
            pii=bool(pii), verified=r() < 0.1, published=r() < 0.8,
            internal_usage=internal, external_usage=external,
            row_count=row_count, byte_size=byte_size, style=rng.getrandbits(3),
        )
        self.ws._insert(rec)
        return rec

    def root_marker(self):
        self.root_toggle = not self.root_toggle
        return "None" if self.root_toggle else None

    def describe(self, kind, title, thing):
        rng = self.rng
        if kind == "column":
            return self.by_convention(title, COLUMN_DESCRIPTIONS).format(t=thing, T=thing.capitalize())
        if kind in ("dashboard", "chart"):
            return rng.choice(("{T} for weekly business review.", "Tracks {t}.",
                               "{T}. Ask #analytics before changing filters.")).format(
                t=thing.lower(), T=thing)
        if kind == "job":
            return f"Runs {title} on its schedule."
        if kind == "event":
            return rng.choice(("Fired when {t}.", "Tracked client-side when {t}.", "Server event: {t}.")).format(
                t=thing.lower())
        if kind == "event_property":
            return self.by_convention(title, PROPERTY_DESCRIPTIONS).format(
                T=thing.replace("_", " ").capitalize())
        if kind == "event_category":
            return f"Events about {thing.lower()}."
        return rng.choice(names.DESCRIPTIONS).format(thing=thing, Thing=thing.capitalize())

    def by_convention(self, title, templates):
        """Seven in ten documented columns of a name use that name's template, the others one drawn at random
        (drawn either way, so every later random draw, and so the rest of the workspace, stays the same)."""
        drawn = self.rng.choice(templates)
        self.named_described += 1
        if self.named_described % 10 >= 7:
            return drawn
        return templates[zlib.crc32(title.encode()) % len(templates)]

    def usage(self, kind, unused):
        """(internal_usage, external_usage): skewed, many zero or null."""
        r = self.rng.random
        internal = 0 if r() < 0.6 else self.pareto(2, 500)
        if unused:
            return internal if r() < 0.3 else 0, (0 if r() < 0.6 else None)
        x = r()
        if kind == "job":
            return internal, (None if x < 0.5 else 0)
        if kind == "column":
            return internal, (0 if x < 0.5 else None if x < 0.65 else self.pareto(3))
        if kind in ("dashboard", "chart"):
            return internal, (0 if x < 0.1 else self.pareto(20))
        return internal, (0 if x < 0.3 else None if x < 0.4 else self.pareto(8))

    # ------------------------------------------------------------------ hierarchies
    def build(self, n, dbt_models=0.0):
        self.people()
        self.integrations()
        plan = budgets(n, dbt_models)
        ids = self.integration_ids
        self.warehouse(ids["snowflake"], plan["snowflake"], snowflake=True)
        self.warehouse(ids["postgres"], plan["postgres"], snowflake=False)
        self.bi(ids["tableau"], plan["tableau"], "sheet")
        self.bi(ids["looker"], plan["looker"], "look")
        self.airflow(ids["airflow"], plan["airflow"])
        self.dbt_jobs(ids["dbt_cloud"], plan["dbt_cloud"])
        self.dbt_tests(ids["dbt_cloud"])
        self.events(ids["segment"], plan["segment"])
        if plan["dbt_models"]:
            self.models(ids["dbt_cloud"], plan["dbt_models"])

    def warehouse(self, integration, budget, snowflake):
        if budget <= 0:
            return
        rng = self.rng
        est_schemas = budget / 12.0 / 28.0
        n_db = max(2 if snowflake else 1, math.ceil(est_schemas / 120))
        n_db = min(n_db, budget)
        db_names = names.WAREHOUSE_DATABASES if snowflake else names.APP_DATABASES
        dbs = []
        for i in range(n_db):
            title = db_names[i % len(db_names)] + (f"_{i // len(db_names) + 1}" if i >= len(db_names) else "")
            dbs.append((self.make("database", "database", title, None, integration, self.profile(),
                                  thing=title.replace("_", " ")), set()))
        remaining = budget - n_db
        i = 0
        while remaining > 0:
            db, used = dbs[i % n_db]
            i += 1
            name, n_tables, raw = self.schema_plan(snowflake, used)
            topic = next((t for t in ("Finance", "Marketing", "Product") if t.lower() in name), None)
            profile = self.profile(topic)
            schema = self.make("schema", "schema", name, db, integration, profile)
            remaining -= 1
            tables_used = set()
            for _ in range(n_tables):
                if remaining <= 0:
                    break
                entity = rng.choice(names.TABLE_ENTITIES if snowflake else names.APP_TABLES)
                if snowflake and not raw:
                    base = rng.choice(names.TABLE_PREFIXES) + entity + rng.choice(names.TABLE_SUFFIXES)
                else:
                    base = entity
                title = unique(base, tables_used)
                native = "view" if rng.random() < 0.15 else "table"
                table = self.make("table", native, title, schema, integration, profile,
                                  pii=rng.random() < 0.05, thing=entity.replace("_", " "))
                remaining -= 1
                if snowflake and native == "table":
                    self.sf_tables.append(table.id)
                n_cols = min(rng.randint(8, 14), remaining)
                columns = [self.make("column", "column", col, table, integration, profile,
                                     pii=col in names.PII_COLUMNS, thing=col.replace("_", " "))
                           for col in self.column_names(entity, n_cols)]
                if snowflake and native == "table" and not raw:
                    self.modelled.append((db, schema, table, columns, profile))
                remaining -= n_cols

    def schema_plan(self, snowflake, used):
        """(unique schema name, number of tables, is a raw schema)."""
        rng = self.rng
        x = rng.random()
        if not snowflake:
            return unique(rng.choice(names.APP_SCHEMAS), used), rng.randint(5, 40), False
        if x < 0.35:
            return unique("raw_" + rng.choice(names.RAW_SOURCES), used), rng.randint(5, 30), True
        if x < 0.45:
            return unique("dev_" + rng.choice(self.handles), used), rng.randint(2, 10), False
        if x < 0.5:
            return unique("scratch", used), rng.randint(2, 10), False
        name = unique(rng.choice(names.SCHEMA_BASES) + rng.choice(names.SCHEMA_SUFFIXES), used)
        y = rng.random()
        n_tables = rng.randint(3, 7) if y < 0.15 else rng.randint(36, 60) if y < 0.4 else rng.randint(8, 35)
        return name, n_tables, False

    def column_names(self, entity, n):
        rng = self.rng
        cols = ["id", f"{singular(entity)}_id"] if n > 1 else ["id"]
        if rng.random() < 0.25:
            cols += rng.sample(names.PII_COLUMNS, rng.randint(1, 3))
        pool = list(names.GENERIC_COLUMNS) + [f"{singular(e)}_id" for e in rng.sample(names.TABLE_ENTITIES, 4)]
        used, out = set(), []
        for c in cols:
            if c not in used:
                used.add(c)
                out.append(c)
        out = out[:n]
        while len(out) < n:
            c = rng.choice(pool)
            if c not in used:
                used.add(c)
                out.append(c)
        return out

    def bi(self, integration, budget, chart_native):
        rng, remaining, used = self.rng, budget, set()
        while remaining > 0:
            topic = rng.choice(names.DASHBOARD_TOPICS)
            title = unique(f"{topic} {rng.choice(names.DASHBOARD_FLAVOURS)}", used)
            unused = rng.random() < 0.25
            profile = self.profile("Finance" if topic in ("Revenue", "Billing", "Finance Close") else None)
            dash = self.make("dashboard", "dashboard", title, None, integration, profile, unused=unused,
                             thing=title)
            remaining -= 1
            n_charts = min(rng.randint(4, 20), remaining)
            charts = set()
            for _ in range(n_charts):
                name = unique(f"{rng.choice(names.CHART_METRICS)} {rng.choice(names.CHART_KINDS)}", charts)
                self.make("chart", chart_native, name, dash, integration, profile,
                          unused=unused or rng.random() < 0.1, thing=name)
            remaining -= n_charts

    def airflow(self, integration, budget):
        rng, remaining, used = self.rng, budget, set()
        while remaining > 0:
            dag_name = unique(f"{rng.choice(names.DAG_DOMAINS)}_{rng.choice(names.DAG_ACTIONS)}", used)
            profile = self.profile()
            dag = self.make("job", "dag", dag_name, None, integration, profile)
            remaining -= 1
            n_tasks = min(rng.randint(3, 12), remaining)
            tasks = set()
            for _ in range(n_tasks):
                self.make("job", "task", unique(rng.choice(names.TASK_NAMES), tasks), dag, integration, profile)
            remaining -= n_tasks

    def events(self, integration, budget):
        """Event categories > events > their properties (a tracking plan, as Segment or Amplitude hold it)."""
        rng, remaining, used = self.rng, budget, set()
        while remaining > 0:
            title = unique(rng.choice(names.EVENT_CATEGORIES), used)
            profile = self.profile()
            category = self.make("event_category", "category", title, None, integration, profile, thing=title)
            remaining -= 1
            events = set()
            for _ in range(min(rng.randint(4, 12), remaining)):
                if remaining <= 0:
                    break
                name = unique(f"{rng.choice(names.EVENT_OBJECTS)} {rng.choice(names.EVENT_ACTIONS)}", events)
                unused = rng.random() < 0.2
                event = self.make("event", "event", name, category, integration, profile, unused=unused, thing=name)
                remaining -= 1
                for prop in rng.sample(names.EVENT_PROPERTIES, min(rng.randint(3, 9), remaining)):
                    self.make("event_property", "property", prop, event, integration, profile,
                              pii=prop in names.PII_EVENT_PROPERTIES, unused=unused, thing=prop)
                    remaining -= 1

    def dbt_jobs(self, integration, count):
        for i in range(count):
            title = names.DBT_JOBS[i % len(names.DBT_JOBS)]
            self.make("job", "job", title, None, integration, self.profile())

    def models(self, integration, budget):
        """dbt models of Snowflake tables, `budget` resources in all: each a copy, at the same path, of a table
        and its columns (with the database and schema it needs the first time), owned by the table's usual
        owner four times in five and documented as a model's YAML would be; whatever a small workspace leaves
        over becomes dbt jobs."""
        rng, copies = self.rng, {}
        tables = list(self.modelled)
        rng.shuffle(tables)
        for database, schema, table, columns, profile in tables:
            needed = [rec for rec in (database, schema) if rec.id not in copies] + [table]
            if len(needed) > budget:
                break
            for rec in needed:
                copies[rec.id] = self.model_of(rec, copies.get(rec.parent), integration, profile)
            budget -= len(needed)
            for column in columns[:budget]:
                self.model_of(column, copies[table.id], integration, profile)
            budget -= min(budget, len(columns))
        for i in range(budget):
            self.make("job", "job", f"{names.DBT_JOBS[i % len(names.DBT_JOBS)]} ({i + 1})", None, integration,
                      self.profile())

    def model_of(self, rec, parent, integration, profile):
        native = {"database": "database", "schema": "schema", "table": "model"}.get(rec.entity_type, rec.entity_type)
        thing = rec.title.replace("_", " ")
        copy = self.make(rec.entity_type, native, rec.title, parent, integration, profile, thing=thing)
        r = self.rng.random
        copy.owners, copy.owners_groups = ((profile[0],) if r() < 0.8 else ()), ()
        if r() < 0.85:
            copy.description, copy.definition = self.describe(rec.entity_type, rec.title, thing), ""
        else:
            copy.description = copy.definition = ""
        copy.pii, copy.sources = rec.pii, ()
        return copy

    def dbt_tests(self, integration):
        """~3% of Snowflake tables with failing dbt tests, ~3% with warnings (disjoint)."""
        tables = list(self.sf_tables)
        self.rng.shuffle(tables)
        k = int(round(len(tables) * 0.03))
        self.ws._dbt_tests[integration] = (tuple(tables[k:2 * k]), tuple(tables[:k]))  # (warning, failing)


def _iso(ts):
    return iso(ts)
