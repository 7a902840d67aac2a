"""Flask extensions, created unbound here and bound in ``create_app`` (no side effects on import)."""
from flask_babel import Babel
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect

from lp_saas.database import db  # noqa: F401  (re-exported: one import site for extensions)


def _client_key() -> str:
    from flask import request

    # per school host and client address: one school's brute force never locks out another's users
    return f"{request.host.split(':')[0]}|{request.remote_addr}"


migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
limiter = Limiter(key_func=_client_key, default_limits=[])
