"""Engine and session factory. SQLite gets WAL, foreign keys and a busy timeout.

Also what operations ask of a database, whichever it is: is it intact (``check_integrity``),
can it be written (``check_writable``), what does an error from it mean (``classify``,
``describe``), and a consistent copy of a live SQLite store (``backup_sqlite``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, func, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

BUSY_TIMEOUT_MS = 30_000
PROBE_TIMEOUT_MS = (
    2_000  # a health probe waits this long for another writer, not the full busy timeout
)


def _sqlite_pragmas(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.close()


def sqlite_file(url: str | URL) -> Path | None:
    """The file of a SQLite URL: a path (``sqlite:///radar.db``) or a ``file:`` URI
    (``sqlite:///file:radar.db?mode=ro&uri=true``); None for memory and other databases."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    name = u.database
    if str(u.query.get("uri", "")).lower() in ("true", "1") and name.startswith("file:"):
        name = name.removeprefix("file:").split("?", 1)[0]
        if name.startswith("//"):  # file://host/path: the path
            name = "/" + name[2:].split("/", 1)[-1]
        if not name or name == ":memory:" or u.query.get("mode") == "memory":
            return None
    return Path(name).expanduser()


def make_engine(url: str, **kw) -> Engine:
    # statement parameters (feedback text among them) never appear in error messages or logs
    kw.setdefault("hide_parameters", True)
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        path = sqlite_file(u)
        if path is not None and u.query.get("mode") != "ro":
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(u, connect_args={"check_same_thread": False, "timeout": 30}, **kw)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if u.get_backend_name() == "postgresql" and u.drivername == "postgresql":
        u = u.set(drivername="postgresql+psycopg")
    return create_engine(u, pool_pre_ping=True, **kw)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any error."""
    with factory() as session, session.begin():
        yield session


# --- what a database error means -------------------------------------------------------------

# SQLite primary result codes (the low byte of an extended code)
_SQLITE = {
    3: "read-only",
    8: "read-only",
    5: "busy",
    6: "busy",
    11: "corrupt",
    26: "corrupt",
    7: "unavailable",
    10: "unavailable",
    13: "unavailable",
    14: "unavailable",
}
# PostgreSQL SQLSTATEs, then SQLSTATE classes
_PG = {
    "25006": "read-only",
    "42501": "read-only",
    "55P03": "busy",
    "40P01": "busy",
    "57014": "busy",
    "XX001": "corrupt",
    "XX002": "corrupt",
}
_PG_CLASSES = {"08": "unavailable", "53": "unavailable", "57": "unavailable", "58": "unavailable"}
UNUSABLE = (
    "read-only",
    "busy",
    "corrupt",
    "unavailable",
)  # the database's state, not the statement's fault


def classify(exc: BaseException) -> str:
    """What a database error says about the database: ``read-only`` (no write permission, a
    read-only file or transaction), ``busy`` (another writer holds a lock), ``corrupt``
    (damaged pages, not a database file), ``unavailable`` (cannot connect or open, disk full,
    I/O), or ``error``: the statement's own failure (a constraint, a missing table: a bug)."""

    orig = getattr(exc, "orig", None) or exc
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        return _SQLITE.get(code & 0xFF, "error")
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if state:
        return _PG.get(state) or _PG_CLASSES.get(state[:2]) or "error"
    if isinstance(exc, (DisconnectionError, PoolTimeout)):
        return "unavailable"
    if isinstance(exc, OperationalError):  # no code: a driver that cannot reach the server
        return "unavailable"
    return "error"


def describe(exc: BaseException) -> str:
    """The driver's own message on one line, without the SQL statement SQLAlchemy adds."""
    orig = getattr(exc, "orig", None) or exc
    msg = " ".join(str(orig).split())
    return msg or type(orig).__name__


def check_integrity(engine: Engine) -> tuple[str, str | None]:
    """``("ok", None)``, ``("corrupt", why)`` or ``("unavailable", why)``. SQLite: ``PRAGMA
    quick_check`` (it reads every page: seconds on a large file, so callers cache the answer);
    PostgreSQL: a read of the schema version table."""
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                rows = [r[0] for r in conn.exec_driver_sql("PRAGMA quick_check(3)").fetchall()]
                if rows != ["ok"]:
                    found = [
                        line
                        for r in rows
                        for line in str(r).splitlines()
                        if not line.startswith("***")
                    ]
                    return "corrupt", "; ".join(found[:3])[:500] or "quick_check answered nothing"
            else:
                conn.execute(text("SELECT count(*) FROM alembic_version")).scalar()
    except SQLAlchemyError as exc:
        return ("corrupt" if classify(exc) == "corrupt" else "unavailable"), describe(exc)
    return "ok", None


def check_writable(engine: Engine) -> tuple[str, str | None]:
    """``("ok", None)``, or ``("read-only" | "busy" | "corrupt" | "unavailable", why)``: one real
    write (the schema version set to itself), always rolled back, so it needs exactly the
    permissions an ingest needs and changes nothing. A writer holding the lock for longer than
    ``PROBE_TIMEOUT_MS`` answers ``busy``."""
    try:
        with engine.connect() as conn:
            sqlite = engine.dialect.name == "sqlite"
            if sqlite:
                conn.exec_driver_sql(f"PRAGMA busy_timeout={PROBE_TIMEOUT_MS}")
                conn.rollback()  # end the autobegun (empty) transaction before the probe's own
            try:
                with conn.begin() as tx:
                    if not sqlite:
                        conn.execute(text(f"SET LOCAL lock_timeout = {PROBE_TIMEOUT_MS}"))
                    conn.execute(text("UPDATE alembic_version SET version_num = version_num"))
                    tx.rollback()
            finally:
                if sqlite:
                    conn.exec_driver_sql(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    except SQLAlchemyError as exc:
        return classify(exc), describe(exc)
    return "ok", None


def grouped_counts(session: Session, *columns) -> dict[tuple, int]:
    """Rows per combination of ``columns`` (of one table): ``{(value, ...): count}``."""

    rows = session.execute(select(*columns, func.count()).group_by(*columns)).all()
    return {tuple(r[:-1]): int(r[-1]) for r in rows}


def backup_sqlite(engine: Engine, dest: Path) -> Path:
    """A consistent copy of a live SQLite store at ``dest`` through SQLite's online backup API
    (writers may go on meanwhile; the copy is the database as of one moment). Written beside
    ``dest`` and renamed into place, so ``dest`` is never half a database."""

    if engine.dialect.name != "sqlite":
        raise ValueError(f"{engine.dialect.name} databases are backed up with their own tools")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.partial")
    tmp.unlink(missing_ok=True)
    raw = engine.raw_connection()
    try:
        target = sqlite3.connect(tmp)
        try:
            raw.driver_connection.backup(target)
            target.execute(
                "PRAGMA journal_mode=DELETE"
            )  # one self-contained file, no -wal beside it
        finally:
            target.close()
    finally:
        raw.close()
    tmp.replace(dest)
    return dest
