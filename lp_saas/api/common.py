"""What every API module uses: the acting user, JSON input through schemas, JSON output."""
from __future__ import annotations

import re
from functools import wraps

from flask import abort, g, request
from flask_babel import gettext as _
from marshmallow import RAISE, Schema, ValidationError, fields

from lp_saas.errors import AppError, ValidationFailed
from lp_saas.text import unsafe_line
from lp_saas.roles import permissions


def actor_required(view):
    """401 without a valid token of this school."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        if g.get("actor") is None:
            abort(401)
        return view(*args, **kwargs)

    wrapped.login_required = True
    return wrapped


def api_permission(permission: str):
    """401 without a token, 403 without the permission (scope is checked once the target is loaded)."""
    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if g.get("actor") is None:
                abort(401)
            if not permissions.has(g.actor, permission):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_permission = permission
        return wrapped

    return decorator


def N_(msgid: str) -> str:
    """Marks a msgid for extraction; translated where it is used."""
    return msgid


class Line(fields.String):
    """One line of text: trimmed; blank, markup and control characters are refused (NUL included,
    which PostgreSQL would refuse with a 500)."""

    default_error_messages = {
        "blank": N_("This field is required."),
        "unsafe": N_("Text may not contain HTML tags or control characters."),
    }

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs).strip()
        if not value:
            raise self.make_error("blank")
        if unsafe_line(value):
            raise self.make_error("unsafe")
        return value


class InputSchema(Schema):
    """Allow-list input: unknown fields are refused, so a typo is an error, not silently dropped."""

    class Meta:
        unknown = RAISE


#: marshmallow's own messages (English, some with values filled in) in the request's language
_EXACT = {
    "Missing data for required field.": N_("This field is required."),
    "Field may not be null.": N_("This field cannot be empty."),
    "Unknown field.": N_("Unknown field."),
    "Not a valid string.": N_("Give text here."),
    "Not a valid integer.": N_("Give a whole number here."),
    "Not a valid number.": N_("Give a number here."),
    "Not a valid boolean.": N_("Give true or false here."),
    "Not a valid UUID.": N_("Not a valid id."),
    "Not a valid list.": N_("Give a list here."),
    "Not a valid mapping type.": N_("Give an object here."),
    "Invalid input type.": N_("Give an object here."),
    "Not a valid email address.": N_("Enter a valid e-mail address."),
    "Not a valid URL.": N_("Enter a valid web address."),
    "Not a valid date.": N_("Enter a date as YYYY-MM-DD."),
    "Not a valid datetime.": N_("Enter a date and time in ISO 8601, such as 2025-01-31T23:59:59+08:00."),
    "Invalid value.": N_("Not a valid value."),
}
_PATTERNS = (
    (re.compile(r"Length must be between (?P<min>\d+) and (?P<max>\d+)\."),
     N_("Give between %(min)s and %(max)s characters (or items).")),
    (re.compile(r"Shorter than minimum length (?P<min>\d+)\."), N_("Give at least %(min)s characters (or items).")),
    (re.compile(r"Longer than maximum length (?P<max>\d+)\."), N_("Give at most %(max)s characters (or items).")),
    (re.compile(r"Length must be (?P<equal>\d+)\."), N_("Give exactly %(equal)s characters (or items).")),
    (re.compile(r"Must be greater than or equal to (?P<min>[-\d.]+) and less than or equal to (?P<max>[-\d.]+)\."),
     N_("Give a value from %(min)s to %(max)s.")),
    (re.compile(r"Must be greater than or equal to (?P<min>[-\d.]+)\."), N_("Give a value of at least %(min)s.")),
    (re.compile(r"Must be less than or equal to (?P<max>[-\d.]+)\."), N_("Give a value of at most %(max)s.")),
    (re.compile(r"Must be one of: (?P<choices>.*)\."), N_("Choose one of: %(choices)s.")),
)


def _translate(messages):
    if isinstance(messages, dict):
        return {key: _translate(value) for key, value in messages.items()}
    if isinstance(messages, list):
        return "; ".join(_translate(m) for m in messages)
    text = str(messages)
    if text in _EXACT:
        return _(_EXACT[text])
    for pattern, msgid in _PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            return _(msgid, **match.groupdict())
    return _(text)


#: no API body is anywhere near this (file bytes go to storage, never through the API)
MAX_JSON_BYTES = 256 * 1024


def json_object() -> dict:
    """The request's JSON object, unparsed. Raises 415 (not JSON), 413 (too large), 400 (not an
    object, malformed, or nested too deep to parse)."""
    if not request.is_json:
        raise AppError(_("Send the request body as JSON (Content-Type: application/json)."),
                       code="unsupported_media_type", status=415)
    if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
        raise AppError(_("The request is too large."), code="too_large", status=413)
    raw = request.get_data(cache=True)
    if len(raw) > MAX_JSON_BYTES:  # a chunked body has no Content-Length
        raise AppError(_("The request is too large."), code="too_large", status=413)
    try:
        data = request.get_json(silent=True)
    except RecursionError:
        data = None
    if not isinstance(data, dict):
        raise AppError(_("The request body is not a JSON object."), code="bad_json", status=400)
    return data


def parse_json(schema: Schema, *, partial: bool = False) -> dict:
    """The request's JSON body loaded through ``schema``. Raises 400/413/415/422 with field messages."""
    data = json_object()
    try:
        return schema.load(data, partial=partial)
    except ValidationError as exc:
        raise ValidationFailed(_translate(exc.messages)) from None
