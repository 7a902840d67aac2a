"""What every page template may use: the school, the actor, permission checks, languages."""
from __future__ import annotations

from flask import g, request, url_for


def _job_status_label(status: str) -> str:
    from flask_babel import gettext as _

    return {"queued": _("Queued"), "running": _("Running"), "succeeded": _("Done"),
            "failed": _("Failed")}.get(status, status)


def _today():
    from lp_saas.database import utcnow
    from lp_saas.i18n import TAIPEI

    return utcnow().astimezone(TAIPEI).date()


def init_app(app) -> None:
    from lp_saas.accounts.auth import current_actor
    from lp_saas.roles import permissions

    @app.context_processor
    def inject():
        actor = current_actor() if g.get("tenant") is not None else None

        def can(permission, **target):
            if actor is None:
                return False
            return permissions.can(actor, permission, **target) if target else permissions.has(actor, permission)

        def lang_url(lang):
            view_args = request.view_args or {}
            # the query string may repeat a path argument's name (?user_id=…): the path wins
            args = {k: v for k, v in request.args.items() if k not in view_args}
            args["lang"] = lang
            return url_for(request.endpoint or "school.home", **view_args, **args) \
                if request.endpoint else "/?lang=" + lang

        return {"job_status_label": _job_status_label, "now_date": _today, "school": g.get("tenant"), "actor": actor, "can": can, "lang_url": lang_url,
                "is_apex": g.get("is_apex", False)}
