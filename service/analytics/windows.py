"""Default analysis windows and scope keys."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.store.repo import FeedbackFilter, utc
from service.store.tables import FeedbackRow


def default_window(
    session: Session, flt: FeedbackFilter, days: int = 28
) -> tuple[datetime, datetime] | None:
    """``[since, until)`` from the filter, filling what is missing: ``until`` just after the newest
    item in scope, ``since`` ``days`` before ``until``. ``None`` when nothing is in scope."""
    until = flt.until
    if until is None:
        newest = session.scalar(
            replace(flt, until=None).apply(select(func.max(FeedbackRow.created_at)))
        )
        if newest is None:
            return None
        until = utc(newest) + timedelta(seconds=1)  # SQLite aggregates come back naive
    since = flt.since or until - timedelta(days=days)
    return since, until


def scope_key(flt: FeedbackFilter) -> str:
    """A short stable key of everything in a filter except its time window."""
    d = asdict(replace(flt, since=None, until=None))
    return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]
