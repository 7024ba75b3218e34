"""`flask db` (Flask-Migrate), with Alembic imported only when a migration command runs.

Alembic, and the SQLAlchemy dialects it loads, take about 11 MB of each process that
imports them. The web process never migrates (the Procfile's release step does), so the
app registers a stand-in `db` group that loads Flask-Migrate once `flask db` is invoked.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click
from flask import Flask

from .extensions import db

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def enable_migrations(app: Flask) -> None:
    """Bind Flask-Migrate to the app, for `flask db` and for code that migrates directly."""
    if "migrate" in app.extensions:
        return
    # Alembic logs each plugin it registers as it is imported, which went unseen when it
    # was imported before create_app configured logging; it still does.
    plugins_log = logging.getLogger("alembic.runtime.plugins")
    level = plugins_log.level
    plugins_log.setLevel(logging.WARNING)
    try:
        from flask_migrate import Migrate
    finally:
        plugins_log.setLevel(level)
    Migrate(app, db, directory=str(MIGRATIONS), render_as_batch=True)


class MigrationCommands(click.Group):
    """Stands in for Flask-Migrate's `db` group and hands over to it when used."""

    def __init__(self, app: Flask):
        super().__init__("db", help="Perform database migrations.")
        self.app = app

    def migrate_group(self) -> click.Group:
        enable_migrations(self.app)
        from flask_migrate.cli import db as group

        return group

    def make_context(self, info_name, args, parent=None, **extra) -> click.Context:
        return self.migrate_group().make_context(info_name, args, parent=parent, **extra)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self.migrate_group().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self.migrate_group().get_command(ctx, cmd_name)


def init_app(app: Flask) -> None:
    app.cli.add_command(MigrationCommands(app))
