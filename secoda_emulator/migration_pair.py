"""A pair of warehouse integrations for "Migrate documentation": an old one, well documented, and the new one
the team moved to, with overlapping paths and little documentation yet.

Added to a generated workspace on request (`Workspace.generate(..., migration_pair=True)`, the emulator's
`--migration-pair`, which the demo turns on), after everything else and from a random generator of its own,
so the rest of the workspace is the same with or without it. What the pair holds, by design:

- the same database, schemas, tables and columns on both sides, the new side often in upper case
  (ANALYTICS.FINANCE.INVOICES for analytics.finance.invoices);
- a renamed database (legacy_db is warehouse now) and a renamed schema (analytics.staging is analytics.stg);
- a few ambiguous ones: two old tables whose names differ only in case (Customers, CUSTOMERS) for one new
  table, and one old table for two new ones (orders, Orders), with some of their columns;
- some unmatched on each side: a dropped scratch schema and column, new tables and columns;
- the old side documented (descriptions, definitions, owners, groups, tags, teams, PII and verified), the new
  side mostly blank.
"""
import random
import uuid

from .records import Res, iso

OLD = ("redshift", "Redshift (old warehouse)")
NEW = ("bigquery", "BigQuery (new warehouse)")
DAY = 86400.0
PII_COLUMNS = {"email", "phone", "name"}

# database -> schema -> table -> columns, old side.
OLD_TREE = {
    "analytics": {
        "finance": {
            "invoices": ["id", "invoice_number", "customer_id", "amount", "currency", "issued_at"],
            "payments": ["id", "invoice_id", "amount", "paid_at", "method"],
            "refunds": ["id", "payment_id", "amount", "reason"],
            "Customers": ["id", "name", "email", "country", "created_at"],
            "CUSTOMERS": ["id", "email"],
        },
        "marketing": {
            "campaigns": ["id", "name", "channel", "budget", "started_at"],
            "ad_spend": ["id", "campaign_id", "spend", "day"],
            "attribution": ["id", "order_id", "campaign_id", "weight"],
        },
        "staging": {
            "stg_orders": ["id", "user_id", "status", "ordered_at"],
            "stg_users": ["id", "email", "phone", "signed_up_at"],
        },
        "scratch": {
            "tmp_backfill_2019": ["id", "payload"],
        },
    },
    "legacy_db": {
        "public": {
            "orders": ["id", "user_id", "status", "total", "ordered_at"],
            "users": ["id", "email", "name", "phone"],
            "products": ["id", "sku", "title", "price"],
        },
    },
}

# The new side: the same paths, renamed (legacy_db -> warehouse, analytics.staging -> analytics.stg), in other
# cases, with some tables and columns gone and some added.
NEW_TREE = {
    "ANALYTICS": {
        "FINANCE": {
            "INVOICES": ["ID", "INVOICE_NUMBER", "CUSTOMER_ID", "AMOUNT", "CURRENCY", "ISSUED_AT"],
            "PAYMENTS": ["ID", "INVOICE_ID", "AMOUNT", "PAID_AT", "METHOD"],
            "REFUNDS": ["ID", "PAYMENT_ID", "AMOUNT", "REASON_CODE"],
            "CUSTOMERS": ["ID", "NAME", "EMAIL", "COUNTRY", "CREATED_AT"],
            "REVENUE_DAILY": ["DAY", "REVENUE"],
        },
        "Marketing": {
            "campaigns": ["id", "name", "channel", "budget", "started_at"],
            "ad_spend": ["id", "campaign_id", "spend", "day"],
            "Attribution": ["id", "order_id", "campaign_id", "weight"],
        },
        "stg": {
            "stg_orders": ["id", "user_id", "status", "ordered_at"],
            "stg_users": ["id", "email", "phone", "signed_up_at"],
        },
    },
    "warehouse": {
        "public": {
            "orders": ["id", "user_id", "status", "total", "ordered_at"],
            "Orders": ["id", "status"],
            "users": ["id", "email", "name", "phone", "deleted_at"],
            "products": ["id", "sku", "title", "price"],
            "events_v2": ["id", "name", "sent_at"],
        },
    },
}

# What a steward types to follow the renames (the dashboard's mapping syntax).
RENAMES = "legacy_db => warehouse\nanalytics.staging => analytics.stg"

TABLE_DEFINITION = ("# {title}\n\nOne row per {thing}. Loaded nightly; see the *{schema}* runbook before "
                    "changing it.\n\n- Grain: {thing}\n- Owner: the {schema} team")


class PairBuilder:
    def __init__(self, ws):
        self.ws = ws
        self.rng = random.Random(f"migration-pair:{ws.seed}")
        self.now = ws.now_ts
        humans = [u["id"] for u in ws._users if not u.get("is_service_account")]
        self.people = humans or [u["id"] for u in ws._users]
        self.groups = [g["id"] for g in ws._groups]
        self.teams = [t["id"] for t in ws._teams if t["archived"] is not True]
        self.tags = {t["name"]: t["id"] for t in ws._tags}

    def uuid(self):
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def integration(self, kind, name):
        created = self.now - self.rng.uniform(30, 700) * DAY
        record = {
            "id": self.uuid(), "created_at": iso(created), "updated_at": iso(created + DAY),
            "name": name, "type": kind, "credentials": {}, "workspace_id": self.ws.workspace_id,
            "ssh_tunnel": "None", "execute_access": [self.ws.workspace_id],
            "scheduled_extractions_hour": 3, "scheduled_extractions_frequency": 1,
            "scheduled_extractions_next_run": iso(self.now + DAY),
            "scheduled_extractions_last_run": iso(self.now - DAY),
            "properties": {}, "preview_access_users": [], "preview_access_roles": ["Admin", "Editor"],
            "preview_access_groups": [], "teams": self.teams[:1],
        }
        self.ws._integrations.append(record)
        self.ws._integration_types[record["id"]] = kind
        return record["id"]

    def resource(self, kind, title, parent, integration, documented, schema=""):
        """One resource; `documented` says which side it is on (the old one is documented, the new mostly not)."""
        rng = self.rng
        created = (parent.created if parent is not None else self.now - 600 * DAY) + rng.uniform(1, 30) * DAY
        thing = title.lower().replace("_", " ")
        description = definition = ""
        owners = groups = tags = teams = ()
        pii = kind == "column" and title.lower() in PII_COLUMNS
        verified = False
        if documented:
            if rng.random() < 0.92:
                description = (f"The {thing} of the record." if kind == "column" else
                               f"{thing.capitalize()}: the {schema or thing} {kind} everyone reports from.")
            if kind == "table" and rng.random() < 0.6:
                definition = TABLE_DEFINITION.format(title=title, thing=thing, schema=schema or "data")
            if kind == "table" or rng.random() < 0.85:  # every table has an owner, most of the rest too
                owners = (rng.choice(self.people),)
            if kind != "column" and rng.random() < 0.4:
                groups = (rng.choice(self.groups),)
            topic = schema.capitalize() if schema.capitalize() in self.tags else "Core"
            tags = ((self.tags["PII"],) if pii else ()) + ((self.tags[topic],) if rng.random() < 0.6 else ())
            teams = (rng.choice(self.teams),) if rng.random() < 0.7 else ()
            verified = kind == "table" and rng.random() < 0.4
        else:
            if rng.random() < 0.1:
                description = "Loaded by the new pipeline."
            pii = pii and rng.random() < 0.3
        record = Res(
            id=self.uuid(), entity_type=kind, native_type=kind, title=title, description=description,
            definition=definition, definition_version=1 if definition else 0,
            parent=parent.id if parent is not None else None, integration=integration, children_count=0,
            created=created, updated=created + DAY, ext_updated=created + DAY, stale=False, stale_at=None,
            forced_unstale=False, archived=False, archived_at=None, owners=owners, owners_groups=groups,
            collections=(), tags=tuple(dict.fromkeys(tags)), teams=teams, subscribers=(), bookmarked_by=(),
            internal_users=(), external_users=(), sources=(), pii=pii, verified=verified, published=True,
            internal_usage=0, external_usage=rng.randint(0, 500), row_count=None, byte_size=None, style=0,
        )
        self.ws._insert(record)
        return record

    def tree(self, spec, integration, documented):
        for database, schemas in spec.items():
            db = self.resource("database", database, None, integration, documented)
            for schema, tables in schemas.items():
                parent = self.resource("schema", schema, db, integration, documented, schema=schema.lower())
                for table, columns in tables.items():
                    row = self.resource("table", table, parent, integration, documented, schema=schema.lower())
                    for column in columns:
                        self.resource("column", column, row, integration, documented, schema=schema.lower())


def add_migration_pair(ws):
    """Add the old and the new warehouse to `ws`; returns their integration ids (old, new)."""
    builder = PairBuilder(ws)
    old = builder.integration(*OLD)
    new = builder.integration(*NEW)
    builder.tree(OLD_TREE, old, documented=True)
    builder.tree(NEW_TREE, new, documented=False)
    return old, new
