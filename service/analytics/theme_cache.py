"""Themes on the request path without clustering on the request path.

Finding the themes of a window clusters every embedding in it (seconds to minutes at a
million items). ``themes_for`` answers ``GET /v1/themes`` from a stored answer for the same
scope (the filter's key) and window length whose window ends within ``slack`` of the one asked
for and which is at most ``max_age`` old: "the last 28 days" moves with every new item, and an
answer a few minutes old is the same answer in all but the newest handful of items. A miss
computes, stores and answers. ``refresh`` (the scheduled job: ``radar serve --themes-every``,
``radar analyze themes --refresh-cache``) computes the default windows of every API key's
scope ahead of the requests.

Stored answers hold quotes as item ids only: the texts are read when an answer is served,
through the caller's filter, so an item erased or outside the caller's scope is never quoted.
An erasure drops the stored answers (their keywords may hold the author's words).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.analytics.themes import discover
from service.analytics.windows import default_window, scope_key
from service.store.repo import FeedbackFilter, utc
from service.store.tables import FeedbackRow, ThemeCacheRow

KEEP_DAYS = 14  # stored answers older than this are dropped when a new one is stored


def _walk(themes: list[dict]):
    for t in themes:
        yield t
        yield from _walk(t.get("children") or [])


def _strip(result: dict) -> dict:
    out = json.loads(json.dumps(result, default=str))
    for t in _walk(out.get("themes") or []):
        t["quotes"] = [q["id"] for q in t.get("quotes") or []]
    return out


def _hydrate(session: Session, result: dict, flt: FeedbackFilter) -> dict:
    themes = list(_walk(result.get("themes") or []))
    ids = sorted({i for t in themes for i in t.get("quotes") or []})
    texts: dict[int, str] = {}
    if ids:
        base = replace(flt, since=None, until=None, include_duplicates=True)
        texts = dict(
            session.execute(
                base.apply(select(FeedbackRow.id, FeedbackRow.text).where(FeedbackRow.id.in_(ids)))
            ).all()
        )
    for t in themes:
        t["quotes"] = [{"id": i, "text": texts[i]} for i in t.get("quotes") or [] if i in texts]
    return result


def lookup(
    session: Session,
    *,
    scope: str,
    since: datetime,
    until: datetime,
    max_age: timedelta,
    slack: timedelta,
    now: datetime,
) -> ThemeCacheRow | None:
    span = int((until - since).total_seconds())
    return session.scalars(
        select(ThemeCacheRow)
        .where(
            ThemeCacheRow.scope == scope,
            ThemeCacheRow.span_s == span,
            ThemeCacheRow.window_end >= until - slack,
            ThemeCacheRow.window_end <= until + slack,
            ThemeCacheRow.computed_at >= now - max_age,
        )
        .order_by(ThemeCacheRow.computed_at.desc())
    ).first()


def store(
    session: Session, *, scope: str, since: datetime, until: datetime, result: dict, now: datetime
) -> None:
    session.execute(
        delete(ThemeCacheRow).where(ThemeCacheRow.computed_at < now - timedelta(days=KEEP_DAYS))
    )
    session.merge(
        ThemeCacheRow(
            scope=scope,
            span_s=int((until - since).total_seconds()),
            window_end=until,
            computed_at=now,
            result=json.dumps(_strip(result), ensure_ascii=False),
        )
    )
    session.commit()


def themes_for(
    session: Session,
    *,
    flt: FeedbackFilter,
    since: datetime,
    until: datetime,
    population: FeedbackFilter,
    now: datetime,
    max_age: timedelta,
    slack: timedelta,
    competitors=None,
    refresh: bool = False,
) -> dict:
    """The themes of ``[since, until)`` under ``flt``: a stored answer when one fits (with
    ``cached_at``), else computed now and stored."""
    scope = scope_key(flt)
    if max_age > timedelta(0) and not refresh:
        row = lookup(
            session, scope=scope, since=since, until=until, max_age=max_age, slack=slack, now=now
        )
        if row is not None:
            out = _hydrate(session, json.loads(row.result), flt)
            out["cached_at"] = utc(row.computed_at).isoformat()
            return out
    result = discover(
        session,
        flt=flt,
        since=since,
        until=until,
        scope=scope,
        population=population,
        now=now,
        competitors=competitors,
    )
    store(session, scope=scope, since=since, until=until, result=result, now=now)
    result["cached_at"] = None
    return result


def refresh(
    session: Session,
    *,
    scopes: list[FeedbackFilter],
    days: list[int],
    now: datetime,
    competitors=None,
) -> list[dict]:
    """Compute and store the default windows (the last ``days`` days up to the newest item) of
    each scope; returns what was done per scope and window."""
    done = []
    for flt in scopes:
        for d in days:
            window = default_window(session, flt, d)
            if window is None:
                continue
            result = themes_for(
                session,
                flt=flt,
                since=window[0],
                until=window[1],
                population=flt,
                now=now,
                max_age=timedelta(0),
                slack=timedelta(0),
                competitors=competitors,
                refresh=True,
            )
            done.append(
                {
                    "scope": scope_key(flt),
                    "days": d,
                    "items": result["items"],
                    "themes": len(result["themes"]),
                }
            )
    return done


def clear(session: Session) -> int:
    """Drop every stored answer; returns how many."""
    return session.execute(delete(ThemeCacheRow)).rowcount or 0
