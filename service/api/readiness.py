"""Readiness: can this process do its work now? ``GET /v1/health/ready`` (no key: for load
balancers and orchestrators) and the details of ``GET /v1/health``.

Four checks, each on its own so that a failure names itself:

- ``database``: it answers and is intact. SQLite: ``PRAGMA quick_check``, which reads every
  page, so its answer is kept for ``integrity_ttl`` seconds; PostgreSQL: a real query.
- ``write``: a real write, rolled back (``store.db.check_writable``): a read-only file, a
  read-only transaction or a missing grant fails it; a writer holding the lock does not.
- ``migrations``: the schema is at the code's migration head.
- ``model``: the scorer is loaded, or the registry finds every file it needs.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass

from sqlalchemy.exc import SQLAlchemyError

from service.store.db import check_integrity, check_writable, classify, describe
from service.store.migrate import at_head

INTEGRITY_TTL_S = 30.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    state: str  # ok | corrupt | unavailable | read-only | busy | behind | loaded | loadable
    detail: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


class Readiness:
    """The checks of one runtime; the integrity answer is cached (``clock`` seconds)."""

    def __init__(self, runtime, *, integrity_ttl: float = INTEGRITY_TTL_S, clock=time.monotonic):
        self.runtime = runtime
        self.integrity_ttl = integrity_ttl
        self.clock = clock
        self._integrity: tuple[float, str, str | None] | None = None
        self._lock = threading.Lock()

    def _engine(self):
        return self.runtime.engine  # built (and migrated) once; an error here is the database's

    def database(self) -> Check:
        with self._lock:  # one quick_check at a time; the others wait for its answer
            now = self.clock()
            if self._integrity is None or now - self._integrity[0] >= self.integrity_ttl:
                try:
                    state, detail = check_integrity(self._engine())
                except SQLAlchemyError as exc:
                    state, detail = (
                        ("corrupt" if classify(exc) == "corrupt" else "unavailable"),
                        describe(exc),
                    )
                self._integrity = (now, state, detail)
            _, state, detail = self._integrity
        return Check("database", state == "ok", state, detail)

    def known_corrupt(self) -> bool:
        """Whether the last integrity check (a probe's, within its cache time) found damage;
        runs no check itself, so a write path can ask on every request."""
        found = self._integrity
        return (
            found is not None
            and found[1] == "corrupt"
            and self.clock() - found[0] < self.integrity_ttl
        )

    def write(self) -> Check:
        try:
            state, detail = check_writable(self._engine())
        except SQLAlchemyError as exc:
            state, detail = classify(exc), describe(exc)
        # a busy database is being written by someone else: it can be written
        return Check("write", state in ("ok", "busy"), state, detail)

    def migrations(self) -> Check:
        try:
            ok, current, head = at_head(self._engine())
        except SQLAlchemyError as exc:
            return Check("migrations", False, "unavailable", describe(exc))
        return Check(
            "migrations",
            ok,
            "ok" if ok else "behind",
            None if ok else f"schema at {current or 'nothing'}, the code expects {head}",
        )

    def model(self) -> Check:
        state, detail = self.runtime.model_status()
        return Check("model", state != "unavailable", state, detail)

    def checks(self) -> list[Check]:
        return [self.database(), self.write(), self.migrations(), self.model()]

    def forget(self) -> None:
        """Drop the cached integrity answer (the next check runs ``quick_check`` again)."""
        with self._lock:
            self._integrity = None


def database_state(database: Check, write: Check) -> str:
    """One word for ``/v1/health``'s ``database``: ``ok``, ``corrupt``, ``unavailable`` or
    ``read-only`` (intact and readable, but every write fails)."""
    if not database.ok:
        return database.state
    return "read-only" if write.state == "read-only" else "ok"


def health(readiness: Readiness, session, *, count_items) -> dict:
    """The body of ``GET /v1/health``: every check, the database's state in one word, the
    served model's version and the number of stored items (``count_items(session)``)."""
    checks = readiness.checks()
    by = {c.name: c for c in checks}
    database = database_state(by["database"], by["write"])
    items = None
    if by["database"].ok:
        try:
            items = count_items(session)
        except SQLAlchemyError as exc:
            database = "corrupt" if classify(exc) == "corrupt" else "unavailable"
            session.rollback()
    version = by["model"].detail if by["model"].ok else None
    ok = database == "ok" and all(c.ok for c in checks) and version is not None
    return {
        "status": "ok" if ok else "degraded",
        "database": database,
        "model_version": version,
        "items": items,
        "checks": [c.as_dict() for c in checks],
    }


def ready(readiness: Readiness) -> tuple[bool, dict]:
    """Whether every check passes, and the body of ``GET /v1/health/ready`` naming those that fail."""
    checks = readiness.checks()
    failed = [c.name for c in checks if not c.ok]
    return not failed, {
        "status": "not ready" if failed else "ready",
        "failed": failed,
        "checks": [c.as_dict() for c in checks],
    }
