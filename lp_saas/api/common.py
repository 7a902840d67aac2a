"""What every API module uses: the acting user, JSON input through schemas, JSON output."""
from __future__ import annotations

from functools import wraps

from flask import abort, g, request
from flask_babel import gettext as _
from marshmallow import RAISE, Schema, ValidationError

from lp_saas.errors import AppError, ValidationFailed
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


class InputSchema(Schema):
    """Allow-list input: unknown fields are refused, so a typo is an error, not silently dropped."""

    class Meta:
        unknown = RAISE


def _translate(messages):
    if isinstance(messages, dict):
        return {key: _translate(value) for key, value in messages.items()}
    if isinstance(messages, list):
        return "; ".join(_translate(m) for m in messages)
    return _(str(messages))


def parse_json(schema: Schema, *, partial: bool = False) -> dict:
    """The request's JSON body loaded through ``schema``. Raises 400/415/422 with field messages."""
    if not request.is_json:
        raise AppError(_("Send the request body as JSON (Content-Type: application/json)."),
                       code="unsupported_media_type", status=415)
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise AppError(_("The request body is not a JSON object."), code="bad_json", status=400)
    try:
        return schema.load(data, partial=partial)
    except ValidationError as exc:
        raise ValidationFailed(_translate(exc.messages)) from None
