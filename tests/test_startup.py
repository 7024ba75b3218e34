"""The web processes leave unimported what only a command, an upload or a worker needs.

Alembic (with the SQLAlchemy dialects it loads) serves `flask db`, Pillow image uploads,
ijson imports and Pygments code blocks that name a language; at startup they took about 15 MB of the
worker. SQLAlchemy's PostgreSQL dialect (2 MB) is loaded only when the database is one.
gevent runs in the worker only; the gunicorn master held another 5 MB of it.
bench/idle_memory.py measures the whole.
"""

from __future__ import annotations

import subprocess
import sys

from harness.paas import ROOT, app_environment

# What the Procfile's gunicorn worker does: gevent patches, then the app is built.
WORKER = """
from gevent import monkey
monkey.patch_all()
import sys
from webapp import create_app
create_app()
print(*sorted(sys.modules))
"""
LOADED_ON_DEMAND = {"alembic", "flask_migrate", "mako", "PIL", "pygments", "ijson"}
# What the gunicorn master loads before it forks the worker: the settings, the worker class.
MASTER = """
import runpy, sys
from gunicorn.config import Config
config = Config()
for name, value in runpy.run_path("gunicorn.conf.py").items():
    if name in config.settings:
        config.set(name, value)
print(config.worker_class.__name__, *sorted(sys.modules))
"""


def run(args: list[str], database_url: str) -> str:
    done = subprocess.run([sys.executable, *args], env=app_environment(database_url), cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_the_web_app_starts_without_alembic_or_pillow(tmp_path):
    modules = set(run(["-c", WORKER], f"sqlite:///{tmp_path / 'app.db'}").split())
    assert {"webapp.chat", "webapp.conversations.images", "sqlalchemy", "gevent"} <= modules
    assert {name for name in modules if name.split(".")[0] in LOADED_ON_DEMAND} == set()
    assert "sqlalchemy.dialects.postgresql" not in modules  # on SQLite, see models.py


def test_the_gunicorn_master_loads_its_gevent_worker_class_without_gevent(tmp_path):
    worker_class, *modules = run(["-c", MASTER], f"sqlite:///{tmp_path / 'app.db'}").split()
    assert worker_class == "GeventWorker" and "gunicorn.workers.base_async" in modules
    assert {name for name in modules if name.split(".")[0] in {"gevent", "webapp"}} == set()


def test_flask_db_loads_flask_migrate_with_its_options(empty_database_url):
    flask_db = ["-m", "flask", "--app", "webapp", "db"]
    output = run([*flask_db, "--directory", str(ROOT / "migrations"), "upgrade"],
                 empty_database_url)
    assert "Running upgrade  -> 0001" in output
    assert "setup plugin" not in output  # Alembic's import-time chatter stays unlogged
    assert "(head)" in run([*flask_db, "current"], empty_database_url)
    assert "Perform database migrations." in run(["-m", "flask", "--app", "webapp", "--help"],
                                                 empty_database_url)
