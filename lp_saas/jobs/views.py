"""The user's own long work (imports, exports, provisioning): status and progress, as a page."""
from __future__ import annotations

from flask import Blueprint, abort, render_template

from lp_saas.accounts.auth import current_actor
from lp_saas.database import db
from lp_saas.jobs.models import Job
from lp_saas.roles import permissions
from lp_saas.roles.permissions import login_required
from lp_saas.tenants.resolver import get_scoped_or_404, require_school, scoped_select

bp = Blueprint("jobs", __name__)
bp.before_request(require_school)


def visible_to(actor, job: Job) -> bool:
    """A job is shown to the user who started it, and to account managers of the school."""
    return job.created_by_id == actor.id or permissions.has_school_wide(actor, "users.manage")


@bp.route("/jobs")
@login_required
def mine():
    actor = current_actor()
    jobs = list(db.session.scalars(scoped_select(Job).where(Job.created_by_id == actor.id)
                                   .order_by(Job.created_at.desc()).limit(50)))
    return render_template("jobs/list.html", jobs=jobs)


@bp.route("/jobs/<job_id>")
@login_required
def detail(job_id):
    job = get_scoped_or_404(Job, job_id)
    if not visible_to(current_actor(), job):
        abort(404)
    return render_template("jobs/detail.html", job=job)
