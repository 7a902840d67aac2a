"""A school's branding: its colours and its logo (kept in the school's own bucket).

The logo is a PNG or JPEG of at most 1 MB, its type sniffed from its content (``filetype``), never
taken from the name or the declared type. Its key is generated (``branding/logo/<uuid>.<ext>``),
so a new logo is a new URL and browsers never show a stale one. Needs ``branding.edit``.
"""
from __future__ import annotations

import uuid

import filetype
from flask_babel import lazy_gettext as _l

from lp_saas.audit import services as audit
from lp_saas.database import db
from lp_saas.errors import ValidationFailed
from lp_saas.tenants.services import COLOR_RE

LOGO_MAX_BYTES = 1024 * 1024
LOGO_TYPES = {"image/png": "png", "image/jpeg": "jpg"}
LOGO_CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg"}


def logo_problem(data: bytes | None) -> tuple[str | None, str | None]:
    """(extension, None) for an acceptable logo, else (None, translated message)."""
    if not data:
        return None, str(_l("The logo file is empty."))
    if len(data) > LOGO_MAX_BYTES:
        return None, str(_l("The logo is larger than 1 MB; use a smaller image."))
    kind = filetype.guess(data[:8192])
    if kind is None or kind.mime not in LOGO_TYPES:
        return None, str(_l("The logo must be a PNG or JPEG image."))
    return LOGO_TYPES[kind.mime], None


def save_branding(tenant, actor, *, primary_color, accent_color, logo: bytes | None = None,
                  remove_logo: bool = False) -> str | None:
    """Set the school's colours and, if given, store its new logo. Returns the key of the logo it
    replaced (to delete once the change is committed) or None. Raises ValidationFailed (bad colour,
    a logo that is not a PNG/JPEG of at most 1 MB, or over the storage quota); then nothing is stored.
    """
    from lp_saas.platform.services import QuotaExceeded, check_storage_quota
    from lp_saas.storage import get_storage

    errors = {}
    colours = {}
    for field, value in (("primary_color", primary_color), ("accent_color", accent_color)):
        value = value.strip() if isinstance(value, str) else value
        if not isinstance(value, str) or not COLOR_RE.match(value):
            errors[field] = str(_l("Enter a colour as # and six hexadecimal digits, such as #1d4e89."))
        else:
            colours[field] = value.lower()
    extension = None
    if logo is not None:
        extension, problem = logo_problem(logo)
        if problem:
            errors["logo"] = problem
        else:
            try:
                check_storage_quota(tenant, len(logo))
            except QuotaExceeded as full:
                errors["logo"] = str(full.message)
    if errors:
        raise ValidationFailed(errors)
    tenant.primary_color = colours["primary_color"]
    tenant.accent_color = colours["accent_color"]
    replaced = None
    if extension is not None:
        key = f"branding/logo/{uuid.uuid4().hex}.{extension}"
        get_storage().put_bytes(tenant.bucket, key, logo, LOGO_CONTENT_TYPES[extension])
        replaced, tenant.logo_key = tenant.logo_key, key
    elif remove_logo and tenant.logo_key:
        replaced, tenant.logo_key = tenant.logo_key, None
    audit.record(tenant.id, actor, "school.branding", target_type="tenant", target_id=tenant.id,
                 details={**colours, "logo": tenant.logo_key is not None})
    db.session.flush()
    return replaced


def logo_content_type(key: str) -> str:
    return LOGO_CONTENT_TYPES.get(key.rsplit(".", 1)[-1], "application/octet-stream")
