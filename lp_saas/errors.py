"""Errors: the exceptions services raise, and how they reach users (JSON under /api, pages elsewhere).

Every message is a translatable string, rendered in the request's language (zh-TW by default).
"""
from __future__ import annotations

from flask import jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException, SecurityError


class AppError(Exception):
    """A refusal a user can understand. Nothing must have been stored when it is raised to a view."""

    status = 400
    code = "bad_request"

    def __init__(self, message, *, code: str | None = None, status: int | None = None,
                 details: dict | None = None):
        super().__init__(str(message))
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status
        self.details = details or {}


class ValidationFailed(AppError):
    status = 422
    code = "validation_failed"

    def __init__(self, details: dict, message=None):
        super().__init__(message or _l("Some fields are not valid."), details=details)


class Conflict(AppError):
    status = 409
    code = "conflict"


class Forbidden(AppError):
    status = 403
    code = "forbidden"


class NotFound(AppError):
    status = 404
    code = "not_found"


HTTP_MESSAGES = {
    400: ("bad_request", _l("The request could not be understood.")),
    401: ("unauthenticated", _l("Please sign in first.")),
    403: ("forbidden", _l("You do not have permission to do this.")),
    404: ("not_found", _l("Not found.")),
    405: ("method_not_allowed", _l("This method is not allowed here.")),
    409: ("conflict", _l("This conflicts with the current state.")),
    413: ("too_large", _l("The request is too large.")),
    415: ("unsupported_media_type", _l("Send the request as JSON.")),
    422: ("validation_failed", _l("Some fields are not valid.")),
    429: ("too_many_requests", _l("Too many attempts. Please wait a while and try again.")),
    500: ("server_error", _l("Something went wrong on our side. Nothing was changed; please try again.")),
}


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path.startswith("/_storage/")


def _translate_details(details: dict) -> dict:
    return {key: str(value) if not isinstance(value, (list, dict)) else value for key, value in details.items()}


def error_response(status: int, code: str, message, details: dict | None = None):
    if wants_json():
        body = {"error": {"code": code, "message": str(message)}}
        if details:
            body["error"]["details"] = _translate_details(details)
        return jsonify(body), status
    return render_template("error.html", status=status, code=code, message=str(message),
                           details=_translate_details(details or {})), status


def init_app(app) -> None:
    @app.errorhandler(AppError)
    def handle_app_error(exc: AppError):
        from lp_saas.database import db

        db.session.rollback()
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.errorhandler(HTTPException)
    def handle_http(exc: HTTPException):
        status = exc.code or 500
        if isinstance(exc, SecurityError):
            # an untrusted Host header: no school, no routing, no page; say it plainly (as JSON to the API)
            if request.path.startswith("/api/"):
                return jsonify({"error": {"code": "unknown_host", "message": "Unknown host."}}), 400
            return "Unknown host.", 400, {"Content-Type": "text/plain; charset=utf-8"}
        if status == 401 and not wants_json():
            return redirect(url_for("accounts.login", next=request.full_path.rstrip("?")))
        code, message = HTTP_MESSAGES.get(status, ("error", exc.description))
        if status == 429:
            try:  # flask_limiter.RateLimitExceeded knows its window
                minutes = max(1, exc.limit.limit.get_expiry() // 60)
            except AttributeError:
                minutes = 15
            message = _("Too many failed sign-in attempts from this device. Please wait %(minutes)s minutes and try again.",
                        minutes=minutes)
        description = getattr(exc, "lp_message", None)
        return error_response(status, code, description or message)

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception):
        from lp_saas.database import db

        app.logger.exception("unhandled error")
        db.session.rollback()
        code, message = HTTP_MESSAGES[500]
        return error_response(500, code, message)
