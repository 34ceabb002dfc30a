"""Settings for Catalog Hygiene. Every value comes from the environment (see README)."""
import secrets
import warnings
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from hygiene.env import env_bool, env_float, env_int, env_list, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("HYGIENE_DATA_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DJANGO_DEBUG", False)


def _secret_key():
    """The configured key, or one kept in DATA_DIR so a first run needs no setup."""
    key = env_str("DJANGO_SECRET_KEY")
    if key:
        return key
    key_file = DATA_DIR / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_celery_beat",
    "django_tables2",
    "django_filters",
    "catalog_sync",
    "secoda_emulator",  # its command serves the demo workspace (no models)
    "hygiene.dashboard",
    "hygiene.bulk",
    "hygiene.reports",
    "hygiene.accounts",
    "hygiene.mailbox",
    "hygiene.rulebook",
    "hygiene.lifecycle",
    "hygiene.migration",
    "hygiene.suggestions",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "hygiene.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Pages compress (an issue list: 60 KB to about 8 KB). Django pads compressed pages with random bytes and
    # masks CSRF tokens per response, against BREACH.
    "django.middleware.gzip.GZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "hygiene.security.RejectNulMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "hygiene.roles.RoleRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out sign-in into the lockout page
]

ROOT_URLCONF = "hygiene.urls"
# Django's form templates, with the standard widgets drawn in Python (the same HTML, a tenth of the time).
FORM_RENDERER = "hygiene.forms_renderer.WidgetRenderer"
WSGI_APPLICATION = "hygiene.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "hygiene.security.sign_in",
                "hygiene.mailbox.context.mailbox",
            ],
        },
    },
]

# The first-run database lives in the data folder with the rest of what the demo keeps (a demo database
# from before, at the top of the checkout, is still used).
_FIRST_RUN_DB = BASE_DIR / "db.sqlite3" if (BASE_DIR / "db.sqlite3").exists() and not (
    DATA_DIR / "db.sqlite3").exists() else DATA_DIR / "db.sqlite3"
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{_FIRST_RUN_DB}")
try:
    _db = dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0))
except Exception as exc:  # dj-database-url raises several types for bad URLs
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from None
if _db["ENGINE"] == "django.db.backends.sqlite3":
    name = Path(_db["NAME"])
    _db["NAME"] = str(name if name.is_absolute() else BASE_DIR / name)
    # Several processes (web, worker, beat) share one file: wait for locks instead of failing.
    _db["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    _db["CONN_MAX_AGE"] = 0
elif _db["ENGINE"] == "django.db.backends.postgresql":
    # Issue lists with several snoozes build large plans; JIT compiling them costs more than it saves.
    _db.setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "login"

# Sign-in throttling (django-axes): AXES_FAILURE_LIMIT wrong passwords in a row lock that username, and
# separately that address, for AXES_COOLOFF_MINUTES. Admins unlock under Admin → Axes → Access attempts (or
# `manage.py axes_reset`).
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each on its own: one user, or one address
# A success clears only that username's own failures (hygiene.security.forget_own_failures): clearing all of
# an address's failures would let anyone with an account reset their guesses at someone else's password.
AXES_RESET_ON_SUCCESS = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Behind AXES_PROXY_COUNT trusted proxies that each append to X-Forwarded-For, the client's address is the
# entry that many places from the right (what the nearest proxy saw); otherwise every sign-in would seem to come
# from the proxy, and one guesser would lock everyone out. Entries further left are the client's own claims.
TRUSTED_PROXY_COUNT = env_int("AXES_PROXY_COUNT", 0, minimum=0)
AXES_CLIENT_IP_CALLABLE = "hygiene.security.client_ip"
AXES_VERBOSE = False
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]

# Single sign-on with OpenID Connect (optional): set the client and the provider's endpoints. Password
# sign-in stays for admins and the demo. The IdP's group claim decides the role.
OIDC_RP_CLIENT_ID = env_str("OIDC_CLIENT_ID", "")
OIDC_ENABLED = bool(OIDC_RP_CLIENT_ID)
if OIDC_ENABLED:
    OIDC_RP_CLIENT_SECRET = env_str("OIDC_CLIENT_SECRET", "")
    OIDC_OP_AUTHORIZATION_ENDPOINT = env_str("OIDC_AUTHORIZATION_ENDPOINT", "")
    OIDC_OP_TOKEN_ENDPOINT = env_str("OIDC_TOKEN_ENDPOINT", "")
    OIDC_OP_USER_ENDPOINT = env_str("OIDC_USERINFO_ENDPOINT", "")
    OIDC_OP_JWKS_ENDPOINT = env_str("OIDC_JWKS_ENDPOINT", "")
    _missing = [name for name, value in (
        ("OIDC_CLIENT_SECRET", OIDC_RP_CLIENT_SECRET), ("OIDC_AUTHORIZATION_ENDPOINT", OIDC_OP_AUTHORIZATION_ENDPOINT),
        ("OIDC_TOKEN_ENDPOINT", OIDC_OP_TOKEN_ENDPOINT), ("OIDC_USERINFO_ENDPOINT", OIDC_OP_USER_ENDPOINT),
        ("OIDC_JWKS_ENDPOINT", OIDC_OP_JWKS_ENDPOINT)) if not value]
    if _missing:
        raise ImproperlyConfigured(f"OIDC_CLIENT_ID is set, so single sign-on also needs {', '.join(_missing)}.")
    OIDC_RP_SIGN_ALGO = env_str("OIDC_SIGN_ALGO", "RS256")
    OIDC_RP_SCOPES = env_str("OIDC_SCOPES", "openid email profile")
    OIDC_PROVIDER_NAME = env_str("OIDC_PROVIDER_NAME", "your company account")
    OIDC_GROUPS_CLAIM = env_str("OIDC_GROUPS_CLAIM", "groups")
    OIDC_STEWARD_GROUPS = env_list("OIDC_STEWARD_GROUPS", [])
    OIDC_VIEWER_GROUPS = env_list("OIDC_VIEWER_GROUPS", [])
    OIDC_TIMEOUT = env_int("OIDC_TIMEOUT_SECONDS", 10, minimum=1)
    OIDC_VERIFY_SSL = env_bool("OIDC_VERIFY_SSL", True)
    OIDC_CREATE_USER = True
    AUTHENTICATION_BACKENDS.append("hygiene.sso.RoleMappingOIDCBackend")
    LOGIN_REDIRECT_URL_FAILURE = "/accounts/login/"  # used as is (not resolved) by mozilla-django-oidc

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
                    if env_bool("STATIC_MANIFEST", False) else
                    "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# With STATIC_MANIFEST (the image sets it), files carry their content hash in their names and are served
# with a year-long, immutable cache, gzip and brotli copies beside them.
# Serve static files straight from the source folders when nothing was collected.
WHITENOISE_USE_FINDERS = True
warnings.filterwarnings("ignore", message="No directory at")

# Security: strict by default outside DEBUG, relaxed only by explicit settings.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("DJANGO_BEHIND_PROXY", False) else None
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # container health checks speak plain HTTP
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# E-mail
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Catalog Hygiene <hygiene@localhost>")
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    # Without a mail server, mail is kept in the database where a person can read it (/mailbox/).
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "hygiene.mailbox.backend.EmailBackend",
)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("Set only one of EMAIL_USE_TLS and EMAIL_USE_SSL.")

# Secoda
SECODA_API_URL = env_url("SECODA_API_URL", "https://api.secoda.co/api/v1")
SECODA_API_TOKEN = env_str("SECODA_API_TOKEN", "")
SECODA_TIMEOUT_SECONDS = env_float("SECODA_TIMEOUT_SECONDS", 30.0, minimum=0.1)
SECODA_MAX_RETRIES = env_int("SECODA_MAX_RETRIES", 6, minimum=0)
SECODA_BACKOFF_SECONDS = env_float("SECODA_BACKOFF_SECONDS", 1.0, minimum=0)
SECODA_MAX_BACKOFF_SECONDS = env_float("SECODA_MAX_BACKOFF_SECONDS", 60.0, minimum=0)
SECODA_WRITES_PER_MINUTE = env_int("SECODA_WRITES_PER_MINUTE", 30, minimum=1)
# Resources asked for per listing page (Secoda's own scripts send up to 1,000; an API that ignores it gives 50).
SECODA_PAGE_SIZE = env_int("SECODA_PAGE_SIZE", 1000, minimum=1, maximum=1000)
# Resources one listing returns across all its pages (Secoda's documented 10,000); beyond it the sweep splits.
SECODA_LISTING_CAP = env_int("SECODA_LISTING_CAP", 10_000, minimum=100)
SECODA_APP_URL = env_url("SECODA_APP_URL", "https://app.secoda.co")
# Ceiling on requests to Secoda per second, shared by every worker through Redis (0: no ceiling).
SECODA_MAX_REQUESTS_PER_SECOND = env_float("SECODA_MAX_REQUESTS_PER_SECOND", 50.0, minimum=0)
# Counts the deletion check of an incremental sync has in flight at once (1: one after another).
SECODA_COUNT_CONCURRENCY = env_int("SECODA_COUNT_CONCURRENCY", 8, minimum=1, maximum=64)

# Sync
SYNC_INTERVAL_MINUTES = env_int("SYNC_INTERVAL_MINUTES", 5, minimum=1)  # incremental syncs
SYNC_FULL_SWEEP_AT = env_str("SYNC_FULL_SWEEP_AT", "02:00")  # nightly full sweep, HH:MM in TIME_ZONE
try:
    _hour, _minute = (int(part) for part in SYNC_FULL_SWEEP_AT.split(":"))
    if not (0 <= _hour < 24 and 0 <= _minute < 60):
        raise ValueError
except ValueError:
    raise ImproperlyConfigured(f"SYNC_FULL_SWEEP_AT must be a time of day like 02:00, not {SYNC_FULL_SWEEP_AT!r}.")
SYNC_OVERLAP_SECONDS = env_int("SYNC_OVERLAP_SECONDS", 300, minimum=0)  # incremental look-back for clock skew
# Incremental syncs also compare Secoda's counts with the mirror's and mark what was deleted removed.
SYNC_RECONCILE_DELETIONS = env_bool("SYNC_RECONCILE_DELETIONS", True)
SYNC_CONCURRENCY = env_int("SYNC_CONCURRENCY", 4, minimum=1, maximum=64)  # slices at once in `sync_catalog`
SYNC_FAN_OUT = env_bool("SYNC_FAN_OUT", True)  # full sweeps as one Celery task per slice (PostgreSQL only)
SYNC_SLICE_PAGES = env_int("SYNC_SLICE_PAGES", 20, minimum=1)  # pages per slice before it hands pages on
SYNC_SLICE_RETRIES = env_int("SYNC_SLICE_RETRIES", 3, minimum=0)
# Crash recovery. Work (a slice, a change set) is leased for WORK_LEASE_SECONDS and renewed by a heartbeat
# every HEARTBEAT_SECONDS while its worker lives; the watchers run every WATCH_EVERY_SECONDS, so a killed
# worker's work is picked up again within about LEASE + WATCH seconds. The sync lock is renewed the same way
# (and by the watcher between slices), so it outlives its slices; a sweep with no progress for
# SYNC_STALL_MINUTES is failed so incremental syncs can run again.
WORK_LEASE_SECONDS = env_int("WORK_LEASE_SECONDS", 30, minimum=5)
HEARTBEAT_SECONDS = env_float("HEARTBEAT_SECONDS", 5.0, minimum=0.5)
WATCH_EVERY_SECONDS = env_int("WATCH_EVERY_SECONDS", 15, minimum=1)
SYNC_LOCK_SECONDS = env_int("SYNC_LOCK_SECONDS", 90, minimum=10)
SYNC_STALL_MINUTES = env_int("SYNC_STALL_MINUTES", 15, minimum=1)
# Slices failing because Secoda cannot be reached, one after another, that end a sweep early (it resumes
# by itself once Secoda answers again).
SYNC_OUTAGE_SLICES = env_int("SYNC_OUTAGE_SLICES", 3, minimum=1)
if HEARTBEAT_SECONDS * 2 > WORK_LEASE_SECONDS or WORK_LEASE_SECONDS > SYNC_LOCK_SECONDS:
    raise ImproperlyConfigured("Need HEARTBEAT_SECONDS * 2 <= WORK_LEASE_SECONDS <= SYNC_LOCK_SECONDS.")
SYNC_BATCH_SIZE = env_int("SYNC_BATCH_SIZE", 500, minimum=1)
MIRROR_STALE_AFTER_HOURS = env_int("MIRROR_STALE_AFTER_HOURS", 24, minimum=1)

# Celery: Redis when REDIS_URL is set; otherwise a folder-based broker so a
# first run needs no server (worker and beat still run as separate processes).
REDIS_URL = env_url("REDIS_URL", None, schemes=("redis", "rediss", "unix"))
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    # A killed worker's unacknowledged task would come back after this; the watchers requeue its work from
    # the database long before, so this only has to outlast the longest task.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 6 * 3600}
else:
    _queue_dir = DATA_DIR / "celery-queue"
    _processed_dir = DATA_DIR / "celery-processed"
    _control_dir = DATA_DIR / "celery-control"  # kombu's default is ./control, inside the checkout
    for _folder in (_queue_dir, _processed_dir, _control_dir):
        _folder.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_processed_dir),
        "control_folder": str(_control_dir),
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 6 * 3600, minimum=60)
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"()": "hygiene.logs.RedactingFormatter",
                             "format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # urllib3 logs full URLs at DEBUG; keep it quiet (URLs never carry the token, but filters can be long).
        "urllib3": {"level": "WARNING"},
        "django.db.backends": {"level": "WARNING"},
    },
}

# Health score: 100 minus the weights of the rules a resource breaks (clamped at 0).
HEALTH_WEIGHTS = {
    "stale": env_int("HEALTH_WEIGHT_STALE", 20, minimum=0),
    "unowned": env_int("HEALTH_WEIGHT_UNOWNED", 25, minimum=0),
    "undocumented": env_int("HEALTH_WEIGHT_UNDOCUMENTED", 20, minimum=0),
    "failing_dbt_tests": env_int("HEALTH_WEIGHT_FAILING_DBT_TESTS", 25, minimum=0),
    "warning_dbt_tests": env_int("HEALTH_WEIGHT_WARNING_DBT_TESTS", 5, minimum=0),
    "unused": env_int("HEALTH_WEIGHT_UNUSED", 5, minimum=0),
}

# Links in e-mails point here (the dashboard's public address).
SITE_URL = env_url("SITE_URL", "http://127.0.0.1:8000")
REPORT_SEND_EVERY_MINUTES = env_int("REPORT_SEND_EVERY_MINUTES", 5, minimum=1)

# SQLite (the embedded first run) ignores the covering columns some indexes carry for PostgreSQL; it says so on
# every command otherwise.
SILENCED_SYSTEM_CHECKS = ["models.W040"]
