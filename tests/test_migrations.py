"""The migrations build exactly the schema the models describe, and can be undone."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from webapp.extensions import db
from webapp.search.index import is_index_object

TABLES = {"alembic_version", "conversations", "messages", "shares", "attachments",
          "device_links", "import_jobs", "comparisons", "comparison_columns", "documents"}


def test_upgrade_on_an_empty_database_matches_the_models(app):
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_name": lambda name, *_: not is_index_object(name)})
        assert compare_metadata(context, db.metadata) == []


def test_downgrade_to_base_then_upgrade(app):
    with app.app_context():
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) == {"alembic_version"}
        upgrade()
        tables = set(inspect(db.engine).get_table_names())
        assert {name for name in tables if not is_index_object(name)} == TABLES
