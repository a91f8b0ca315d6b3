"""Dashboard pages and their assets. No queries here: pages fetch ``/v1`` endpoints themselves.

The HTML carries configuration only (taxonomy names per language, brand names, the page to
draw), never feedback data, so it is served without a key; every number on a page comes from
an authenticated ``/v1`` call.
"""

from __future__ import annotations

import html
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from service import __version__
from service.api.deps import SettingsDep
from service.api.errors import ApiError
from service.api.schemas import DbInt
from service.config import Settings

router = APIRouter(include_in_schema=False)

PAGES = (
    "overview",
    "alerts",
    "actions",
    "trends",
    "segments",
    "themes",
    "competitors",
    "explorer",
    "taxonomy",
    "label",
    "models",
)
_STATIC = Path(str(resources.files("service.web") / "static"))
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",  # strings.json: the interface words, shared with the digests
}
# pages and scripts are versioned by the package version; assets may be cached for a day
_CACHE = {"Cache-Control": "public, max-age=86400"}
# The dashboard's scripts (under static/), run in this order once the document is parsed
# (deferred): the interface strings, the shared parts (app.js), what pages share (ui.js), the
# actions pages, then one file per page, each registering itself in window.RadarPages.
SCRIPTS = (
    "i18n.js",
    "app.js",
    "ui.js",
    "actions.js",
    # every page of PAGES has its script, and the alert page too; the actions pages are actions.js
    *(f"pages/{name}.js" for name in (*(p for p in PAGES if p != "actions"), "alert")),
)


@lru_cache(maxsize=1)
def plotly_bundle() -> Path:
    """plotly.min.js as the installed plotly package ships it (its version is the package's)."""
    path = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    if not path.is_file():
        raise RuntimeError(f"plotly.js bundle missing at {path}: reinstall the plotly package")
    return path


def page_config(
    settings: Settings, page: str, alert_id: int | None, action_id: int | None = None
) -> dict[str, Any]:
    tax, comp = settings.taxonomy, settings.competitors
    return {
        "page": page,
        "alert_id": alert_id,
        "action_id": action_id,
        "version": __version__,
        "auth": settings.api.auth,
        "aspects": [{"id": a.id, "names": a.names} for a in tax.aspects],
        "our_brand": comp.our_brand,
        "brands": [{"id": b.id, "name": b.name} for b in comp.brands],
        "page_size": min(50, settings.limits.page_size_max),
        "segment_dimensions": settings.dashboard.segment_dimensions,
    }


_SHELL = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Feedback Radar</title>
<link rel="icon" href="/dashboard/assets/radar.svg" type="image/svg+xml">
<link rel="stylesheet" href="/dashboard/assets/app.css?v={version}">
<script id="radar-config" type="application/json">{config}</script>
<script src="/dashboard/assets/plotly.min.js?v={plotly}" defer></script>
{scripts}
</head>
<body data-page="{page}">
<header class="top">
  <a class="brand" href="/dashboard/" data-keep-filters><img src="/dashboard/assets/radar.svg" alt="" width="22" height="22"> Feedback Radar</a>
  <nav id="nav"></nav>
  <div class="top-right"><span id="who"></span><select id="ui-lang" aria-label="language"><option value="en">English</option><option value="zh">中文</option></select></div>
</header>
<section id="filters" class="filters"></section>
<div id="banner" class="banner" hidden></div>
<main id="main" aria-live="polite"><p class="loading">…</p></main>
<dialog id="signin"><form method="dialog" id="signin-form"><h2 data-t="signin.title"></h2><p data-t="signin.text"></p>
<input id="signin-key" type="password" autocomplete="off" placeholder="rk_…" required>
<menu><button type="submit" data-t="signin.button"></button></menu></form></dialog>
</body>
</html>
"""


def _shell(
    settings: Settings, page: str, alert_id: int | None = None, action_id: int | None = None
) -> HTMLResponse:
    # "</" never appears inside the JSON, so the config cannot close its script element
    config = json.dumps(
        page_config(settings, page, alert_id, action_id), ensure_ascii=False
    ).replace("</", "<\\/")
    body = _SHELL.format(
        version=html.escape(__version__),
        plotly=plotly_bundle().stat().st_size,
        page=html.escape(page),
        config=config,
        scripts="\n".join(
            f'<script src="/dashboard/assets/{name}?v={html.escape(__version__)}" defer></script>'
            for name in SCRIPTS
        ),
    )
    return HTMLResponse(
        body,
        headers={
            "Cache-Control": "no-cache",
            "Content-Security-Policy": _CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY",
        },
    )


# scripts only from this origin (plotly.js needs eval-free mode: it has one), no framing
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/dashboard/", status_code=307)


@router.get("/dashboard")
def dashboard_slash() -> RedirectResponse:
    return RedirectResponse("/dashboard/", status_code=307)


@router.get("/dashboard/")
def overview(settings: SettingsDep) -> HTMLResponse:
    return _shell(settings, "overview")


@router.get("/dashboard/alerts/{alert_id}")
def alert_page(alert_id: DbInt, settings: SettingsDep) -> HTMLResponse:
    return _shell(settings, "alert", alert_id)


@router.get("/dashboard/actions/{action_id}")
def action_page(action_id: DbInt, settings: SettingsDep) -> HTMLResponse:
    return _shell(settings, "action", action_id=action_id)


@router.get("/dashboard/assets/plotly.min.js")
def plotly_js() -> Response:
    return FileResponse(plotly_bundle(), media_type=_TYPES[".js"], headers=_CACHE)


def _asset(folder: Path, name: str) -> Response:
    path = folder / name
    if "/" in name or name.startswith(".") or path.suffix not in _TYPES or not path.is_file():
        raise ApiError(404, f"no asset {name}")
    return FileResponse(path, media_type=_TYPES[path.suffix], headers=_CACHE)


@router.get("/dashboard/assets/{name}")
def asset(name: str) -> Response:
    return _asset(_STATIC, name)


@router.get("/dashboard/assets/pages/{name}")
def page_script(name: str) -> Response:
    """One page's script (static/pages/)."""
    return _asset(_STATIC / "pages", name)


@router.get("/dashboard/{page}")
def page(page: str, settings: SettingsDep) -> HTMLResponse:
    if page not in PAGES or page == "overview":
        raise ApiError(404, f"no dashboard page {page}")
    return _shell(settings, page)
