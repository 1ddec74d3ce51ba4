"""Settings for the batch operations portal, read from the environment only."""

from __future__ import annotations

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
if not SECRET_KEY:
    if not DEBUG:
        raise EnvError("SECRET_KEY", "", "a secret value (only DEBUG=1 has a development default)")
    SECRET_KEY = "development-only-insecure-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "django_filters",
    "drf_spectacular",
    "django_q",
    "django_prometheus",
    "portal",
    "monitoring",
    "scheduling",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
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

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = DEBUG

LOGIN_URL = "/admin/login/"

# --- security (check --deploy) --------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz/?$", r"^metrics/?$"]  # probes and scrapers often speak plain HTTP
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- control queue and outbox -------------------------------------------------
CONTROL_QUEUE_BACKEND = env_choice("CONTROL_QUEUE_BACKEND", ("local", "sqs"), "local")
CONTROL_QUEUE_BACKENDS = {
    "local": "portal.backends.local.LocalQueue",
    "sqs": "portal.backends.sqs.SqsQueue",
}
CONTROL_QUEUE_URL = env_url("CONTROL_QUEUE_URL", schemes=("http", "https"))
CONTROL_QUEUE_FILE = DATA_DIR / "control-queue.jsonl"
AWS_REGION = env_str("AWS_REGION", "us-east-1")
AWS_ENDPOINT_URL = env_url("AWS_ENDPOINT_URL", schemes=("http", "https"))
OUTBOX_BATCH_SIZE = env_int("OUTBOX_BATCH_SIZE", 100, minimum=1)
OUTBOX_BACKOFF_MAX_SECONDS = env_int("OUTBOX_BACKOFF_MAX_SECONDS", 300, minimum=1)
OUTBOX_POLL_SECONDS = env_int("OUTBOX_POLL_SECONDS", 1, minimum=1)
# A publisher holds the messages it claimed this long; one that dies after sending and
# before marking lets them go out again after it. Batches start only in its first half,
# so it must outlast one SQS call (3 s connect + 10 s read) twice over.
OUTBOX_LEASE_SECONDS = env_int("OUTBOX_LEASE_SECONDS", 120, minimum=30)
HEALTHZ_OUTBOX_MAX_AGE_SECONDS = env_int("HEALTHZ_OUTBOX_MAX_AGE_SECONDS", 900, minimum=1)

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

# django-q2 schedules created by `setup_schedules`: name -> (task path, every N minutes).
# A safety net beside the publisher loop; later engines add theirs.
PORTAL_SCHEDULES: dict[str, tuple[str, int]] = {"publish-outbox": ("portal.tasks.publish_outbox", 1)}
# The heartbeat's safety net beside the `clock` loop (django-q2 counts in whole minutes).
PORTAL_SCHEDULES["heartbeat"] = ("scheduling.scheduler.tasks.heartbeat", max(1, round(HEARTBEAT_SECONDS / 60)))
# Schedules an earlier version declared, deleted by `setup_schedules`: finalizeAfterDays is the heartbeat's (hourly).
RETIRED_SCHEDULES = ("workflow-finalize",)

# --- metrics ------------------------------------------------------------------------
METRICS_ALLOWED_IPS = env_networks("METRICS_ALLOWED_IPS", ["127.0.0.1", "::1"])
# Functions yielding Prometheus metric families, read from the database at scrape time.
METRICS_COLLECTORS: list[str] = [
    "portal.metrics.portal_metrics",
    "scheduling.scheduler.metrics.scheduler_metrics",
    "scheduling.workflows.metrics.workflow_metrics",
    "monitoring.summaries.metrics.transaction_metrics",
    "monitoring.batches.metrics.batch_metrics",
]

# Demo data loaders, run once by `manage.py load_demo` (make run only).
DEMO_LOADERS: list[str] = [
    "scheduling.scheduler.demo.load_demo",  # the TARGET2 and NYSE calendar groups
    "monitoring.batches.demo.load_batch_demo",  # configs with open, delayed, complete and held batches
    "monitoring.summaries.demo.load_transaction_demo",
    "scheduling.scheduler.demo.load_task_demo",  # summary tasks over the five interfaces
    "scheduling.workflows.demo.load_demo",  # the demo spool and its first job
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
# A PROCESSING task whose action has not finished by then lost its worker
# (django-q2 kills a task at Q_TIMEOUT); the next tick puts it in ERROR.
SCHEDULER_CLAIM_SECONDS = env_int("SCHEDULER_CLAIM_SECONDS", Q_CLUSTER["timeout"] + 60, minimum=10)
if Q_BROKER == "redis":
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- workflow jobs (DOMAIN §3) ---------------------------------------------------------
# Workflow files and the commands in them are relative to the project directory.
WORKFLOW_BASE_DIR = BASE_DIR
# How often the dispatcher looks for due jobs (a due job starts within 2 s).
DISPATCHER_POLL_MS = env_int("DISPATCHER_POLL_MS", 500, minimum=10)
# Claimed jobs allowed to wait for a free worker at once: the queue stays short, due jobs go oldest first.
DISPATCHER_QUEUE_AHEAD = env_int("DISPATCHER_QUEUE_AHEAD", Q_CLUSTER["workers"], minimum=1)
# Zombie detection and the dispatcher's sign of life, every this many seconds.
DISPATCHER_SWEEP_SECONDS = 10
# A step's command is stopped after this long; it must end before django-q2's own task timeout.
JOB_TIME_LIMIT_SECONDS = env_int("JOB_TIME_LIMIT_SECONDS", max(Q_CLUSTER["timeout"] - 30, 1), minimum=1)
# A worker that ends a step goes on with what is due (its job's next step first) for this long,
# then hands over to the queue: a chain of short steps runs without a broker round-trip per step.
JOB_WORKER_BUDGET_SECONDS = env_int("JOB_WORKER_BUDGET_SECONDS", 30, minimum=0)
# A worker renews its lease on a running job this often x3; a lapsed lease makes the job a Zombie.
JOB_LEASE_SECONDS = env_int("JOB_LEASE_SECONDS", 30, minimum=3)
# A claimed job not picked up by a worker within this long is a Zombie (the task was lost).
JOB_QUEUE_GRACE_SECONDS = Q_CLUSTER["timeout"] + JOB_WORKER_BUDGET_SECONDS + JOB_LEASE_SECONDS
JOB_OUTPUT_TAIL_CHARS = env_int("JOB_OUTPUT_TAIL_CHARS", 4000, minimum=100)
if JOB_TIME_LIMIT_SECONDS > Q_CLUSTER["timeout"]:
    raise EnvError("JOB_TIME_LIMIT_SECONDS", str(JOB_TIME_LIMIT_SECONDS), f"at most Q_TIMEOUT ({Q_CLUSTER['timeout']})")

# --- API --------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["portal.permissions.IsViewer"],
    "DEFAULT_PARSER_CLASSES": [
        "portal.api.parsers.ReasonJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "portal.api.pagination.IdCursorPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
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
    },
}
SIMPLE_JWT = {"AUTH_HEADER_TYPES": ("Bearer",)}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_choice("LOG_LEVEL", ("debug", "info", "warning", "error", "critical"), "info").upper()},
}

# Checked here rather than only in a system check: a half-configured queue or
# broker must stop every process, including the workers, not just `check`.
if CONTROL_QUEUE_BACKEND == "sqs" and not CONTROL_QUEUE_URL:
    raise EnvError("CONTROL_QUEUE_URL", "", "the SQS queue URL when CONTROL_QUEUE_BACKEND=sqs")
if Q_BROKER == "redis" and not REDIS_URL:
    raise EnvError("REDIS_URL", "", "a redis:// URL when Q_BROKER=redis")
