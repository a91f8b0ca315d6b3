"""The dashboard served by the real app on loopback over the demo store (real model, weekly
alert replay), API keys on as shipped, driven by Debian's Chromium through Playwright."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

CHROMIUM = os.environ.get("RADAR_CHROMIUM", "/usr/bin/chromium")
# flags for a root, headless, offline machine: no sandbox (root), and no background
# connections (the closed network refuses them and they would show as failed requests)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--mute-audio",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, app):
        import uvicorn

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the dashboard server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(20)


@pytest.fixture(scope="session")
def dashboard(demo_alerts, demo_store, real_pipeline):
    """The app on loopback over the demo store, auth on, with an analyst key and an East
    viewer key. Yields (server, keys, runtime)."""
    from service.api.app import create_app
    from service.config import Settings
    from service.runtime import Runtime
    from service.store import access

    rt_demo, _, _ = demo_store
    url = str(rt_demo.settings.database_url)
    rt = Runtime(
        Settings(database_url=url, api={"auth": True, "rate_limit_per_minute": 100_000}),
        scorer=real_pipeline,
    )
    with rt.sessions() as s:
        keys = {
            "analyst": access.create_key(s, role="analyst", actor="dashboard-test")[1],
            "east": access.create_key(s, role="viewer", actor="dashboard-test", regions=["East"])[
                1
            ],
        }
    with LiveServer(create_app(runtime=rt)) as server:
        yield server, keys, rt


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: run `make system` (Debian package chromium)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


class PageProbe:
    """A page that records console errors, page errors, failed requests and every host asked."""

    def __init__(self, page, origin: str):
        self.page, self.origin = page, origin
        self.errors: list[str] = []
        self.failed: list[str] = []
        self.foreign: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url} {r.failure}"))
        page.on(
            "response",
            lambda r: self.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None,
        )
        page.on(
            "request",
            lambda r: (
                None if r.url.startswith((origin, "data:", "blob:")) else self.foreign.append(r.url)
            ),
        )

    def open(self, path: str, key: str | None = None):
        self.page.goto(self.origin + path + (f"#key={key}" if key else ""))
        self.ready()
        return self.page

    def ready(self, timeout: float = 120_000):
        self.page.wait_for_selector("body[data-ready='1']", timeout=timeout)

    def clean(self):
        assert not self.errors, self.errors
        assert not self.failed, self.failed
        assert not self.foreign, f"requests outside the app: {self.foreign}"
        assert self.page.locator("main .error").count() == 0, self.page.locator(
            "main .error"
        ).all_inner_texts()


@pytest.fixture
def probe(browser, dashboard):
    server = dashboard[0]
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-US")
    page = ctx.new_page()
    yield PageProbe(page, server.url)
    ctx.close()


def api_get(dashboard, path: str, key: str, **params) -> dict:
    server = dashboard[0]
    r = httpx.get(
        server.url + "/v1" + path,
        params=params,
        headers={"Authorization": f"Bearer {key}"},
        timeout=120,
    )
    r.raise_for_status()
    return r.json()


_cleaned: set[Path] = set()


def screenshots_dir() -> Path | None:
    """Where to save page screenshots (RADAR_SCREENSHOTS), emptied once per run when
    RADAR_SCREENSHOTS_CLEAN is set; None when none are asked for."""
    d = os.environ.get("RADAR_SCREENSHOTS")
    if not d:
        return None
    p = Path(d).resolve()
    if p not in _cleaned and p.exists() and os.environ.get("RADAR_SCREENSHOTS_CLEAN"):
        shutil.rmtree(p)
    _cleaned.add(p)
    p.mkdir(parents=True, exist_ok=True)
    return p
