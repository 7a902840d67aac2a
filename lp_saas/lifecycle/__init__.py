"""The lifecycle of a school's data and accounts, run by sweeps that lose nothing (issue 4).

Modules: ``models`` (graduations, legal holds, deletion records, account-expiry plans),
``services`` (graduation, sealing, legal holds, deletion after retention), ``expiry`` (staff
account expiry and the hand-over of pending certifications), ``reconcile`` (lost jobs, orphaned and
unconfirmed uploads), ``reminders`` (before the upload window closes and the certification
deadline), ``sweeps`` (the order they run in, their jobs and their schedule), ``cli``
(``flask lifecycle run|jobs``), ``api`` (graduations, legal holds) and ``views`` (the school
admin's pages). Each module's docstring records the decisions it makes; in short:

- ``lifecycle run --as-of D`` freezes the clock at the start of D in Asia/Taipei (``sweeps``);
- data is kept through the N-th anniversary of graduation, deleted from the next day (``services``);
- a deletion is a committed state machine per student, finished by the next run (``services``);
- a departing teacher's account is kept through the grace period while items are pending, then
  they are handed over or the account simply ends, as the rules or the admin's override say (``expiry``);
- sealing a graduate also ends the graduate's account (``services``);
- reminders 7 and 1 days before the last day, each key once (``reminders``).
"""
from __future__ import annotations


def init_app(app) -> None:
    """Register the lifecycle's pages, notices, CLI group and job kinds (idempotent).

    The API routes (``lifecycle.api``) attach to ``lp_saas.api.bp`` and must be imported before that
    blueprint is registered: ``lp_saas.api.register`` imports them with the other resources.
    """
    from lp_saas.lifecycle import sweeps as _sweeps  # noqa: F401 - job kinds and periodic work
    from lp_saas.notifications import services as _notifications  # noqa: F401 - send_email job
    from lp_saas.lifecycle.cli import lifecycle_cli
    from lp_saas.lifecycle.views import bp as lifecycle_bp
    from lp_saas.notifications.views import bp as notifications_bp

    for blueprint in (lifecycle_bp, notifications_bp):
        if blueprint.name not in app.blueprints:
            app.register_blueprint(blueprint)
    if "lifecycle" not in app.cli.commands:
        app.cli.add_command(lifecycle_cli)
