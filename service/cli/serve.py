"""``radar serve``: the HTTP API, and the in-process schedules (alerts, digests, themes,
rollups) that run beside it on threads."""

from __future__ import annotations

import logging
import threading
from typing import Annotated

import typer
from rich.console import Console

from service.api import logs
from service.cli.alerts import run_once
from service.cli.analyze import refresh_theme_cache
from service.cli.context import open_runtime, settings
from service.cli.keys import ensure_admin_key

console = Console(stderr=True)


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Bind address (default: api.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: api.port).")] = None,
    preload: Annotated[bool, typer.Option(help="Load the model before accepting requests.")] = True,
    alerts_every: Annotated[
        float,
        typer.Option(
            help="Evaluate the alert rules every this many minutes in the background (0: never; "
            "use `radar alerts run` from cron instead)."
        ),
    ] = 0,
    digest_every: Annotated[
        float,
        typer.Option(
            help="Send due digests, immediate alerts and webhook retries every this many minutes (0: never; "
            "use `radar digest run` from cron instead)."
        ),
    ] = 0,
    themes_every: Annotated[
        float,
        typer.Option(
            help="Compute the themes the API answers from every this many minutes (0: never; use `radar "
            "analyze themes --refresh-cache` from cron instead, or let requests compute them)."
        ),
    ] = 0,
):
    """Serve the HTTP API (OpenAPI docs at /docs)."""
    # lazy: uvicorn and the FastAPI app (with the scoring stack) take ~1 s to import
    import uvicorn

    from service.api.app import create_app

    s = settings(ctx)
    with open_runtime(ctx) as rt:
        if preload:
            rt.scorer.score(["warm up"])
        h, p = host or s.api.host, port or s.api.port
        if s.api.auth:
            first = ensure_admin_key(rt)
            # the key alone on standard output (a script can keep it), the words on stderr
            if first:
                console.print("no admin key yet: created one, shown once on standard output:")
                typer.echo(first)
        console.print(
            f"serving on http://{h}:{p}  (API docs: http://{h}:{p}/docs)\n"
            f"dashboard: http://{h}:{p}/dashboard/",
            soft_wrap=True,
        )
        logs.configure(s.log_format, access=True)  # one access line per request from here on
        stop = threading.Event()
        schedules = [
            ("alerts", _alerts_job, alerts_every * 60),
            ("digest", _digest_job, digest_every * 60),
            ("themes", _themes_job, themes_every * 60),
            ("rollups", _rollups_job, s.dashboard.rollups_every_seconds),
        ]
        for name, make_job, every_s in schedules:
            if every_s > 0:
                threading.Thread(
                    target=_schedule,
                    args=(name, make_job(rt), every_s, stop),
                    daemon=True,
                    name=f"radar-{name}",
                ).start()
        try:
            # uvicorn's own loggers go through the root handler above (JSON lines with log_format
            # json); its access log is replaced by radar.access
            uvicorn.run(
                create_app(s, runtime=rt),
                host=h,
                port=p,
                log_level="warning",
                log_config=None,
                access_log=False,
            )
        finally:
            stop.set()


def _alerts_job(rt):
    def job() -> str:
        report = run_once(rt)
        return f"{len(report['raised'])} raised, {len(report['updated'])} updated"

    return job


def _themes_job(rt):
    def job() -> str:
        done = refresh_theme_cache(rt)
        return f"themes stored for {len(done)} scope windows"

    return job


def _rollups_job(rt):
    def job() -> str:
        out = rt.refresh_rollups()
        if out["rebuilt"]:
            return f"rebuilt ({out['rows']} rows)"
        return f"{out['stale_days']} stale days recomputed" if out["stale_days"] else ""

    return job


def _digest_job(rt):
    service = rt.delivery_service()

    def job() -> str:
        report = service.run()
        d = report.dispatch
        return f"{len(report.composed)} composed, {len(d.sent)} sent, {len(d.retrying)} retrying, {len(d.dead)} dead"

    return job


def _schedule(name: str, job, every_s: float, stop) -> None:
    """An in-process schedule: one run now, then one every ``every_s`` seconds; what a run says
    is logged (nothing when it says nothing), a failed run is logged and the next one still
    happens."""
    log = logging.getLogger(f"radar.{name}")
    while not stop.is_set():
        try:
            said = job()
            if said:
                log.warning("%s: %s", name, said)
        except Exception:  # noqa: BLE001 - the schedule outlives one bad run
            log.exception("%s run failed", name)
        stop.wait(every_s)
