"""Browser tests: the test app served on loopback, driven by Debian's chromium through Playwright.

The app is the session's ``app`` (tests/conftest.py), served by Werkzeug on 127.0.0.1 with a free
port in a daemon thread. Chromium resolves ``*.localhost`` to loopback, so a school is opened at
``http://<slug>.localhost:<port>/``; nothing leaves the machine. No ``playwright install``: the
browser is the system's ``/usr/bin/chromium`` (STACK-NOTES.md).
"""
from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

CHROMIUM = os.environ.get("LP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


class LiveServer:
    def __init__(self, port: int):
        self.port = port

    def url(self, school_or_slug, path: str = "/") -> str:
        """``http://<slug>.localhost:<port><path>``; ``""`` is the platform's apex."""
        slug = school_or_slug if isinstance(school_or_slug, str) else school_or_slug.slug
        host = f"{slug}.localhost" if slug else "localhost"
        return f"http://{host}:{self.port}{path}"


@pytest.fixture(scope="session")
def live_server(app):
    """The test app on 127.0.0.1 (port 0: the kernel picks a free one), threaded, in a daemon thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="lp-live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(server.server_port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def new_context(browser):
    """Open browser contexts (each its own cookie jar); a Taiwanese browser (zh-TW) unless told.

    Closed at the end of the test.
    """
    contexts = []

    def make(**options):
        options.setdefault("locale", "zh-TW")
        options.setdefault("viewport", DESKTOP)
        options.setdefault("timezone_id", "Asia/Taipei")
        context = browser.new_context(**options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def context(new_context):
    return new_context()


@pytest.fixture
def page(context):
    return context.new_page()


@pytest.fixture
def screenshot(request):
    """``screenshot(page, "step")`` saves a full-page PNG as test-artifacts/<test>-<nn>-<step>.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    test_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_")
    counter = iter(range(1, 1000))

    def shoot(page, step: str) -> Path:
        path = ARTIFACTS / f"{test_name}-{next(counter):02d}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return shoot


def has_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth > window.innerWidth")


def hex_to_rgb(color: str) -> str:
    """``#7a1f3d`` → ``rgb(122, 31, 61)``, as ``getComputedStyle`` reports it."""
    value = color.lstrip("#")
    r, g, b = (int(value[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgb({r}, {g}, {b})"
