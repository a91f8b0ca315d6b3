"""Schema migrations with Alembic, driven from code (``radar db upgrade`` and at start-up)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(engine: Engine | None = None) -> str | None:
    """The newest revision the code knows (the same for every database; read once)."""
    return _head(str(MIGRATIONS))


@lru_cache(maxsize=4)
def _head(script_location: str) -> str | None:
    return ScriptDirectory(script_location).get_current_head()


def at_head(engine: Engine) -> tuple[bool, str | None, str | None]:
    """Whether the database's schema is the code's: ``(ok, current, head)``."""
    current, head = current_revision(engine), head_revision()
    return current == head, current, head


def include_object_for(dialect: str):
    """Alembic's ``include_object`` for comparing a ``dialect`` database with the tables:
    objects declared for another dialect only (``Index(...).ddl_if(dialect=...)``, such as
    PostgreSQL's BRIN index) are not expected there."""

    def include(obj, name, type_, reflected, compare_to) -> bool:
        only = getattr(obj, "_ddl_if", None)
        return only is None or only.dialect is None or only.dialect == dialect

    return include


def ensure_schema(engine: Engine) -> None:
    """Upgrade to head when the database is behind (cheap when it is not)."""
    if current_revision(engine) != head_revision(engine):
        upgrade(engine)
