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
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics/?$"]
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
HEALTHZ_OUTBOX_MAX_AGE_SECONDS = env_int("HEALTHZ_OUTBOX_MAX_AGE_SECONDS", 900, minimum=1)

# --- heartbeat and scheduler tasks ----------------------------------------------
HEARTBEAT_SECONDS = env_int("HEARTBEAT_SECONDS", 60, minimum=1)
# Subtype -> dotted path of its action, imported on first use (later issues add theirs).
SCHEDULER_ACTIONS: dict[str, str] = {
    "BATCH_MONITOR": "monitoring.tasks.batch_scan_action",
}

# django-q2 schedules created by `setup_schedules`: name -> (task path, every N minutes).
# A safety net beside the publisher loop; later engines add theirs.
PORTAL_SCHEDULES: dict[str, tuple[str, int]] = {"publish-outbox": ("portal.tasks.publish_outbox", 1)}

# Demo data loaders, run once by `manage.py load_demo` (make run only).
DEMO_LOADERS: list[str] = [
    "monitoring.batch_demo.load_batch_demo",
]

# --- django-q2 ------------------------------------------------------------------
Q_BROKER = env_choice("Q_BROKER", ("orm", "redis"), "orm")
REDIS_URL = env_url("REDIS_URL", schemes=("redis", "rediss", "unix"))
Q_CLUSTER = {
    "name": "portal",
    "workers": env_int("Q_WORKERS", 2, minimum=1),
    "timeout": env_int("Q_TIMEOUT", 600, minimum=1),
    "retry": env_int("Q_TIMEOUT", 600, minimum=1) + 60,
    "max_attempts": 1,
    "catch_up": False,
    "ack_failures": True,
    "save_limit": 1000,
    "poll": 0.5,
    "sync": env_bool("Q_SYNC", False),
}
if Q_BROKER == "redis":
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- API --------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["portal.permissions.IsViewer"],
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
}
SIMPLE_JWT = {"AUTH_HEADER_TYPES": ("Bearer",)}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
}

# Checked here rather than only in a system check: a half-configured queue or
# broker must stop every process, including the workers, not just `check`.
if CONTROL_QUEUE_BACKEND == "sqs" and not CONTROL_QUEUE_URL:
    raise EnvError("CONTROL_QUEUE_URL", "", "the SQS queue URL when CONTROL_QUEUE_BACKEND=sqs")
if Q_BROKER == "redis" and not REDIS_URL:
    raise EnvError("REDIS_URL", "", "a redis:// URL when Q_BROKER=redis")
