"""Configuration, read from the environment inside ``create_app`` (never at import time).

Every variable is optional: without them the embedded defaults run (SQLite in the instance
folder, local-directory storage, jobs in-process). See API.md "Operating the service".
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path


def _int(env, name: str, default: int) -> int:
    value = env.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError as exc:  # a typo in production config must stop the start, loudly
        raise RuntimeError(f"{name} must be an integer, got {value!r}") from exc


def _secret_key(env, instance_path: Path) -> str:
    if env.get("SECRET_KEY"):
        return env["SECRET_KEY"]
    # Embedded default: generate once and keep it in the instance folder, so sessions survive a restart.
    key_file = instance_path / "secret_key"
    if not key_file.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return key_file.read_text().strip()


def load_config(instance_path: str, env=None) -> dict:
    env = os.environ if env is None else env
    instance = Path(instance_path)
    database_url = env.get("DATABASE_URL") or f"sqlite:///{instance / 'lp_saas.sqlite3'}"
    redis_url = env.get("REDIS_URL") or None
    base_domain = (env.get("LP_BASE_DOMAIN") or "localhost").lower().strip(".")
    return {
        "SECRET_KEY": _secret_key(env, instance),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        # the largest body any route takes: a 10 MB file through the local-storage upload route (the
        # embedded default) with its form; JSON API bodies have their own, smaller limit
        "MAX_CONTENT_LENGTH": 11 * 1024 * 1024,
        "REDIS_URL": redis_url,
        "RQ_QUEUE_PREFIX": env.get("LP_QUEUE_PREFIX", "lp"),
        "S3_ENDPOINT": env.get("S3_ENDPOINT") or None,
        "S3_ACCESS_KEY": env.get("S3_ACCESS_KEY", ""),
        "S3_SECRET_KEY": env.get("S3_SECRET_KEY", ""),
        "S3_REGION": env.get("S3_REGION", "us-east-1"),
        "S3_PUBLIC_ENDPOINT": env.get("S3_PUBLIC_ENDPOINT") or None,
        "S3_BUCKET_PREFIX": env.get("LP_BUCKET_PREFIX", "lp-"),
        "LOCAL_STORAGE_DIR": env.get("LP_STORAGE_DIR") or str(instance / "storage"),
        "LP_BASE_DOMAIN": base_domain,
        # Werkzeug rejects any other Host header: the base domain and its subdomains only.
        "TRUSTED_HOSTS": [base_domain, "." + base_domain],
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": env.get("LP_SECURE_COOKIES", "") == "1",
        # No Domain attribute: a school's cookie never travels to another school's subdomain.
        "SESSION_COOKIE_DOMAIN": None,
        "REMEMBER_COOKIE_DURATION": 0,
        "LP_SESSION_IDLE_MINUTES": _int(env, "LP_SESSION_IDLE_MINUTES", 30),
        "LP_SESSION_ABSOLUTE_HOURS": _int(env, "LP_SESSION_ABSOLUTE_HOURS", 12),
        "LP_TOKEN_HOURS": _int(env, "LP_TOKEN_HOURS", 8),
        "LP_LOGIN_MAX_FAILURES": _int(env, "LP_LOGIN_MAX_FAILURES", 5),
        "LP_LOGIN_LOCK_MINUTES": _int(env, "LP_LOGIN_LOCK_MINUTES", 15),
        "LP_CLIENT_LOGIN_LIMIT": env.get("LP_CLIENT_LOGIN_LIMIT", "20 per 15 minutes"),
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        "RATELIMIT_KEY_PREFIX": env.get("LP_QUEUE_PREFIX", "lp") + "-limits",
        "RATELIMIT_HEADERS_ENABLED": True,
        "BABEL_DEFAULT_LOCALE": "zh_Hant_TW",
        "BABEL_DEFAULT_TIMEZONE": "Asia/Taipei",
        "LP_APP_DB_ROLE": env.get("LP_APP_DB_ROLE", "lp_app"),
        "WTF_CSRF_TIME_LIMIT": None,  # tied to the session instead, which has its own timeouts
        "MAIL_SMTP_HOST": env.get("LP_SMTP_HOST") or None,
        "MAIL_SMTP_PORT": _int(env, "LP_SMTP_PORT", 25),
        "MAIL_FROM": env.get("LP_MAIL_FROM", "lp-saas@localhost"),
    }
