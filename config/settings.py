"""Huiyuan settings: one file, the environment decides (see .env.example for every variable)."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
if (BASE_DIR / ".env").exists():
    env.read_env(str(BASE_DIR / ".env"))  # real environment variables still win

# ------------------------------------------------------------------ core
DEBUG = env.bool("DJANGO_DEBUG", default=False)
if DEBUG:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="insecure-development-key-never-use-in-production")
else:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY")  # no default: production fails fast without it
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
VAR_DIR = Path(env.str("HUIYUAN_VAR_DIR", default=str(BASE_DIR / "var")))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "django_htmx",
    "template_partials",
    "django_filters",
    "django_tables2",
    "import_export",
    "pgtrigger",
    "pghistory",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_celery_beat",
    "django_celery_results",
    "phonenumber_field",
    "ninja",
    "members",
    "tiers",
    "assets",
    "benefits",
    "promotions",
    "tags",
    "reports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.middleware.RequestLogMiddleware",
    "members.middleware.SessionMiddleware",  # Django's, with the member portal's own cookie under /m/
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "members.middleware.StaffSessionMiddleware",  # after messages: it flashes "signed out after inactivity"
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "pghistory.middleware.HistoryMiddleware",
    "axes.middleware.AxesMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "config.context_processors.office",
            ],
            "builtins": [
                "django.templatetags.i18n",
                "django.templatetags.static",
                "template_partials.templatetags.partials",
            ],
        },
    }
]

# ------------------------------------------------------------------ database
# PostgreSQL only: the ledgers rely on row locks, CHECK constraints, triggers and advisory locks.
# For a Unix socket use the ?host=/socket/dir form (django-environ does not decode %2F hosts).
DATABASES = {"default": env.db("DATABASE_URL", default="postgres:///huiyuan")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if test_database := env.str("HUIYUAN_TEST_DATABASE", default=""):
    DATABASES["default"]["TEST"] = {"NAME": test_database}

# ------------------------------------------------------------------ cache
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# ------------------------------------------------------------------ auth and sessions
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "members:login"
LOGIN_REDIRECT_URL = "reports:dashboard"
LOGOUT_REDIRECT_URL = "members:login"
SESSION_COOKIE_AGE = env.int("HUIYUAN_SESSION_MAX_AGE", default=12 * 3600)
HUIYUAN_STAFF_IDLE_MINUTES = env.int("HUIYUAN_STAFF_IDLE_MINUTES", default=30)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# Member portal (/m/): members have a session of their own, in a cookie of its own scoped to /m/, so a staff
# session never opens a portal page and a portal session never opens a back-office page. It lasts
# HUIYUAN_PORTAL_SESSION_DAYS since the member's last visit; staff idle expiry does not apply to it.
HUIYUAN_PORTAL_SESSION_COOKIE_NAME = "portal_session"
HUIYUAN_PORTAL_SESSION_DAYS = env.int("HUIYUAN_PORTAL_SESSION_DAYS", default=30)
# sign-in codes a client address may ask for per hour (one carrier NAT address can front many phones)
HUIYUAN_PORTAL_CODES_PER_IP_HOUR = env.int("HUIYUAN_PORTAL_CODES_PER_IP_HOUR", default=20)
# text messages: a dotted path to a class with send(phone_e164, text) (members.sms); the console backend prints
HUIYUAN_SMS_BACKEND = env.str("HUIYUAN_SMS_BACKEND", default="members.sms.ConsoleSmsBackend")
# regions (ISO 3166 codes) whose mobile numbers may be sent sign-in codes; others are refused by the form
HUIYUAN_SMS_REGIONS = env.list("HUIYUAN_SMS_REGIONS", default=["CN"])

# django-axes: lock a username from one address, so one shared till cannot lock everyone out.
AXES_FAILURE_LIMIT = env.int("HUIYUAN_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("HUIYUAN_LOGIN_COOLOFF_HOURS", default=0.25)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "members.views.lockout_response"
# With no proxy in front, X-Forwarded-For is whatever the client says: use the socket's address only.
AXES_IPWARE_PROXY_COUNT = env.int("HUIYUAN_PROXY_COUNT", default=0) or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if AXES_IPWARE_PROXY_COUNT else ["REMOTE_ADDR"]
)
AXES_VERBOSE = False

# ------------------------------------------------------------------ i18n and time
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = env.str("HUIYUAN_TIME_ZONE", default="Asia/Shanghai")  # business days are computed in this zone
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
HUIYUAN_CURRENCY = env.str("HUIYUAN_CURRENCY", default="CNY")
HUIYUAN_MERCHANT_NAME = env.str("HUIYUAN_MERCHANT_NAME", default="Huiyuan")
PHONENUMBER_DEFAULT_REGION = "CN"
PHONENUMBER_DB_FORMAT = "E164"

# ------------------------------------------------------------------ static files
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
# uploads (member import files); never served directly, only through views that check the role
MEDIA_ROOT = Path(env.str("HUIYUAN_MEDIA_ROOT", default=str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG and env.bool("HUIYUAN_MANIFEST_STATIC", default=True)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# ------------------------------------------------------------------ security
# Behind a TLS-terminating proxy (HUIYUAN_PROXY_COUNT >= 1) trust its X-Forwarded-Proto; never otherwise,
# since a client could forge it.
if AXES_IPWARE_PROXY_COUNT:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # container health checks speak plain HTTP inside the network
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SILENCED_SYSTEM_CHECKS = env.list("DJANGO_SILENCED_SYSTEM_CHECKS", default=[])

# ------------------------------------------------------------------ Celery
# Without REDIS_URL (first run on a laptop) kombu's filesystem broker under var/ does the job.
CELERY_TIMEZONE = TIME_ZONE
CELERY_ENABLE_UTC = True
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _queue_dir = VAR_DIR / "celery" / "queue"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        "control_folder": str(VAR_DIR / "celery" / "control"),  # kombu's default is ./control
        "store_processed": False,
    }
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"  # schedules editable in the back office
DJANGO_CELERY_BEAT_TZ_AWARE = True

# ------------------------------------------------------------------ logging
LOG_LEVEL = env.str("DJANGO_LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "config.logging.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.server": {"level": "WARNING"},  # the request log below replaces runserver's own lines
        "huiyuan.request": {"level": env.str("HUIYUAN_REQUEST_LOG_LEVEL", default="INFO")},
    },
}

# ------------------------------------------------------------------ misc
MESSAGE_TAGS = {40: "danger"}
DJANGO_TABLES2_TEMPLATE = "django_tables2/bootstrap5.html"
NINJA_PAGINATION_PER_PAGE = 50
# POS API: requests per terminal and minute (a fixed window in the cache); 0 turns the limit off
HUIYUAN_API_RATE_PER_MINUTE = env.int("HUIYUAN_API_RATE_PER_MINUTE", default=600)
# RFM (tags.rfm): the window of purchases scored, in days ending on the run's business date; 0 = all history
HUIYUAN_RFM_WINDOW_DAYS = env.int("HUIYUAN_RFM_WINDOW_DAYS", default=365)
