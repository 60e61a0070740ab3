"""HealthSpace settings. Everything configurable comes from ``config.env`` (read once)."""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.utils.csp import CSP

from healthspace.config import env

BASE_DIR = env.CHECKOUT_ROOT
DATA_DIR = env.DATA_DIR
HEALTHSPACE_ENV = env.ENVIRONMENT
IS_PRODUCTION = env.IS_PRODUCTION

SECRET_KEY = env.secret("SECRET_KEY")
DEBUG = env.get_bool("HEALTHSPACE_DEBUG", False)
if DEBUG and IS_PRODUCTION:
    # tracebacks with settings and patient data on error pages: never in production
    raise env.ConfigurationError("HEALTHSPACE_DEBUG must not be set in production.")
ALLOWED_HOSTS = (env.get("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]") or "").split(",")
CSRF_TRUSTED_ORIGINS = [o for o in (env.get("CSRF_TRUSTED_ORIGINS", "") or "").split(",") if o]

# Vault: key-encryption key (wraps each patient's data key) and the key of blind indexes.
HEALTHSPACE_KEK = env.key_bytes("HEALTHSPACE_KEK")
HEALTHSPACE_INDEX_KEY = env.key_bytes("HEALTHSPACE_INDEX_KEY")
# Ed25519 seed (32 bytes, base64) signing audit checkpoints; keep the public key off-box
# (`healthspace audit public-key`).
HEALTHSPACE_AUDIT_SIGNING_KEY = env.key_bytes("HEALTHSPACE_AUDIT_SIGNING_KEY")
# Ed25519 seed (32 bytes, base64) signing deletion receipts (account closure, granted
# deletion requests); a key of its own, so receipts can be checked without trusting the
# audit key (`healthspace verify-receipt --show-public-key`). docs/portability.md
HEALTHSPACE_RECEIPT_SIGNING_KEY = env.key_bytes("HEALTHSPACE_RECEIPT_SIGNING_KEY")
# The service's public address, for links printed by commands (staff set-up links).
HEALTHSPACE_BASE_URL = env.get("HEALTHSPACE_BASE_URL", "http://127.0.0.1:8000")
# Passkeys (WebAuthn): relying party id and allowed origins. Empty: the request's host
# (without port) and its scheme+host. Set both in production behind a proxy.
HEALTHSPACE_WEBAUTHN_RP_ID = env.get("HEALTHSPACE_WEBAUTHN_RP_ID", "") or ""
HEALTHSPACE_WEBAUTHN_ORIGINS = [
    o for o in (env.get("HEALTHSPACE_WEBAUTHN_ORIGINS", "") or "").split(",") if o
]
# Where FHIR references in exports point; the FHIR API issue serves this base.
HEALTHSPACE_FHIR_BASE = env.get("HEALTHSPACE_FHIR_BASE", "http://127.0.0.1:8000/fhir/R4")
# How long a self-claimed relationship lasts (a shift): after it, the clinician claims again.
HEALTHSPACE_SELF_CLAIM_HOURS = env.get_int("HEALTHSPACE_SELF_CLAIM_HOURS", 12)
# Where `healthspace up` looks for demo patients (Synthea bundles) before generating its own.
HEALTHSPACE_DEMO_DATA = env.get(
    "HEALTHSPACE_DEMO_DATA", str(BASE_DIR.parent / "shared" / "data" / "fhir")
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_tasks_db",
    "oauth2_provider",
    "healthspace.core",
    "healthspace.vault",
    "healthspace.records",
    "healthspace.access",
    "healthspace.audit",
    "healthspace.consent",
    "healthspace.cases",
    "healthspace.accounts",
    "healthspace.portability",
    "healthspace.notify",
    "healthspace.organiser",
    "healthspace.messaging",
    "healthspace.corrections",
    "healthspace.staff",
    "healthspace.smart",
    "healthspace.fhir_api",
    "healthspace.ops",
    "healthspace.web",
]

MIDDLEWARE = [
    "healthspace.core.requests.RequestIdMiddleware",
    "healthspace.web.middleware.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "healthspace.accounts.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "healthspace.accounts.sessions.middleware.SessionGuardMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "healthspace.web.middleware.NoStoreMiddleware",
    "healthspace.ops.middleware.ReadOnlyMiddleware",
]

ROOT_URLCONF = "healthspace.config.urls"
WSGI_APPLICATION = "healthspace.config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        # Each app keeps its pages in templates/<app>/ (STYLE.md).
        "DIRS": sorted(str(p) for p in Path(__file__).resolve().parents[1].glob("*/templates")),
        "APP_DIRS": False,
        "OPTIONS": {
            "environment": "healthspace.config.jinja2.environment",
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csrf",
                "django.template.context_processors.csp",
                "django.contrib.messages.context_processors.messages",
                "healthspace.ops.context_processors.service",
                "healthspace.web.context_processors.navigation",
            ],
        },
    },
    {  # Django admin (operators only) needs the Django template engine.
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

DATA_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        env.get("DATABASE_URL", f"sqlite:///{DATA_DIR / 'healthspace.sqlite3'}"),
        # Persistent connections: without them every request pays a new PostgreSQL backend
        # (8-15x slower, see docs/anchors performance findings).
        conn_max_age=env.get_int("DB_CONN_MAX_AGE", 600),
        conn_health_checks=True,
    )
}
# The key store: every data key (wrapped by the KEK) lives in its own database, apart from
# the data it opens, so a backup of the main database holds ciphertext but no keys. A
# patient crypto-shredded after that backup stays unreadable when it is restored. Give it
# its own credentials and a short backup retention (docs/keystore.md). Default: a second
# SQLite file beside the main one, or a database named "<main>_keystore" on the same
# PostgreSQL server.
_main = DATABASES["default"]
if env.get("HEALTHSPACE_KEYSTORE_URL"):
    _keystore_url = env.get("HEALTHSPACE_KEYSTORE_URL")
elif _main["ENGINE"] == "django.db.backends.sqlite3":
    _keystore_url = f"sqlite:///{DATA_DIR / 'keystore.sqlite3'}"
else:
    _keystore_url = None
DATABASES["keystore"] = (
    dj_database_url.parse(
        _keystore_url, conn_max_age=env.get_int("DB_CONN_MAX_AGE", 600), conn_health_checks=True
    )
    if _keystore_url
    else {**_main, "NAME": f"{_main['NAME']}_keystore", "TEST": {}}
)
for _alias, _db in DATABASES.items():
    if _db["ENGINE"] == "django.db.backends.sqlite3":
        _db["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
            "PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;",
            "transaction_mode": "IMMEDIATE",
        }
        _db["CONN_MAX_AGE"] = 0 if env.get("DATABASE_URL") is None else 600
# A PostgreSQL streaming replica for reads that may be a moment stale (who looked at a
# record, usage statistics, bulk export listings): used only inside
# healthspace.core.replicas.replica_reads() blocks, never for writes (docs/scaling.md).
if env.get("DATABASE_REPLICA_URL"):
    DATABASES["replica"] = dj_database_url.parse(
        env.get("DATABASE_REPLICA_URL"),
        conn_max_age=env.get_int("DB_CONN_MAX_AGE", 600),
        conn_health_checks=True,
    )
    # Tests read the primary's test database through this alias (no second test database).
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
# Behind PgBouncer in transaction pooling, a server-side cursor (QuerySet.iterator())
# outside a transaction may land on another server connection: turn them off there.
if (env.get("DB_DISABLE_SERVER_SIDE_CURSORS") or "").strip().lower() in {"1", "true", "yes"}:
    for _db in DATABASES.values():
        if _db["ENGINE"] == "django.db.backends.postgresql":
            _db["DISABLE_SERVER_SIDE_CURSORS"] = True
# The fixed statements of the hot paths are prepared on the server, once per connection
# (healthspace.core.pgcursor; every other statement is bound on the client as Django
# does). Off for a PgBouncer in transaction pooling that cannot keep prepared statements.
HEALTHSPACE_DB_PREPARED_STATEMENTS = env.get_bool("DB_PREPARED_STATEMENTS", True)
DATABASE_ROUTERS = [
    "healthspace.core.replicas.ReplicaRouter",
    "healthspace.vault.routers.KeystoreRouter",
]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

PASSWORD_HASHERS = [
    # Argon2id over the NFKC form of the password (the same passphrase typed on another
    # keyboard or OS still matches); keeps the "argon2" algorithm name
    "healthspace.accounts.passwords.hashers.Argon2NFKCPasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    # NIST 800-63B / ASVS 5: length, blocklists and context; no composition rules, no expiry.
    # In this order: the first rule that fails is the message shown (accounts/passwords).
    {
        "NAME": "healthspace.accounts.passwords.validators.LengthValidator",
        "OPTIONS": {"min_length": 8, "max_length": 1024},
    },
    {"NAME": "healthspace.accounts.passwords.validators.NumericValidator"},
    {"NAME": "healthspace.accounts.passwords.validators.SimilarityValidator"},
    {"NAME": "healthspace.accounts.passwords.validators.ContextWordsValidator"},
    {"NAME": "healthspace.accounts.passwords.validators.CommonPasswordValidator"},
    {"NAME": "healthspace.accounts.passwords.validators.BreachedPasswordValidator"},
]
# Django's, with the per-request reads in plain SQL (docs/performance.md)
AUTHENTICATION_BACKENDS = ["healthspace.accounts.backends.ModelBackend"]
SESSION_ENGINE = "healthspace.accounts.sessions.store"
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:record"
LOGOUT_REDIRECT_URL = "web:home"

# Sessions: short idle timeout for shared computers (a warning shows 2 minutes before);
# ended when the browser closes; an absolute lifetime however active (ASVS 7.3).
SESSION_COOKIE_AGE = env.get_int("SESSION_IDLE_SECONDS", 15 * 60)
SESSION_ABSOLUTE_SECONDS = env.get_int("SESSION_ABSOLUTE_SECONDS", 12 * 60 * 60)
# Saved when changed, and at least every minute while active (SessionGuardMiddleware),
# not on every request: the idle expiry moves with activity at one write a minute.
SESSION_SAVE_EVERY_REQUEST = False
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Strict"
# Secure cookies on by default; browsers accept them on http://127.0.0.1 and localhost.
SESSION_COOKIE_SECURE = env.get_bool("SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_NAME = "__Host-hs-session" if SESSION_COOKIE_SECURE else "hs-session"
CSRF_COOKIE_NAME = "__Host-hs-csrf" if SESSION_COOKIE_SECURE else "hs-csrf"

SECURE_CONTENT_TYPE_NOSNIFF = True
# same-origin, not no-referrer: with no-referrer Chromium sends "Origin: null" on form
# posts and Django's CSRF check refuses every one (django/django#14481). Other sites still
# get no referrer.
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_HSTS_SECONDS = env.get_int("SECURE_HSTS_SECONDS", 31_536_000 if IS_PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = IS_PRODUCTION
SECURE_SSL_REDIRECT = env.get_bool("SECURE_SSL_REDIRECT", IS_PRODUCTION)
if env.get_bool("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
}

# Email. Production: SMTP from the environment (GOV.UK Notify comes with the notify app).
# Demo: messages are written as files to <data dir>/outbox, so demo users can read them.
# Emails never carry clinical content.
DEFAULT_FROM_EMAIL = env.get("DEFAULT_FROM_EMAIL", "HealthSpace <no-reply@healthspace.invalid>")
if env.get("EMAIL_HOST") or IS_PRODUCTION:
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": env.get("EMAIL_HOST", "localhost"),
                "port": env.get_int("EMAIL_PORT", 587),
                "username": env.get("EMAIL_HOST_USER", "") or "",
                "password": env.get("EMAIL_HOST_PASSWORD", "") or "",
                "use_tls": env.get_bool("EMAIL_USE_TLS", True),
                "timeout": 10,
            },
        }
    }
else:
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "OPTIONS": {"file_path": str(DATA_DIR / "outbox")},
        }
    }
PASSWORD_RESET_TIMEOUT = 60 * 60  # reset links work for one hour, once

# Notifications (healthspace.notify): "email" sends through MAILERS above; "govuk-notify"
# through GOV.UK Notify, one email template per notice (see docs/notifications.md).
HEALTHSPACE_NOTIFY_GATEWAY = env.get("HEALTHSPACE_NOTIFY_GATEWAY", "email")
if HEALTHSPACE_NOTIFY_GATEWAY not in ("email", "govuk-notify"):
    raise env.ConfigurationError("HEALTHSPACE_NOTIFY_GATEWAY must be email or govuk-notify")
GOVUK_NOTIFY_API_KEY = (
    env.secret("GOVUK_NOTIFY_API_KEY") if HEALTHSPACE_NOTIFY_GATEWAY == "govuk-notify" else ""
)
# "new-message=<template id>,appointment-reminder=<id>,..."
HEALTHSPACE_NOTIFY_TEMPLATES = dict(
    pair.split("=", 1)
    for pair in (env.get("HEALTHSPACE_NOTIFY_TEMPLATES", "") or "").split(",")
    if "=" in pair
)

# Background tasks (Django's Tasks framework): rows in the database, run by
# `healthspace worker` (`healthspace up` starts one). A task queued inside a transaction
# exists only if that transaction commits.
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}

# Message attachments: PDF, PNG or JPEG (by content), at most this size each.
HEALTHSPACE_ATTACHMENT_MAX_BYTES = env.get_int("HEALTHSPACE_ATTACHMENT_MAX_BYTES", 5 * 1024 * 1024)
# Request bodies: forms are small; an upload may be one attachment and its form. Larger
# bodies are refused before they are read (413).
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
HEALTHSPACE_MAX_REQUEST_BYTES = HEALTHSPACE_ATTACHMENT_MAX_BYTES + 256 * 1024
# FHIR input validation (docs/fhir-input-validation.md): every Nth resource that the
# validator's own walk is certain of is checked by fhir.resources too (0 = never).
HEALTHSPACE_FHIR_LIBRARY_CHECK_EVERY = env.get_int("HEALTHSPACE_FHIR_LIBRARY_CHECK_EVERY", 100)
# What the message pages tell patients about how long a practice takes to answer.
HEALTHSPACE_MESSAGE_REPLY_DAYS = env.get_int("HEALTHSPACE_MESSAGE_REPLY_DAYS", 2)
# The service's lifecycle (docs/lifecycle.md): how long a process keeps the service state
# it read (so a page costs no query for it), and how many closure reminders one worker
# task queues before it hands on to the next.
HEALTHSPACE_SERVICE_STATE_SECONDS = env.get_int("HEALTHSPACE_SERVICE_STATE_SECONDS", 5)
HEALTHSPACE_CLOSURE_REMINDER_BATCH = env.get_int("HEALTHSPACE_CLOSURE_REMINDER_BATCH", 200)
# Where `healthspace service purge` writes its closure report (JSON and text).
HEALTHSPACE_CLOSURE_REPORT_DIR = Path(
    env.get("HEALTHSPACE_CLOSURE_REPORT_DIR", str(DATA_DIR / "closure"))
)
# Usage statistics (docs/statistics.md): the service's annual cost in pounds, to show the
# cost per Summary Care Record view. Unset: no cost figure.
HEALTHSPACE_ANNUAL_COST_GBP = env.get_decimal("HEALTHSPACE_ANNUAL_COST_GBP")

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "Europe/London"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# NHS.UK frontend, installed by npm from package.json (no CDN).
# healthspace.css is compiled from src/healthspace/web/scss by `npm run build:css` (./hs does it).
STATICFILES_DIRS = [
    ("nhsuk", BASE_DIR / "node_modules" / "nhsuk-frontend" / "dist" / "nhsuk"),
    BASE_DIR / "build" / "static",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Production serves hashed, compressed files made by collectstatic; the demo and tests
    # serve straight from node_modules through WhiteNoise's finders.
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if IS_PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not IS_PRODUCTION

# Logging never writes clinical content: our code logs identifiers of rows and counts only,
# and a filter masks anything shaped like an NHS number or an email address on every record.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "healthspace.core.logging.RedactIdentifiersFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["redact"],
            "formatter": "plain",
        }
    },
    "root": {"handlers": ["console"], "level": env.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # Request URLs and bodies are not logged at INFO; errors carry only the path.
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
        # WeasyPrint (the SCR printout) narrates each rendering step and font at INFO
        "weasyprint": {"level": "ERROR"},
        "fontTools": {"level": "ERROR"},
    },
}

# --- FHIR R4 API and SMART on FHIR (docs/fhir-api.md, docs/smart.md) ---------------------
# The FHIR base (HEALTHSPACE_FHIR_BASE, above) is the audience (aud) patient apps ask a
# token for; OAuth endpoints live at HEALTHSPACE_BASE_URL/oauth/.
HEALTHSPACE_OIDC_RSA_KEY = env.secret("HEALTHSPACE_OIDC_RSA_KEY")
# django-oauth-toolkit's own models (named because they are swappable)
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth2_provider.AccessToken"  # noqa: S105 - a model name
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "oauth2_provider.RefreshToken"  # noqa: S105 - a model name
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "oauth2_provider.IDToken"  # noqa: S105 - a model name
OAUTH2_PROVIDER_GRANT_MODEL = "oauth2_provider.Grant"
OAUTH2_PROVIDER = {
    "OAUTH2_VALIDATOR_CLASS": "healthspace.smart.validator.SmartValidator",
    "SCOPES_BACKEND_CLASS": "healthspace.smart.scopes_backend.SmartScopes",
    "PKCE_REQUIRED": True,
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "ACCESS_TOKEN_EXPIRE_SECONDS": env.get_int("HEALTHSPACE_OAUTH_ACCESS_TOKEN_SECONDS", 3600),
    "REFRESH_TOKEN_EXPIRE_SECONDS": env.get_int(
        "HEALTHSPACE_OAUTH_REFRESH_TOKEN_SECONDS", 90 * 24 * 3600
    ),
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "REQUEST_APPROVAL_PROMPT": "force",
    "OIDC_ENABLED": True,
    "OIDC_RSA_PRIVATE_KEY": HEALTHSPACE_OIDC_RSA_KEY,
    "OIDC_ISS_ENDPOINT": HEALTHSPACE_BASE_URL.rstrip("/") + "/oauth",
    # native apps may use private-use schemes; the loopback address for development
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https", "http"] if not IS_PRODUCTION else ["https"],
    "ALLOWED_SCHEMES": ["https", "http"] if not IS_PRODUCTION else ["https"],
    # RFC 9700 (OAuth 2.0 Security BCP): tokens stored only as hashes, S256 PKCE only, no
    # implicit or password grants, no tokens in query strings, iss in authorization responses
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
}
# Requests per minute, per client (FHIR API) and per client id or address (token endpoint).
HEALTHSPACE_FHIR_RATE_LIMIT = env.get_int("HEALTHSPACE_FHIR_RATE_LIMIT", 1200)
HEALTHSPACE_OAUTH_TOKEN_RATE_LIMIT = env.get_int("HEALTHSPACE_OAUTH_TOKEN_RATE_LIMIT", 60)
# FHIR request bodies (transaction Bundles from GP feeds are larger than web forms).
HEALTHSPACE_FHIR_MAX_REQUEST_BYTES = env.get_int(
    "HEALTHSPACE_FHIR_MAX_REQUEST_BYTES", 20 * 1024 * 1024
)
# Searches: page size when _count is not given, and the most a page may hold.
HEALTHSPACE_FHIR_PAGE_SIZE = env.get_int("HEALTHSPACE_FHIR_PAGE_SIZE", 50)
HEALTHSPACE_FHIR_MAX_PAGE_SIZE = env.get_int("HEALTHSPACE_FHIR_MAX_PAGE_SIZE", 500)
# Bulk Data export files are kept this long after the export completes, then deleted.
HEALTHSPACE_BULK_EXPORT_HOURS = env.get_int("HEALTHSPACE_BULK_EXPORT_HOURS", 24)
# How long a patient's own download ("Download your data") is kept before the worker deletes it.
HEALTHSPACE_DOWNLOAD_HOURS = env.get_int("HEALTHSPACE_DOWNLOAD_HOURS", 24)
