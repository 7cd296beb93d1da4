"""Bring a database to the newest schema with the one Alembic history."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from dwsched.store.connect import WRITE
from dwsched.store.dialect import lock_for_migration

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def stored_revision(engine: sa.Engine) -> str | None:
    """The revision the database records, read without Alembic's context (which logs a
    line each time): None when it records none. What the driver raises when unreachable."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: sa.Engine) -> None:
    """Apply every migration not yet applied; a no-op at head. Safe to run concurrently."""
    if current_revision(engine) == head_revision():
        return
    with engine.execution_options(**{WRITE: True}).begin() as conn:
        lock_for_migration(conn)
        command.upgrade(alembic_config(conn), "head")
