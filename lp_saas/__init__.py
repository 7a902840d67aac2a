"""lp-saas: the student learning portfolio (學生學習歷程檔案) platform, one school per subdomain."""
from __future__ import annotations

import os

from flask import Flask


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app. Configuration comes from the environment (API.md), then ``test_config``.

    Nothing here touches the database schema: migrations are a deploy step (``flask db upgrade``).
    """
    app = Flask(__name__, instance_path=os.environ.get("LP_INSTANCE_PATH") or None,
                instance_relative_config=True)
    from lp_saas.config import load_config

    app.config.update(load_config(app.instance_path))
    if test_config:
        app.config.update(test_config)
    os.makedirs(app.instance_path, exist_ok=True)

    from lp_saas import errors, i18n, storage
    from lp_saas.database import db, sqlite_pragmas
    from lp_saas.extensions import babel, csrf, limiter, login_manager, migrate

    db.init_app(app)
    with app.app_context():
        sqlite_pragmas(db.engine)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(os.path.dirname(__file__)), "migrations"),
                     render_as_batch=True, compare_type=True)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=i18n.select_locale, default_translation_directories="translations")
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.session_protection = None  # sessions are server-side rows with their own timeouts
    storage.init_app(app)
    i18n.init_app(app)
    errors.init_app(app)

    _import_models()
    _register_jobs()

    from lp_saas.tenants.resolver import resolve_tenant

    app.before_request(resolve_tenant)

    from lp_saas.accounts.views import bp as accounts_bp
    from lp_saas.audit.views import bp as audit_bp
    from lp_saas.academics.views import bp as academics_bp
    from lp_saas.governance.views import bp as governance_bp
    from lp_saas.jobs.views import bp as jobs_bp
    from lp_saas.lifecycle.views import bp as lifecycle_bp
    from lp_saas.notifications.views import bp as notifications_bp
    from lp_saas.platform.school_views import bp as platform_school_bp
    from lp_saas.platform.views import bp as platform_bp
    from lp_saas.portfolio.outcome_views import bp as outcomes_bp
    from lp_saas.portfolio.performance_views import bp as portfolio_items_bp
    from lp_saas.portfolio.progress_views import bp as progress_bp
    from lp_saas.records.views import bp as records_bp
    from lp_saas.roles.views import bp as roles_bp
    from lp_saas.tenants.rulesets_views import bp as rulesets_bp
    from lp_saas.tenants.views import bp as school_bp
    from lp_saas import api

    for blueprint in (school_bp, accounts_bp, roles_bp, rulesets_bp, audit_bp, jobs_bp, progress_bp,
                      academics_bp, records_bp, outcomes_bp, portfolio_items_bp, governance_bp, lifecycle_bp,
                      notifications_bp, platform_bp, platform_school_bp):
        app.register_blueprint(blueprint)
    api.register(app)
    csrf.exempt(api.bp)

    from lp_saas.templating import init_app as init_templating

    init_templating(app)

    from lp_saas.cli import register as register_cli

    register_cli(app)
    from lp_saas.lifecycle.cli import lifecycle_cli

    app.cli.add_command(lifecycle_cli)
    return app


def _import_models() -> None:
    """Import every model module so that SQLAlchemy's metadata (and Alembic) sees all tables."""
    from lp_saas.academics import models as _academics  # noqa: F401
    from lp_saas.accounts import models as _accounts  # noqa: F401
    from lp_saas.audit import models as _audit  # noqa: F401
    from lp_saas.governance import models as _governance  # noqa: F401
    from lp_saas.jobs import models as _jobs  # noqa: F401
    from lp_saas.lifecycle import models as _lifecycle  # noqa: F401
    from lp_saas.notifications import models as _notification_models  # noqa: F401
    from lp_saas.platform import models as _platform_models  # noqa: F401
    from lp_saas.portfolio import models as _portfolio  # noqa: F401
    from lp_saas.records import models as _records  # noqa: F401
    from lp_saas.roles import models as _roles  # noqa: F401
    from lp_saas.tenants import models as _tenants  # noqa: F401


def _register_jobs() -> None:
    """Import every module that declares job kinds."""
    from lp_saas.academics import imports as _imports  # noqa: F401
    from lp_saas.lifecycle import sweeps as _sweeps  # noqa: F401
    from lp_saas.notifications import services as _notifications  # noqa: F401
    from lp_saas.platform import services as _platform  # noqa: F401
    from lp_saas.portfolio import files as _files  # noqa: F401
    from lp_saas.portfolio import outcomes as _outcomes  # noqa: F401
    from lp_saas.portfolio import performances as _performances  # noqa: F401
    from lp_saas.portfolio import statements as _statements  # noqa: F401
    from lp_saas.tenants import services as _tenant_services  # noqa: F401
