"""Settings from the environment (and `.env`), typed, with embedded defaults.

`load_config()` returns a plain dict for `app.config`. A bad value raises
`ConfigError` with one line naming the variable.
"""
import logging
import os
import secrets
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote_plus

from dotenv import dotenv_values
from limits import parse_many

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = BASE_DIR / "instance"
# Keys once printed in this project's documentation: anyone can sign a session with them.
PUBLISHED_SECRET_KEYS = ("dev-insecure-secret-key",)
TWILIO_MEDIA_HOST = "api.twilio.com"
log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A setting is missing or malformed."""


def _text(env, name, default=None):
    value = env.get(name)
    return default if value is None or value.strip() == "" else value.strip()


def _int(env, name, default, minimum=0):
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} debe ser un número entero, no {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} debe ser al menos {minimum}, no {value}")
    return value


def _float(env, name, default, minimum=0.0):
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} debe ser un número, no {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} debe ser al menos {minimum}, no {value}")
    return value


def _bool(env, name, default=False):
    raw = _text(env, name)
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "si", "sí", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} debe ser true o false, no {raw!r}")


def _choice(env, name, choices, default):
    value = _text(env, name, default)
    if value not in choices:
        raise ConfigError(f"{name} debe ser uno de {', '.join(choices)}, no {value!r}")
    return value


def _url(env, name, default=None, schemes=("http", "https")):
    value = _text(env, name, default)
    if value is not None and not value.split("://", 1)[0] in schemes:
        raise ConfigError(f"{name} debe ser una URL {'/'.join(schemes)}, no {value!r}")
    return value.rstrip("/") if value else value


def _origins(env, name, default):
    """Comma-separated hosts (`api.twilio.com`, meaning https) or origins (`http://127.0.0.1:8080`)."""
    origins = []
    for item in (_text(env, name, default) or "").split(","):
        item = item.strip().lower().rstrip("/")
        if not item:
            continue
        origin = item if "://" in item else f"https://{item}"
        scheme, _, host = origin.partition("://")
        if scheme not in ("http", "https") or not host or "/" in host or "@" in host:
            raise ConfigError(f"{name} debe listar hosts u orígenes http(s) separados por comas, no {item!r}")
        origins.append(origin)
    return tuple(origins)


def _rate_limit(env, name, default):
    value = _text(env, name, default)
    try:
        parse_many(value)
    except ValueError:
        raise ConfigError(f"{name} debe ser un límite como '10 per minute' o '5/second; 100/hour', no {value!r}") \
            from None
    return value


def _database_url(env):
    url = _text(env, "DATABASE_URL")
    if url:
        if not url.startswith(("sqlite:", "mysql+pymysql:", "mysql:", "mariadb+pymysql:")):
            raise ConfigError(f"DATABASE_URL debe empezar por sqlite:/// o mysql+pymysql://, no {url!r}")
        return "mysql+pymysql://" + url[len("mysql://"):] if url.startswith("mysql://") else url
    host = _text(env, "DB_HOST")
    if host:
        user = quote_plus(_text(env, "DB_USER", "root"))
        password = quote_plus(_text(env, "DB_PASSWORD", ""))
        port = _int(env, "DB_PORT", 3306, minimum=1)
        name = _text(env, "DB_NAME", "whatsapp_ia")
        auth = f"{user}:{password}" if password else user
        return f"mysql+pymysql://{auth}@{host}:{port}/{name}?charset=utf8mb4"
    return f"sqlite:///{INSTANCE_DIR / 'whatsapp_ia.db'}"


def running_under_gunicorn() -> bool:
    return "gunicorn" in Path(sys.argv[0]).name


def load_config(environ=None) -> dict:
    """Read every setting; raise ConfigError on the first bad one."""
    if environ is None:
        environ = {**dotenv_values(BASE_DIR / ".env"), **os.environ}
    env = {k: v for k, v in environ.items() if v is not None}
    meta_token = _text(env, "META_TOKEN")
    production = _choice(env, "APP_ENV", ("development", "production"),
                         "production" if running_under_gunicorn() else "development") == "production"
    secret_key = _text(env, "SECRET_KEY")
    if secret_key in PUBLISHED_SECRET_KEYS:
        raise ConfigError("SECRET_KEY tiene un valor de ejemplo publicado; genere uno propio con "
                          "python3 -c 'import secrets; print(secrets.token_hex(32))'")
    if production and not secret_key:
        raise ConfigError("SECRET_KEY debe definirse en producción; genere una con "
                          "python3 -c 'import secrets; print(secrets.token_hex(32))'")
    redis_url = _url(env, "REDIS_URL", schemes=("redis", "rediss", "unix"))
    jobs_backend = _choice(env, "JOBS_BACKEND", ("thread", "rq"), "thread")
    if jobs_backend == "rq" and not redis_url:
        raise ConfigError("JOBS_BACKEND=rq necesita REDIS_URL")
    transport = _choice(env, "WHATSAPP_TRANSPORT", ("sandbox", "cloud"), "cloud" if meta_token else "sandbox")
    if transport == "cloud" and not meta_token:
        raise ConfigError("WHATSAPP_TRANSPORT=cloud necesita META_TOKEN")
    meta_app_secret = _text(env, "META_APP_SECRET")
    if production and meta_token and not meta_app_secret:
        raise ConfigError("META_APP_SECRET debe definirse en producción cuando META_TOKEN está definido: sin él "
                          "POST /webhook aceptaría actualizaciones sin firma (cópielo del panel de la app en Meta)")
    twilio_auth_token = _text(env, "TWILIO_AUTH_TOKEN")
    twilio_media_hosts = _origins(env, "TWILIO_MEDIA_HOSTS", TWILIO_MEDIA_HOST)
    if production and not twilio_auth_token and twilio_media_hosts != (f"https://{TWILIO_MEDIA_HOST}",):
        raise ConfigError("TWILIO_AUTH_TOKEN debe definirse en producción cuando se configura Twilio "
                          "(TWILIO_MEDIA_HOSTS): sin él no se pueden comprobar las firmas de Twilio")
    login_rate_limit = _rate_limit(env, "LOGIN_RATE_LIMIT", "10 per minute")
    return {
        "APP_ENV": "production" if production else "development",
        "SECRET_KEY": secret_key,
        "SECRET_KEY_FILE": str(INSTANCE_DIR / "secret_key"),
        "SQLALCHEMY_DATABASE_URI": _database_url(env),
        "META_TOKEN": meta_token,
        "PHONE_NUMBER_ID": _text(env, "PHONE_NUMBER_ID"),
        "VERIFY_TOKEN": _text(env, "VERIFY_TOKEN"),
        "META_APP_SECRET": meta_app_secret,
        "WHATSAPP_TRANSPORT": transport,
        "GRAPH_API_URL": _url(env, "GRAPH_API_URL", "https://graph.facebook.com"),
        "GRAPH_API_VERSION": _text(env, "GRAPH_API_VERSION", "v25.0"),
        "INITIAL_STEP": _text(env, "INITIAL_STEP", "inicio"),
        "SESSION_TIMEOUT": _int(env, "SESSION_TIMEOUT", 1800, minimum=1),
        "MEDIA_ROOT": str(Path(_text(env, "MEDIA_ROOT", str(INSTANCE_DIR / "media"))).resolve()),
        "MAX_TRANSCRIPTION_DURATION_MS": _int(env, "MAX_TRANSCRIPTION_DURATION_MS", 120_000, minimum=1),
        "TRANSCRIPTION_MAX_AVG_TIME_SEC": _float(env, "TRANSCRIPTION_MAX_AVG_TIME_SEC", 15.0),
        "INIT_DB_ON_START": _bool(env, "INIT_DB_ON_START", False),
        "REDIS_URL": redis_url,
        "JOBS_BACKEND": jobs_backend,
        "JOB_RETRY_DELAYS": (1, 5, 30),
        "MEDIA_RETRY_DELAYS": (1, 4, 15),
        "SEND_RETRY_DELAYS": (2, 5, 10, 20, 30, 60, 60, 120, 300, 600),
        "WHATSAPP_RATE_PER_SECOND": _int(env, "WHATSAPP_RATE_PER_SECOND", 80, minimum=1),
        "JOB_THREADS": _int(env, "JOB_THREADS", 4, minimum=1),
        "OUTSIDE_JOB_THREADS": _int(env, "OUTSIDE_JOB_THREADS", 4, minimum=1),
        "MEDIA_CONNECT_TIMEOUT_SEC": _float(env, "MEDIA_CONNECT_TIMEOUT_SEC", 5.0, minimum=0.1),
        "MEDIA_READ_TIMEOUT_SEC": _float(env, "MEDIA_READ_TIMEOUT_SEC", 30.0, minimum=0.1),
        "VOSK_MODEL_PATH": _text(env, "VOSK_MODEL_PATH"),
        "GEMINI_API_KEY": _text(env, "GEMINI_API_KEY"),
        "GEMINI_MODEL": _text(env, "GEMINI_MODEL", "gemini-2.5-flash"),
        "GEMINI_API_URL": _url(env, "GEMINI_API_URL"),
        "GEMINI_TIMEOUT_SEC": _float(env, "GEMINI_TIMEOUT_SEC", 8.0, minimum=0.1),
        "SENTIMENT_PROVIDER": _choice(env, "SENTIMENT_PROVIDER", ("auto", "local", "gemini", "off"), "auto"),
        "TWILIO_AUTH_TOKEN": twilio_auth_token,
        "TWILIO_MEDIA_HOSTS": twilio_media_hosts,
        "FORWARD_WEBHOOK_URL": _url(env, "FORWARD_WEBHOOK_URL"),
        "ADMIN_PASSWORD": _text(env, "ADMIN_PASSWORD"),
        "PORT": _int(env, "PORT", 5000, minimum=1),
        "MAX_CONTENT_LENGTH": 3 * 1024 * 1024,
        "MEDIA_MAX_BYTES": _int(env, "MEDIA_MAX_BYTES", 100 * 1024 * 1024, minimum=1),
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        "LOGIN_RATE_LIMIT": login_rate_limit,
        "LOGIN_USER_RATE_LIMIT": _rate_limit(env, "LOGIN_USER_RATE_LIMIT", login_rate_limit),
        "TRUSTED_PROXIES": _int(env, "TRUSTED_PROXIES", 0),
        "LIVE_STREAMS_PER_USER": _int(env, "LIVE_STREAMS_PER_USER", 5, minimum=1),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SECURE": production,
    }


def _create_secret_key(target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, draft = tempfile.mkstemp(dir=target.parent, prefix=".secret_key-")
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(32) + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.link(draft, target)
        log.warning("SECRET_KEY is not set: generated a random one in %s (kept for the next starts; "
                    "set SECRET_KEY to share one between hosts)", target)
    except FileExistsError:
        pass
    finally:
        os.unlink(draft)


def instance_secret_key(path: str) -> str:
    """The key kept in `path`, created (random, mode 0600) on the first start without SECRET_KEY.

    Several workers starting at once agree: the key is written to a private temporary file that is then
    hard-linked to `path`, which only the first succeeds in, and everyone reads what `path` holds.
    """
    target = Path(path)
    try:
        if not target.exists():
            _create_secret_key(target)
        key = target.read_text().strip()
    except OSError as error:
        raise ConfigError(f"SECRET_KEY no está definida y no se pudo guardar ni leer una generada en {target} "
                          f"({error.strerror}); defina SECRET_KEY o permita escribir en esa carpeta") from None
    if len(key) < 32:
        raise ConfigError(f"SECRET_KEY no está definida y {target} no tiene una clave válida; "
                          "borre ese archivo para generar otra o defina SECRET_KEY")
    return key


def test_config(**overrides) -> dict:
    """Settings for the test suite: no .env, sandbox transport, fixed secrets."""
    env = {"SECRET_KEY": "test-secret", "APP_ENV": "development", "VERIFY_TOKEN": "verify-me",
           "META_APP_SECRET": "app-secret", "WHATSAPP_TRANSPORT": "sandbox"}
    config = load_config(env)
    config.update(TESTING=True, WTF_CSRF_ENABLED=True, RATELIMIT_ENABLED=True)
    config.update(overrides)
    return config
