"""Settings for the batch operations portal, read from the environment only."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dj_database_url

from portal.lib.env import (
    EnvError,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_networks,
    env_str,
    env_timezone,
    env_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)
DATA_DIR = Path(env_str("PORTAL_DATA_DIR", "var"))
if not DATA_DIR.is_absolute():
    DATA_DIR = BASE_DIR / DATA_DIR
DATA_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = env_str("SECRET_KEY")
# It signs the sessions and the JWTs: a short one can be guessed offline from any token.
SECRET_KEY_MIN_LENGTH = 50
if not SECRET_KEY:
    if not DEBUG:
        raise EnvError("SECRET_KEY", "", "a secret value (only DEBUG=1 has a development default)")
    SECRET_KEY = "development-only-insecure-key-do-not-use-in-production"
elif len(SECRET_KEY) < SECRET_KEY_MIN_LENGTH and not DEBUG:
    raise EnvError("SECRET_KEY", "*" * len(SECRET_KEY), f"at least {SECRET_KEY_MIN_LENGTH} random characters")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "portal.apps.PortalAdminConfig",  # django.contrib.admin, entered through a role, not the staff flag
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "django_prometheus",
    "portal",
    "portal.alerts",
    "monitoring",
    "scheduling",
]

MIDDLEWARE = [
    "portal.middleware.RequestContextMiddleware",
    "portal.middleware.ApiErrorsAsJsonMiddleware",
    # Before anything reads the body (django-prometheus does): an oversized one is answered as JSON.
    "portal.middleware.BodySizeMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "portal.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.middleware.LoginThrottleMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "portal.middleware.AuditReasonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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
            ],
        },
    },
]

# --- database -----------------------------------------------------------------
DATABASE_URL = env_url(
    "DATABASE_URL",
    f"sqlite:///{DATA_DIR / 'portal.sqlite3'}",
    schemes=("sqlite", "postgres", "postgresql", "pgsql"),
)
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server, the workers and the commands share one file: WAL lets
    # readers and a writer overlap, IMMEDIATE takes the write lock up front
    # (no lock upgrade deadlock), and the busy timeout waits instead of failing.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-portal.sqlite3")}
else:
    # A database that went away fails a connection within seconds: a worker renewing its lease never hangs on it.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# --- time ---------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"  # storage and the API are UTC; PORTAL_TIME_ZONE is for gates and display
USE_I18N = False
USE_TZ = True
PORTAL_TIME_ZONE = env_timezone("PORTAL_TIME_ZONE", "UTC")
# Dates as the console and the CLI show them (2026-03-02 11:00:00), not "March 2, 2026, 11 a.m.".
FORMAT_MODULE_PATH = ["portal.formats"]

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = DEBUG

LOGIN_URL = "/admin/login/"

# --- security (check --deploy) --------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz/?$", r"^livez/?$", r"^metrics/?$"]  # probes and scrapers often speak plain HTTP
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_AGE = env_int("SESSION_SECONDS", 12 * 3600, minimum=60)
# The console, the admin and the API docs run no inline script: only the portal's own files.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# DOMAIN §4: after this many wrong passwords within the window, for one account or from one
# address, every login and token request of that account or address answers 429 until it ends.
LOGIN_FAILURES_MAX = 10
LOGIN_FAILURE_WINDOW_SECONDS = 60
# Paths whose POST is a login: the console's form, the admin's and the API's token routes.
LOGIN_PATHS = ("/monitor/login/", "/admin/login/", "/api/v1/token/", "/api/v1/token/refresh/")

# Bodies: the documented feeds of 10,000 items (2.7 MB of transactions with 120-character
# references, more for arrivals with extra fields) fit; a larger body is refused before it is read.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("API_MAX_BODY_BYTES", 16 * 1024 * 1024, minimum=1024 * 1024)
# Deeper JSON than this is refused before any serializer walks it (Python's recursion limit is 1,000).
API_MAX_JSON_DEPTH = 32

# --- control queue and outbox -------------------------------------------------
CONTROL_QUEUE_BACKEND = env_choice("CONTROL_QUEUE_BACKEND", ("local", "sqs"), "local")
CONTROL_QUEUE_BACKENDS = {
    "local": "portal.backends.local.LocalQueue",
    "sqs": "portal.backends.sqs.SqsQueue",
    "notification": "portal.alerts.channels.NotificationSender",
}
# Message kinds sent through another backend than the control queue: notifications go to people.
OUTBOX_BACKEND_BY_KIND = {"NOTIFICATION": "notification"}
# Messages of one lane leave in the order written; a failed batch makes its lane wait. The lane is the
# kind, or per value of this payload field: one receiver that is down holds back its own notifications only.
OUTBOX_LANE_FIELD_BY_KIND = {"NOTIFICATION": "channel_id"}
CONTROL_QUEUE_URL = env_url("CONTROL_QUEUE_URL", schemes=("http", "https"))
CONTROL_QUEUE_FILE = DATA_DIR / "control-queue.jsonl"
AWS_REGION = env_str("AWS_REGION", "us-east-1")
AWS_ENDPOINT_URL = env_url("AWS_ENDPOINT_URL", schemes=("http", "https"))
OUTBOX_BATCH_SIZE = env_int("OUTBOX_BATCH_SIZE", 500, minimum=1)
OUTBOX_BACKOFF_MAX_SECONDS = env_int("OUTBOX_BACKOFF_MAX_SECONDS", 300, minimum=1)
OUTBOX_POLL_SECONDS = env_int("OUTBOX_POLL_SECONDS", 1, minimum=1)
# A publisher holds the messages it claimed this long; one that dies after sending and
# before marking lets them go out again after it. Batches start only in its first half,
# so it must outlast one SQS call (3 s connect + 10 s read) twice over.
OUTBOX_LEASE_SECONDS = env_int("OUTBOX_LEASE_SECONDS", 120, minimum=30)
# /healthz and the console count pending messages up to this many ("10000+" beyond): cheap with any backlog.
OUTBOX_PENDING_COUNT_CAP = env_int("OUTBOX_PENDING_COUNT_CAP", 10_000, minimum=1)
HEALTHZ_OUTBOX_MAX_AGE_SECONDS = env_int("HEALTHZ_OUTBOX_MAX_AGE_SECONDS", 900, minimum=1)
# OUTBOX_STALLED opens when the oldest pending message (control queue or notifications) is this old.
OUTBOX_STALL_SECONDS = env_int("OUTBOX_STALL_SECONDS", 120, minimum=1)

# --- alerts to people (DOMAIN §7) ---------------------------------------------------------
# The console's address, for the link in every notification.
PORTAL_URL = env_url("PORTAL_URL", "http://localhost:8000", schemes=("http", "https"))
# Channel kind -> the module that checks, masks and sends (portal/alerts/channels/).
NOTIFICATION_CHANNEL_KINDS: dict[str, str] = {
    "email": "portal.alerts.channels.email",
    "webhook": "portal.alerts.channels.webhook",
    "apprise": "portal.alerts.channels.apprise",
    "console": "portal.alerts.channels.console",
}
NOTIFICATION_TIMEOUT_SECONDS = env_int("NOTIFICATION_TIMEOUT_SECONDS", 10, minimum=1)
# E-mail: SMTP whenever EMAIL_HOST is set (DEBUG included); without it, mails go to the console log.
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = NOTIFICATION_TIMEOUT_SECONDS
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "portal@localhost")
EMAIL_BACKEND = "django.core.mail.backends." + ("smtp.EmailBackend" if EMAIL_HOST else "console.EmailBackend")
# A dead man's switch outside the portal (Healthchecks style): every heartbeat tick ends with a GET of it.
HEARTBEAT_PING_URL = env_url("HEARTBEAT_PING_URL", schemes=("http", "https"))
HEARTBEAT_PING_TIMEOUT_SECONDS = env_int("HEARTBEAT_PING_TIMEOUT_SECONDS", 5, minimum=1)

# --- heartbeat and scheduler tasks ----------------------------------------------
HEARTBEAT_SECONDS = env_int("HEARTBEAT_SECONDS", 60, minimum=1)
# Subtype -> dotted path of its action, imported on first use (later issues add theirs).
SCHEDULER_ACTIONS: dict[str, str] = {
    "BATCH_MONITOR": "monitoring.batches.tasks.batch_scan_action",
    "HOSTED_SERVICE_MONITOR": "monitoring.summaries.tasks.hosted_summary_action",
    "INVOKED_SERVICE_MONITOR": "monitoring.summaries.tasks.invoked_summary_action",
}
# A failing task is retried after base, 2 x base, 4 x base ... seconds, capped.
SCHEDULER_RETRY_BASE_SECONDS = env_int("SCHEDULER_RETRY_BASE_SECONDS", 60, minimum=1)
SCHEDULER_RETRY_MAX_SECONDS = env_int("SCHEDULER_RETRY_MAX_SECONDS", 3600, minimum=1)
# A batch scan with at least this many configs due reads them as plain rows and writes the quiet ones in bulk.
BATCH_SCAN_BULK_MIN = env_int("BATCH_SCAN_BULK_MIN", 2000, minimum=1)
# A tick with at least this many due tasks claims them in one transaction and runs them a chunk per transaction.
SCHEDULER_TICK_BULK_MIN = env_int("SCHEDULER_TICK_BULK_MIN", 20, minimum=1)

# django-q2 schedules created by `setup_schedules`: name -> (task path, every N minutes).
# A safety net beside the publisher loop; later engines add theirs.
PORTAL_SCHEDULES: dict[str, tuple[str, int]] = {"publish-outbox": ("portal.tasks.publish_outbox", 1)}
# The heartbeat's safety net beside the `clock` loop (django-q2 counts in whole minutes).
PORTAL_SCHEDULES["heartbeat"] = ("scheduling.scheduler.tasks.heartbeat", max(1, round(HEARTBEAT_SECONDS / 60)))
# Retention (DOMAIN §9), daily: `prune` deletes what is older than this, never what is still needed.
PORTAL_SCHEDULES["prune"] = ("portal.tasks.prune", 24 * 60)
# Schedules an earlier version declared, deleted by `setup_schedules`: finalizeAfterDays is the heartbeat's (hourly).
RETIRED_SCHEDULES = ("workflow-finalize",)

# --- retention (DOMAIN §9) -----------------------------------------------------------
PRUNE_AFTER_DAYS = env_int("PRUNE_AFTER_DAYS", 90, minimum=1)
# Audit rows are kept for ever unless this is set (0 or unset: never pruned).
AUDIT_PRUNE_AFTER_DAYS = env_int("AUDIT_PRUNE_AFTER_DAYS", 0, minimum=0)
PRUNE_BATCH_SIZE = env_int("PRUNE_BATCH_SIZE", 5000, minimum=1)
# Each engine's part, called with the cut-off and the batch size; each returns rows deleted by what.
PRUNE_STEPS: list[str] = [
    "monitoring.summaries.retention.summaries_prune",
    "monitoring.batches.retention.batch_windows_prune",
    "scheduling.scheduler.retention.task_transitions_prune",
    "scheduling.workflows.retention.job_attempts_prune",
]

# --- metrics ------------------------------------------------------------------------
METRICS_ALLOWED_IPS = env_networks("METRICS_ALLOWED_IPS", ["127.0.0.1", "::1"])
# Behind a reverse proxy every client is 127.0.0.1: with a token set, the scraper must also send it.
METRICS_TOKEN = env_str("METRICS_TOKEN")
# Functions yielding Prometheus metric families, read from the database at scrape time.
METRICS_COLLECTORS: list[str] = [
    "portal.metrics.portal_metrics",
    "scheduling.scheduler.metrics.scheduler_metrics",
    "scheduling.workflows.metrics.workflow_metrics",
    "monitoring.summaries.metrics.transaction_metrics",
    "monitoring.batches.metrics.batch_metrics",
    "portal.alerts.metrics.alert_metrics",
    "scheduling.cutoffs.metrics.cutoff_metrics",
]

# Run by the `worker` process before its cluster starts (each returns what it did): the step outcomes a
# worker of this host left in its journal are written (DOMAIN §5).
WORKER_START_HOOKS: list[str] = ["scheduling.workflows.worker.journal_replay"]

# Readiness (/healthz) beside the kernel's own: each returns (ready, fields shown), given the time.
READINESS_CHECKS: list[str] = ["scheduling.workflows.selectors.dispatcher_readiness"]

# Demo data loaders, run once by `manage.py load_demo` (make run only).
DEMO_LOADERS: list[str] = [
    "portal.alerts.demo.load_alert_demo",  # a channel writing to the console log and a rule: first, so it hears the rest
    "scheduling.scheduler.demo.load_demo",  # the TARGET2 and NYSE calendar groups
    "monitoring.batches.demo.load_batch_demo",  # configs with open, delayed, complete and held batches
    "monitoring.batches.demo.scan_batch_demo",  # the first scan at once: the demo's batch alerts are open from the start
    "monitoring.summaries.demo.load_transaction_demo",
    "scheduling.scheduler.demo.load_task_demo",  # summary tasks over the five interfaces
    "scheduling.cutoffs.demo.load_cutoff_demo",  # CHAPS, TARGET2 and Fedwire cut-offs, and one at risk now
    "scheduling.workflows.demo.load_demo",  # the demo spool and its first job
    "scheduling.workflows.demo.load_payroll_demo",  # a job that fails, a Zombie, a paused job
]

# --- django-q2 ------------------------------------------------------------------
Q_BROKER = env_choice("Q_BROKER", ("orm", "redis"), "orm")
REDIS_URL = env_url("REDIS_URL", schemes=("redis", "rediss", "unix"))
Q_TIMEOUT = env_int("Q_TIMEOUT", 600, minimum=1)
Q_CLUSTER = {
    "name": "portal",
    "workers": env_int("Q_WORKERS", 2, minimum=1),
    "timeout": Q_TIMEOUT,
    "retry": Q_TIMEOUT + 60,  # django-q2 needs retry > timeout, or a slow task runs twice
    "max_attempts": 1,
    "catch_up": False,
    "ack_failures": True,
    "save_limit": 1000,
    "poll": 0.5,
    "sync": env_bool("Q_SYNC", False),
}
# A PROCESSING task whose action has not finished by then lost its worker (or its broker task was
# lost): the next tick puts it in ERROR, due again at once (DOMAIN §5). django-q2 stops an action
# SCHEDULER_ACTION_TIMEOUT_SECONDS after it starts, so an action never outlives its claim.
SCHEDULER_CLAIM_SECONDS = env_int("SCHEDULER_CLAIM_SECONDS", min(300, Q_CLUSTER["timeout"] + 60), minimum=20)
SCHEDULER_ACTION_TIMEOUT_SECONDS = max(min(Q_CLUSTER["timeout"], SCHEDULER_CLAIM_SECONDS - 15), 5)
if Q_BROKER == "redis":
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- cache -------------------------------------------------------------------------
# Shared by every process of a host, and with REDIS_URL by every host: the console's snapshot
# (one per second for all tabs) and django-q2's cluster statistics. Without Redis each process
# keeps its own (local memory).
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": "portal"}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "portal"}}
# How long the console's refresh is served from one snapshot (0: built for every request).
CONSOLE_SNAPSHOT_SECONDS = env_int("CONSOLE_SNAPSHOT_SECONDS", 1, minimum=0)

# --- workflow jobs (DOMAIN §3) ---------------------------------------------------------
# Workflow files and the commands in them are relative to the project directory.
WORKFLOW_BASE_DIR = BASE_DIR
# How often the dispatcher looks for due jobs (a due job starts within 2 s).
DISPATCHER_POLL_MS = env_int("DISPATCHER_POLL_MS", 500, minimum=10)
# Claimed jobs allowed to wait for a free worker at once: the queue stays short, due jobs go oldest first.
DISPATCHER_QUEUE_AHEAD = env_int("DISPATCHER_QUEUE_AHEAD", Q_CLUSTER["workers"], minimum=1)
# Zombie detection and the dispatcher's sign of life, every this many seconds.
DISPATCHER_SWEEP_SECONDS = env_int("DISPATCHER_SWEEP_SECONDS", 10, minimum=1)
# DISPATCHER_STALE opens when the dispatcher has left no sign of life for this long while the scheduler runs.
DISPATCHER_STALE_SECONDS = env_int("DISPATCHER_STALE_SECONDS", 30, minimum=2 * DISPATCHER_SWEEP_SECONDS)
# A step's command is stopped after this long; it must end before django-q2's own task timeout.
JOB_TIME_LIMIT_SECONDS = env_int("JOB_TIME_LIMIT_SECONDS", max(Q_CLUSTER["timeout"] - 30, 1), minimum=1)
# A worker that ends a step goes on with what is due (its job's next step first) for this long,
# then hands over to the queue: a chain of short steps runs without a broker round-trip per step.
JOB_WORKER_BUDGET_SECONDS = env_int("JOB_WORKER_BUDGET_SECONDS", 30, minimum=0)
# A worker renews its lease on a running job this often x3, by the database's clock (DOMAIN §5). A claimed
# job no worker picked up within this long is due again (the broker lost its task); a Running job whose
# lease lapsed, and is still lapsed JOB_ZOMBIE_CONFIRM_SECONDS after a sweep first saw it, is a Zombie.
JOB_LEASE_SECONDS = env_int("JOB_LEASE_SECONDS", 30, minimum=3)
# Longer than a worker needs to renew once the database is back (it retries every second meanwhile).
JOB_ZOMBIE_CONFIRM_SECONDS = max(5, JOB_LEASE_SECONDS // 3)
# A stopped step (time limit, lease taken, its worker stopping or dead) gets SIGTERM, then SIGKILL after this.
STEP_KILL_GRACE_SECONDS = env_int("STEP_KILL_GRACE_SECONDS", 10, minimum=1)
# A finished step's outcome is kept in this file (fsync'ed) until the database has it; every worker on
# the host replays what is left there, so a step that finished is never run again because of an outage.
STEP_JOURNAL_FILE = DATA_DIR / "step-outcomes.jsonl"
# How long a worker tries to write an outcome before it leaves it to the journal's replay.
JOB_OUTCOME_RETRY_SECONDS = env_int("JOB_OUTCOME_RETRY_SECONDS", 300, minimum=1)
# A step's environment (DOMAIN §5): PATH, HOME, LANG, TZ, the job variables and the names listed here, nothing else.
JOB_ENV_PASSTHROUGH = env_list("JOB_ENV_PASSTHROUGH")
_NEVER_PASSED = ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "EMAIL_HOST_PASSWORD", "METRICS_TOKEN", "DJANGO_SETTINGS_MODULE")
for _name in JOB_ENV_PASSTHROUGH:
    if _name in _NEVER_PASSED or _name.startswith(("AWS_", "PORTAL_")) or not _name.replace("_", "a").isalnum():
        raise EnvError("JOB_ENV_PASSTHROUGH", ",".join(JOB_ENV_PASSTHROUGH), f"names of variables a step may see ({_name} is a setting of the portal or no name)")
JOB_OUTPUT_TAIL_CHARS = env_int("JOB_OUTPUT_TAIL_CHARS", 4000, minimum=100)
if JOB_TIME_LIMIT_SECONDS > Q_CLUSTER["timeout"]:
    raise EnvError("JOB_TIME_LIMIT_SECONDS", str(JOB_TIME_LIMIT_SECONDS), f"at most Q_TIMEOUT ({Q_CLUSTER['timeout']})")

# --- API --------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.api.auth.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["portal.permissions.IsViewer"],
    # JSON only: one body format, checked once (portal.api.parsers); a form body is a 415.
    "DEFAULT_PARSER_CLASSES": ["portal.api.parsers.ReasonJSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_FILTER_BACKENDS": ["portal.api.fields.StrictFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "portal.api.pagination.IdCursorPagination",
    "DEFAULT_SCHEMA_CLASS": "portal.api.schema.PortalAutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DATETIME_FORMAT": "iso-8601",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Batch operations portal API",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Every API endpoint needs a login (issue 2), the description of the API included.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Several models have a "status" field with their own choices: name each set.
    "ENUM_NAME_OVERRIDES": {
        "TransactionStatusEnum": "monitoring.summaries.models.TransactionStatus",
        "AlertKindEnum": "portal.alerts.models.AlertKind",
        "ChannelKindEnum": "portal.alerts.models.ChannelKind",
        "JobStatusEnum": "scheduling.workflows.models.JobStatus",
        "TaskStateEnum": "scheduling.scheduler.models.TaskState",
        "WindowStatusEnum": "monitoring.batches.models.WindowStatus",
        "MessageStatusEnum": "portal.models.MessageStatus",
    },
    # What a client sends and what it is answered are two schemas: read-only fields are no input.
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from the portal itself (DOMAIN §6: no internet needed), its script in a file (CSP).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
SIMPLE_JWT = {
    "AUTH_HEADER_TYPES": ("Bearer",),
    "ACCESS_TOKEN_LIFETIME": dt.timedelta(seconds=env_int("JWT_ACCESS_SECONDS", 300, minimum=30)),
    "REFRESH_TOKEN_LIFETIME": dt.timedelta(seconds=env_int("JWT_REFRESH_SECONDS", 86400, minimum=60)),
    # A refresh token is good for one refresh: the answer carries its successor.
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    # Every token carries a fingerprint of the password: a new password ends them all.
    "CHECK_REVOKE_TOKEN": True,
    "TOKEN_REFRESH_SERIALIZER": "portal.api.auth.TokenRefreshSerializer",
}

LOG_FORMAT = env_choice("LOG_FORMAT", ("text", "json"), "text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "portal.logs.ContextFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(context)s] %(message)s"},
        "json": {"()": "portal.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["context"], "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_choice("LOG_LEVEL", ("debug", "info", "warning", "error", "critical"), "info").upper()},
}

# Checked here rather than only in a system check: a half-configured queue or
# broker must stop every process, including the workers, not just `check`.
if CONTROL_QUEUE_BACKEND == "sqs" and not CONTROL_QUEUE_URL:
    raise EnvError("CONTROL_QUEUE_URL", "", "the SQS queue URL when CONTROL_QUEUE_BACKEND=sqs")
if Q_BROKER == "redis" and not REDIS_URL:
    raise EnvError("REDIS_URL", "", "a redis:// URL when Q_BROKER=redis")
