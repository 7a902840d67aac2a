"""Object storage: one bucket per school, presigned uploads and downloads, two backends.

``S3Storage`` speaks the S3 protocol through the ``minio`` SDK (any S3 server); ``LocalStorage`` keeps
files in a directory and serves its presigned URLs from the app's own routes (the embedded default).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app

from .base import (
    ObjectInfo,
    ObjectMissing,
    Storage,
    StorageError,
    StorageUnavailable,
    UploadTicket,
    content_disposition,
    validate_bucket,
    validate_key,
)
from .local import LocalStorage, UploadRejected
from .s3 import S3Storage

__all__ = [
    "LocalStorage",
    "ObjectInfo",
    "ObjectMissing",
    "S3Storage",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "UploadRejected",
    "UploadTicket",
    "content_disposition",
    "get_storage",
    "init_app",
    "storage_from_config",
    "validate_bucket",
    "validate_key",
]

EXTENSION_KEY = "lp_storage"


def storage_from_config(config: Mapping[str, Any]) -> Storage:
    """The backend the configuration names: S3 when ``S3_ENDPOINT`` is set, else a local directory.

    S3 reads ``S3_ENDPOINT``, ``S3_ACCESS_KEY``, ``S3_SECRET_KEY``, ``S3_REGION`` (default
    ``us-east-1``) and ``S3_PUBLIC_ENDPOINT`` (the address browsers use; default ``S3_ENDPOINT``).
    Local reads ``LOCAL_STORAGE_DIR`` and signs with ``SECRET_KEY`` (``SECRET_KEY_FALLBACKS`` are
    still accepted). Makes no network call. Raises ValueError when a required setting is missing.
    """
    endpoint = config.get("S3_ENDPOINT")
    if endpoint:
        access_key = config.get("S3_ACCESS_KEY")
        secret_key = config.get("S3_SECRET_KEY")
        if not access_key or not secret_key:
            raise ValueError("S3_ACCESS_KEY and S3_SECRET_KEY are required with S3_ENDPOINT")
        return S3Storage(
            endpoint,
            access_key,
            secret_key,
            region=config.get("S3_REGION") or "us-east-1",
            public_endpoint=config.get("S3_PUBLIC_ENDPOINT") or None,
        )
    root = config.get("LOCAL_STORAGE_DIR")
    signing_key = config.get("SECRET_KEY")
    if not root or not signing_key:
        raise ValueError("LOCAL_STORAGE_DIR and SECRET_KEY are required without S3_ENDPOINT")
    fallbacks = list(config.get("SECRET_KEY_FALLBACKS") or [])
    return LocalStorage(root, [*fallbacks, signing_key])


def init_app(app: Flask) -> None:
    """Build the backend from ``app.config`` and register the local backend's routes.

    The routes are always registered (they answer 404 under S3). Call after ``csrf.init_app(app)``
    so the routes, authorised by signed tokens instead of cookies, are exempted from CSRF.
    """
    from .views import storage_bp

    app.extensions[EXTENSION_KEY] = storage_from_config(app.config)
    app.register_blueprint(storage_bp)
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        csrf.exempt(storage_bp)


def get_storage() -> Storage:
    """The current app's storage backend (requires an app context)."""
    storage: Storage = current_app.extensions[EXTENSION_KEY]
    return storage
