"""WSGI entry point: ``flask --app wsgi …`` and any WSGI server (``gunicorn wsgi:app``)."""
from lp_saas import create_app

app = create_app()
