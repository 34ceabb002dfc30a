"""Vocabularies used to generate a realistic Secoda workspace (pure data)."""

FIRST_NAMES = (
    "Jordan", "Priya", "Marcus", "Elena", "Wei", "Fatima", "Liam", "Sofia", "Kenji", "Amara",
    "Noah", "Isabel", "Ravi", "Chloe", "Diego", "Hannah", "Omar", "Grace", "Mateo", "Yuki",
    "Ethan", "Zara", "Lucas", "Maya", "Tomas", "Aisha", "Owen", "Nina", "Samuel", "Leah",
    "Arjun", "Clara", "Felix", "Ines",
)
LAST_NAMES = (
    "Smith", "Patel", "Nguyen", "Garcia", "Chen", "Okafor", "Kowalski", "Rossi", "Tanaka", "Mensah",
    "Johnson", "Silva", "Kumar", "Dubois", "Lopez", "Schmidt", "Haddad", "Kim", "Fernandez", "Sato",
    "Brown", "Ali", "Moreau", "Cohen", "Novak", "Ibrahim", "Walsh", "Petrov", "Owusu", "Berg",
)
EMAIL_DOMAIN = "acme-analytics.com"

SERVICE_ACCOUNTS = (("dbt", "Service"), ("Airflow", "Bot"), ("Census", "Sync"))

GROUPS = (
    ("Data Engineering", "Owns ingestion and the warehouse."),
    ("Analytics Engineering", "dbt models and the semantic layer."),
    ("Finance Analytics", "Revenue, billing and forecasting."),
    ("Marketing Ops", "Attribution, campaigns and CRM data."),
    ("Product Analytics", "Product usage and experimentation."),
    ("Data Platform", "Access, cost and governance."),
)

TEAMS = (
    ("Data", "Central data team", "False"),
    ("Finance", "Finance and accounting", False),
    ("Marketing", "Growth and marketing", "False"),
    ("Product", "Product and design", False),
    ("Legacy BI", "Archived reporting team", True),
)

TAGS = (
    ("PII", "#e03131"), ("Deprecated", "#868e96"), ("Finance", "#2f9e44"), ("Core", "#1971c2"),
    ("Certified", "#0ca678"), ("Marketing", "#e8590c"), ("Sensitive", "#c2255c"), ("Raw", "#495057"),
    ("Experimental", "#f08c00"), ("SLA", "#5f3dc4"), ("Needs Review", "#fab005"), ("Product", "#3bc9db"),
)

COLLECTIONS = (
    "Executive KPIs", "Revenue Reporting", "Customer 360", "Marketing Attribution",
    "Data Onboarding", "Growth Experiments", "Finance Close", "Ops Monitoring",
)

# Warehouse (Snowflake) vocabulary
WAREHOUSE_DATABASES = ("analytics_db", "raw_db", "prod_db", "sandbox_db", "archive_db", "events_db",
                       "ml_db", "reporting_db")
SCHEMA_BASES = (
    "analytics", "staging", "marketing", "finance", "intermediate", "core", "reporting", "product",
    "sales", "ops", "growth", "ml_features", "snapshots", "seeds", "scratch", "utils", "audit",
    "customer_success", "risk", "supply_chain",
)
RAW_SOURCES = (
    "stripe", "salesforce", "hubspot", "zendesk", "shopify", "segment", "google_ads", "facebook_ads",
    "netsuite", "intercom", "jira", "github", "braze", "mixpanel", "quickbooks", "workday", "greenhouse",
    "marketo", "iterable", "amplitude",
)
SCHEMA_SUFFIXES = ("", "", "", "_v2", "_archive", "_2023", "_legacy", "_eu", "_us", "_tmp")

TABLE_PREFIXES = ("fct_", "dim_", "stg_", "int_", "agg_", "rpt_", "snap_", "base_", "", "mart_")
TABLE_ENTITIES = (
    "orders", "customers", "payments", "invoices", "subscriptions", "accounts", "users", "sessions",
    "events", "products", "refunds", "revenue", "leads", "opportunities", "campaigns", "ad_spend",
    "tickets", "shipments", "inventory", "transactions", "page_views", "signups", "churn", "plans",
    "contracts", "vendors", "employees", "web_visits", "emails", "experiments", "features", "deals",
    "charges", "disputes", "coupons", "line_items", "carts", "returns", "forecasts", "budgets",
)
TABLE_SUFFIXES = ("", "", "", "", "_daily", "_monthly", "_history", "_v2", "_latest", "_snapshot", "_agg")

GENERIC_COLUMNS = (
    "id", "created_at", "updated_at", "deleted_at", "status", "type", "name", "amount_usd", "currency",
    "quantity", "country_code", "region", "source", "is_active", "is_test", "_loaded_at", "_fivetran_synced",
    "notes", "category", "channel", "plan_name", "mrr_usd", "discount_usd", "tax_usd", "total_usd",
    "event_date", "session_id", "utm_source", "utm_campaign", "device_type", "platform", "score",
    "rank", "duration_seconds", "external_id", "metadata", "version", "valid_from", "valid_to",
)
PII_COLUMNS = (
    "email", "phone", "first_name", "last_name", "full_name", "address_line_1", "postal_code",
    "ip_address", "date_of_birth", "ssn_last4",
)

# App database (Postgres) vocabulary
APP_DATABASES = ("app_production", "app_replica", "billing_service", "auth_service")
APP_SCHEMAS = ("public", "auth", "billing", "audit", "jobs", "notifications", "search", "admin",
               "integrations", "reporting", "partners", "legacy")
APP_TABLES = (
    "users", "accounts", "organizations", "memberships", "invoices", "invoice_items", "api_keys",
    "sessions", "audit_log", "webhooks", "notifications", "feature_flags", "plans", "subscriptions",
    "payment_methods", "addresses", "comments", "attachments", "projects", "tasks", "documents",
    "permissions", "roles", "imports", "exports", "schema_migrations", "job_runs", "settings",
)

# BI vocabulary
DASHBOARD_TOPICS = (
    "Revenue", "Pipeline", "Churn", "Marketing Attribution", "Product Usage", "Executive KPIs",
    "Customer Health", "Support SLA", "Finance Close", "Cohort Retention", "Web Traffic", "Ad Spend",
    "Inventory", "Sales Leaderboard", "Experiment Results", "Onboarding Funnel", "NPS", "Billing",
)
DASHBOARD_FLAVOURS = ("Overview", "Weekly", "Monthly", "Deep Dive", "by Region", "(old)", "v2",
                      "Daily", "QBR", "Draft", "Board Pack", "Tracker")
CHART_KINDS = ("Trend", "by Segment", "by Channel", "Top 10", "YoY", "Funnel", "Breakdown", "Total",
               "Distribution", "Forecast", "vs Target", "Table", "Map", "Cumulative")
CHART_METRICS = ("Revenue", "Orders", "Active Users", "Signups", "Churn Rate", "ARR", "MRR", "Tickets",
                 "Conversion", "CAC", "LTV", "Sessions", "Margin", "Refunds", "Pipeline", "Spend")

# Pipelines vocabulary
DAG_DOMAINS = ("stripe", "salesforce", "hubspot", "zendesk", "segment", "finance", "marketing", "ml",
               "exports", "reverse_etl", "snapshots", "quality", "backfill", "product", "ads")
DAG_ACTIONS = ("ingest", "sync", "load", "refresh", "export", "transform", "daily", "hourly", "weekly",
               "check", "publish")
TASK_NAMES = ("extract", "load_raw", "dbt_run", "dbt_test", "validate", "notify_slack", "cleanup",
              "snapshot", "publish", "wait_for_upstream", "compute_metrics", "upload_s3", "vacuum")
DBT_JOBS = ("Production nightly run", "Hourly incremental", "CI checks", "Full refresh (weekly)",
            "Snapshots", "Docs generate", "Source freshness", "Marketing models")

DESCRIPTIONS = (
    "One row per {thing}. Source of truth for reporting.",
    "{Thing} data loaded from the upstream system.",
    "Cleaned and deduplicated {thing}.",
    "Daily aggregate of {thing}, refreshed by the nightly run.",
    "Do not use: superseded by the v2 model.",
    "Owned by the data team; contact #data-help for access.",
    "{Thing} joined with account attributes.",
    "Intermediate model used by the finance marts.",
)
DEFINITIONS = (
    "# {Thing}\n\nGrain: one row per {thing}.\n\n## Caveats\n- Late-arriving rows are merged daily.",
    "## Usage\nJoin on `id`. Filter `is_test = false` for reporting.",
    "Built in dbt (`models/{name}.sql`). Tests: unique, not_null.",
)
COLUMN_DEFINITIONS = (
    "Nullable. Populated since the 2023 migration.",
    "Foreign key; see the parent model's docs.",
    "Values are normalized to lower case. Tests: not_null.",
)

EVENT_CATEGORIES = ("Checkout", "Onboarding", "Search", "Account", "Marketing", "Product Usage", "Billing",
                    "Support", "Sharing", "Notifications")
EVENT_OBJECTS = ("Order", "Cart", "Product", "Account", "Subscription", "Invite", "Report", "Search", "Email",
                 "Coupon", "Ticket", "Dashboard", "Payment", "Trial", "Page")
EVENT_ACTIONS = ("Viewed", "Created", "Completed", "Updated", "Deleted", "Clicked", "Started", "Failed", "Shared",
                 "Cancelled")
EVENT_PROPERTIES = ("user_id", "anonymous_id", "order_id", "revenue", "currency", "product_id", "sku", "plan",
                    "source", "utm_campaign", "page_url", "referrer", "device_type", "country", "email",
                    "ip_address", "session_id", "value", "quantity", "coupon_code")
PII_EVENT_PROPERTIES = ("email", "ip_address")
