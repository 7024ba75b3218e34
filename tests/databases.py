"""Test databases: each test gets its own, cloned from a template migrated once per session.

On SQLite the template is a file, copied into the test's tmp_path. With TEST_DATABASE_URL
set (a PostgreSQL server's admin URL, see scripts/postgres) the template is a database,
cloned with CREATE DATABASE ... TEMPLATE by a background thread a few tests ahead and
dropped by it after the test, so tests do not wait on either; tests that don't touch a
database (or are marked `browser`) are left out of that run. Tests marked `postgres` run
only then.
"""

from __future__ import annotations

import os
import queue
import shutil
import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from webapp.config import normalise_database_url

ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "").strip()
CLONES_AHEAD = 2  # PostgreSQL databases kept ready for the next tests


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


def _migrate(url: str) -> None:
    """Run every migration on the database at url, as the app's release does."""
    from flask_migrate import upgrade

    from webapp import create_app
    from webapp.extensions import db
    from webapp.migrations_cli import enable_migrations

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SECRET_KEY", "test-secret")
        app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url})
        enable_migrations(app)
        with app.app_context():
            upgrade()
            db.engine.dispose()


class Clones:
    """Clones of a template database made ahead, and dropped after use, by one thread."""

    def __init__(self, template: str) -> None:
        self.template = template
        self._ready: queue.Queue[str | BaseException] = queue.Queue()
        self._work: queue.Queue[str | None] = queue.Queue()  # "" clone, a name drop, None end
        self._thread = threading.Thread(target=self._run, daemon=True, name="test-databases")
        self._thread.start()
        for _ in range(CLONES_AHEAD):
            self._work.put("")

    def take(self) -> str:
        """The name of a fresh clone of the template (waiting for one if need be)."""
        self._work.put("")  # keep as many ready for the tests after this one
        ready = self._ready.get()
        if isinstance(ready, BaseException):
            raise RuntimeError("could not clone the template database") from ready
        return ready

    def drop(self, name: str) -> None:
        """Drop a clone once a test is done with it (its connections are cut)."""
        self._work.put(name)

    def close(self) -> None:
        """Drop every clone left, once the thread has done what it was given."""
        self._work.put(None)
        self._thread.join()
        while not self._ready.empty():
            ready = self._ready.get()
            if isinstance(ready, str):
                _admin_query(f'DROP DATABASE IF EXISTS "{ready}" WITH (FORCE)')

    def _run(self) -> None:
        while (item := self._work.get()) is not None:
            if item:
                _admin_query(f'DROP DATABASE IF EXISTS "{item}" WITH (FORCE)')
                continue
            name = f"regolo_test_{uuid.uuid4().hex[:12]}"
            try:
                _admin_query(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
            except psycopg.Error as error:
                self._ready.put(error)
            else:
                self._ready.put(name)


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str | None]:
    """The name of a migrated template database, or None on SQLite."""
    if not on_postgres():
        yield None
        return
    name = f"regolo_template_{uuid.uuid4().hex[:8]}"
    _admin_query(f'CREATE DATABASE "{name}"')
    _migrate(_url_of(name))
    yield name
    _admin_query(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_clones(postgres_template) -> Iterator[Clones | None]:
    """Clones of the PostgreSQL template made ahead of the tests, or None on SQLite."""
    if postgres_template is None:
        yield None
        return
    clones = Clones(postgres_template)
    yield clones
    clones.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> str | None:
    """The path of a SQLite file every migration has run on, or None on PostgreSQL."""
    if on_postgres():
        return None
    path = tmp_path_factory.mktemp("template") / "template.db"
    _migrate(f"sqlite:///{path}")  # its last connection closed: no WAL file is left beside it
    return str(path)


@pytest.fixture
def database_url(tmp_path, sqlite_template, postgres_clones) -> Iterator[str]:
    """A DATABASE_URL of this test's own migrated database (SQLite, or PostgreSQL in that
    run)."""
    if postgres_clones is None:
        path = tmp_path / "test.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    name = postgres_clones.take()
    yield _url_of(name)
    postgres_clones.drop(name)


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
