"""Status of long work, for the user who started it (or staff who may see the school's jobs)."""
from __future__ import annotations

from flask import abort, g

from lp_saas.api import bp
from lp_saas.api.common import actor_required
from lp_saas.jobs.models import Job
from lp_saas.jobs.views import visible_to
from lp_saas.tenants.resolver import get_scoped_or_404


@bp.route("/jobs/<job_id>")
@actor_required
def get_job(job_id):
    """A job's status.
    ---
    get:
      summary: Status, progress and result of a job started by the caller
      tags: [jobs]
      responses:
        200: {description: "{status, progress, result?, error?}"}
        404: {description: no such job visible to the caller}
    """
    job = get_scoped_or_404(Job, job_id)
    if not visible_to(g.actor, job):
        abort(404)
    return job.to_dict()
