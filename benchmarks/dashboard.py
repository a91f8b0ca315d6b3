"""Dashboard pages at scale: the /v1 calls each page makes, timed over a large store and over a
small one in the same run (the ratio says how a page's cost grows with the store).

    python benchmarks/dashboard.py [--items 1000000] [--baseline-items 10000] [--pg ADMIN_URL]

The stores are filled by ``benchmarks/analytics.py:fill`` (synthetic scored items, no model). The
app is the real one (``create_app``, auth off) called in-process through HTTP (TestClient), so a
page's time is its API calls' time as the browser waits for them: the calls of one page run one
after another here (a browser runs them in parallel, so this is an upper bound), median of 3.
The window is the dashboard's default (91 days up to the newest item). Themes are timed over
28 days (the page's heaviest call, computed on request). The daily rollups are built after the
fill (timed: `radar db rollups --rebuild`); the pages named by ``--from-items`` are then timed
again on the large store without them, in the same run. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("RADAR_API__AUTH", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from analytics import fill  # noqa: E402


def page_calls(since: str, until: str, prev: str) -> dict[str, list[tuple[str, dict]]]:
    """The /v1 calls each page makes for the default view (service/web/static/pages/*.js)."""
    w = {"since": since, "until": until}
    return {
        "overview": [
            ("/segments", {**w, "dimension": "brand"}),
            ("/segments", {"since": prev, "until": since, "dimension": "brand"}),
            ("/trends", {**w, "bucket": "week"}),
            ("/alerts", {"status": "open", "limit": 200}),
        ],
        "alerts": [("/alerts", {"limit": 200})],
        "trends": [
            ("/tracked-phrases", {}),
            ("/trends", {**w, "bucket": "week", "aspect": "taste"}),
            (
                "/forecast",
                {
                    **w,
                    "bucket": "week",
                    "aspect": "taste",
                    "metric": "negative_share",
                    "horizon": 4,
                },
            ),
        ],
        "segments": [
            ("/segments", {**w, "dimension": "region", "limit": 60}),
            ("/segments/differences", {**w, "dimension": "region", "limit": 100}),
        ],
        "segments_2d": [
            ("/segments", {**w, "dimension": ["region", "age_group"], "limit": 60}),
            ("/segments/differences", {**w, "dimension": ["region", "age_group"], "limit": 100}),
        ],
        "competitors": [("/benchmark", w), ("/benchmark/priorities", w)],
        "explorer": [
            ("/feedback", {**w, "limit": 50}),
            (
                "/feedback",
                {**w, "limit": 50, "aspect": "taste", "sentiment": "negative", "region": "East"},
            ),
        ],
        "themes_28d": [
            (
                "/themes",
                {
                    "since": (datetime.fromisoformat(until) - timedelta(days=28)).isoformat(),
                    "until": until,
                },
            )
        ],
    }


def time_pages(
    url: str,
    repeats: int = 3,
    skip: tuple[str, ...] = (),
    themes_repeats: int = 1,
    only: tuple[str, ...] = (),
) -> dict:
    from fastapi.testclient import TestClient

    from service.api.app import create_app
    from service.config import Settings

    out = {}
    with TestClient(create_app(Settings(database_url=url))) as c:
        # the window's anchor, as every page load makes it, and the filter menus' choices, which
        # the browser keeps for an hour (first page load of the hour only)
        common = [("/feedback", {"limit": 1})]
        first_load = [("/segments", {"dimension": ["region", "language"], "limit": 1000})]
        newest = c.get("/v1/feedback", params={"limit": 1}).json()["items"][0]["created_at"]
        until = datetime.fromisoformat(newest) + timedelta(seconds=1)
        since, prev = until - timedelta(days=91), until - timedelta(days=182)
        pages = {
            "common": common,
            "filter_menus_hourly": first_load,
            **page_calls(since.isoformat(), until.isoformat(), prev.isoformat()),
        }
        for name, calls in pages.items():
            if name in skip or (only and name not in only):
                continue
            runs, slowest = [], {}
            for _ in range(repeats if not name.startswith("themes") else themes_repeats):
                t_page = time.perf_counter()
                for path, params in calls:
                    t0 = time.perf_counter()
                    r = c.get("/v1" + path, params=params)
                    assert r.status_code == 200, (path, r.status_code, r.text[:300])
                    slowest[path] = max(slowest.get(path, 0.0), time.perf_counter() - t0)
                runs.append(time.perf_counter() - t_page)
            out[name] = {
                "s_median": round(statistics.median(runs), 3),
                "slowest_call": max(slowest, key=slowest.get),
                "slowest_call_s": round(max(slowest.values()), 3),
            }
            print(f"{url.split(':')[0]} {name}: {out[name]['s_median']} s", file=sys.stderr)
    return out


def build_rollups(url: str) -> dict:
    """The store was filled behind the application's back (no rollup marks): build them as
    `radar db rollups --rebuild` does, timed."""
    from service.config import Settings
    from service.runtime import Runtime

    rt = Runtime(Settings(database_url=url))
    t0 = time.perf_counter()
    out = rt.refresh_rollups(rebuild=True, progress=lambda m: print(m, file=sys.stderr))
    rt.close()
    return {
        "rows": out["rows"],
        "dimensions": out["dimensions"],
        "build_s": round(time.perf_counter() - t0, 1),
    }


def drop_rollups(url: str) -> None:
    from sqlalchemy.orm import Session

    from service.store import rollups

    engine = create_engine(url)
    with Session(engine) as s:
        rollups.drop(s)
        s.commit()
    engine.dispose()


def time_themes(url: str) -> dict:
    """The themes job (`radar analyze themes --refresh-cache`: the default 28-day window of every
    scope, clustered and stored), timed, then the themes page answered from what it stored."""
    from service.cli.analyze import refresh_theme_cache
    from service.config import Settings
    from service.runtime import Runtime

    rt = Runtime(Settings(database_url=url))
    t0 = time.perf_counter()
    done = refresh_theme_cache(rt)
    job_s = time.perf_counter() - t0
    rt.close()
    page = time_pages(url, only=("themes_28d",), themes_repeats=3)
    return {
        "job_s": round(job_s, 1),
        "windows": [{"items": d.get("items"), "themes": d.get("themes")} for d in done],
        "page_cached": page["themes_28d"],
    }


def run(
    url: str,
    items: int,
    baseline_items: int,
    baseline_url: str,
    skip: tuple[str, ...],
    from_items: tuple[str, ...],
) -> dict:
    big = {
        "fill": fill(url, items),
        "rollups": build_rollups(url),
        "pages": time_pages(url, skip=skip),
    }
    if from_items:  # the same pages without rollups, in the same run: what the rollups save
        drop_rollups(url)
        big["pages_from_items"] = time_pages(
            url,
            skip=tuple({*skip, "themes_28d", *(p for p in big["pages"] if p not in from_items)}),
        )
    if "themes_28d" not in skip:
        big["themes_cached"] = time_themes(url)
    small = {
        "fill": fill(baseline_url, baseline_items),
        "rollups": build_rollups(baseline_url),
        "pages": time_pages(baseline_url, skip=skip),
    }
    ratio = {
        p: round(big["pages"][p]["s_median"] / max(small["pages"][p]["s_median"], 1e-3), 1)
        for p in big["pages"]
    }
    return {
        f"items_{items}": big,
        f"baseline_items_{baseline_items}": small,
        "ratio_large_to_baseline": ratio,
    }


def main() -> None:
    from benchmarks.radar_harness import pg_database

    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--baseline-items", type=int, default=10_000)
    ap.add_argument("--sqlite", default="/tmp/radar-bench-dashboard.db")
    ap.add_argument(
        "--pg",
        default="",
        help="Admin URL: also run on a throw-away PostgreSQL database next to it.",
    )
    ap.add_argument(
        "--skip-themes",
        action="store_true",
        help="Leave out the themes page (minutes at 1M items).",
    )
    ap.add_argument(
        "--from-items",
        default="overview,segments,competitors",
        help="Pages also timed without rollups on the large store (comma-separated; '' for none).",
    )
    ap.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only (with --pg).")
    ap.add_argument(
        "--themes-only",
        action="store_true",
        help="Only the themes job and the cached themes page, on the store a previous run left at --sqlite.",
    )
    args = ap.parse_args()
    if args.themes_only:
        print(
            json.dumps(
                {
                    "benchmark": "dashboard_themes",
                    "store": args.sqlite,
                    "themes_cached": time_themes(f"sqlite:///{args.sqlite}"),
                }
            )
        )
        return
    skip = ("themes_28d",) if args.skip_themes else ()
    from_items = tuple(p for p in args.from_items.split(",") if p)
    result: dict = {
        "benchmark": "dashboard_pages",
        "items": args.items,
        "baseline_items": args.baseline_items,
    }
    small = args.sqlite.replace(".db", "-small.db")
    for p in (args.sqlite, small):
        Path(p).unlink(missing_ok=True)
    if not args.no_sqlite:
        result["sqlite"] = run(
            f"sqlite:///{args.sqlite}",
            args.items,
            args.baseline_items,
            f"sqlite:///{small}",
            skip,
            from_items,
        )
    if args.pg:
        with pg_database(args.pg) as url, pg_database(args.pg) as baseline_url:
            result["postgresql"] = run(
                url, args.items, args.baseline_items, baseline_url, skip, from_items
            )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
