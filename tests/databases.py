"""Test databases: a SQLite file per test, or a fresh PostgreSQL database per test.

With TEST_DATABASE_URL set (a PostgreSQL server's admin URL, see scripts/postgres), every
test that touches the database gets its own database, cloned from a template migrated once
per session, and tests that don't touch one (or are marked `browser`) are left out of
that run. Tests marked `postgres` run only then.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from webapp.config import normalise_database_url

ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "").strip()


def on_postgres() -> bool:
    """True when this run uses PostgreSQL rather than SQLite."""
    return bool(ADMIN_URL)


def _admin_query(sql: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as connection:
        connection.execute(sql)


def _url_of(name: str) -> str:
    """The SQLAlchemy URL (psycopg 3 driver) of database `name` on the test server."""
    url = make_url(normalise_database_url(ADMIN_URL))
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str | None]:
    """The name of a migrated template database, or None on SQLite."""
    if not on_postgres():
        yield None
        return
    from flask_migrate import upgrade

    from webapp import create_app
    from webapp.extensions import db
    from webapp.migrations_cli import enable_migrations

    name = f"regolo_template_{uuid.uuid4().hex[:8]}"
    _admin_query(f'CREATE DATABASE "{name}"')
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SECRET_KEY", "test-secret")
        app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": _url_of(name)})
        enable_migrations(app)
        with app.app_context():
            upgrade()
            db.engine.dispose()
    yield name
    _admin_query(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(tmp_path, postgres_template) -> Iterator[str]:
    """A DATABASE_URL of this test's own, empty (SQLite) or migrated (PostgreSQL) database."""
    if postgres_template is None:
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    name = f"regolo_test_{uuid.uuid4().hex[:12]}"
    _admin_query(f'CREATE DATABASE "{name}" TEMPLATE "{postgres_template}"')
    yield _url_of(name)
    _admin_query(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def empty_database_url(tmp_path) -> Iterator[str]:
    """A DATABASE_URL of a new database with no tables at all (SQLite, or PostgreSQL in
    that run), for a test of what migrates it, such as the Procfile's release."""
    if not on_postgres():
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    name = f"regolo_empty_{uuid.uuid4().hex[:12]}"
    _admin_query(f'CREATE DATABASE "{name}"')
    yield _url_of(name)
    _admin_query(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _uses_a_database(item) -> bool:
    return bool({"database_url", "empty_database_url"} & set(item.fixturenames))


def pytest_collection_modifyitems(config, items) -> None:
    """On PostgreSQL run only the tests that touch the database (browser tests, which test
    the page rather than the database, run once, on SQLite); else skip `postgres` ones."""
    if on_postgres():
        kept = [item for item in items if _uses_a_database(item)
                and not item.get_closest_marker("browser")]
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept
        return
    skip = pytest.mark.skip(reason="needs TEST_DATABASE_URL (scripts/postgres start)")
    for item in items:
        if item.get_closest_marker("postgres"):
            item.add_marker(skip)
