"""The Regolo chat web app: create_app() builds a configured Flask application.

The factory builds the app's services once, with their dependencies passed in: the
upstream client, the reply bus, the relay of live replies and the generation service
(with the title writer as an after-completion hook), each under app.extensions.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from dotenv import load_dotenv
from flask import Flask, render_template
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from . import config, migrations_cli
from .conversations import models, pricing, titles
from .conversations.documents import DocumentReader
from .conversations.images import ImagePreparer
from .conversations.rendering import message_html
from .extensions import compress, db, htmx
from .replies import bus, generation
from .replies.live import Relay
from .replies.streaming import THROTTLE_SECONDS
from .upstream import llm
from .web import converters, limits, logmask, security
from .web.assets import asset_url, cache_static, icon
from .web.sidebar import group_of

ROOT = Path(__file__).resolve().parent.parent
# The exit status of a process whose settings are refused. Gunicorn reads it as "the
# application failed to load" and stops, rather than starting new workers forever.
SETTINGS_REFUSED_STATUS = 4


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app from the environment (and a .env file), or from test_config.

    A setting refused while building from the environment alone (a server or a command
    starting) ends the process with the setting's sentence and no traceback; with
    test_config it raises config.ConfigError.
    """
    load_dotenv(ROOT / ".env")
    app = Flask(__name__, instance_path=str(ROOT / "instance"),
                template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"))
    testing = bool((test_config or {}).get("TESTING"))
    try:
        app.config.from_mapping(config.load(app.instance_path, testing))
    except config.ConfigError as error:
        if test_config is not None:
            raise
        print(error, file=sys.stderr, flush=True)
        raise SystemExit(SETTINGS_REFUSED_STATUS) from None
    app.config.update(
        PERMANENT_SESSION_LIFETIME=60 * 60 * 24 * 400,
        SEND_FILE_MAX_AGE_DEFAULT=60 * 60 * 24 * 365,
        COMPRESS_STREAMS=False,  # a reply stream must reach the browser as it is written
    )
    if test_config:
        app.config.update(test_config)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logmask.install()

    converters.init_app(app)
    security.init_app(app)
    db.init_app(app)
    with app.app_context():
        models.make_one_active_reply_partial(db.engine.dialect.name)
        engine = db.engine
    migrations_cli.init_app(app)
    htmx.init_app(app)
    compress.init_app(app)
    app.after_request(cache_static)
    limits.init_app(app)
    _add_generation(app, sessionmaker(bind=engine, expire_on_commit=False))
    app.extensions["images"] = ImagePreparer(
        max_pixels=app.config["MAX_IMAGE_PIXELS"],
        max_stored_bytes=app.config["MAX_STORED_IMAGE_BYTES"],
        at_once=app.config["IMAGE_DECODES_AT_ONCE"])
    app.extensions["documents"] = DocumentReader(
        max_chars=app.config["MAX_DOCUMENT_CHARS"],
        memory_bytes=app.config["DOCUMENT_READ_MEMORY"],
        timeout=app.config["DOCUMENT_READ_SECONDS"],
        at_once=app.config["DOCUMENTS_READ_AT_ONCE"])
    app.jinja_env.globals.update(asset_url=asset_url, icon=icon, message_html=message_html,
                                  Status=models.Status, utcnow=models.utcnow,
                                  sidebar_group=group_of)

    from .chat import bp as chat_bp
    from .devices import bp as devices_bp
    from .imports import bp as imports_bp
    from .search import bp as search_bp
    from .share import bp as share_bp
    from .web.gate import bp as gate_bp
    from .web.health import bp as health_bp

    app.register_blueprint(gate_bp)
    app.register_blueprint(chat_bp)
    app.register_blueprint(devices_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(imports_bp)
    app.register_blueprint(search_bp)
    app.register_blueprint(share_bp)
    _register_error_pages(app)
    return app


def _add_generation(app: Flask, sessions: sessionmaker) -> None:
    """The upstream client, the reply bus, the relay and the generation service.

    Their threads use `sessions` (plain SQLAlchemy sessions on the app's engine, needing
    no app context), like db.session keeping objects loaded after a commit.
    """
    config = app.config
    client = llm.LLMClient(
        base_url=config["REGOLO_BASE_URL"], api_key=config["REGOLO_API_KEY"],
        connect_timeout=config["REGOLO_CONNECT_TIMEOUT"],
        read_timeout=config["REGOLO_READ_TIMEOUT"],
        read_pace=THROTTLE_SECONDS,  # tokens read while waiting reach the page in one update
        session=llm.pooled_session(config["REGOLO_BASE_URL"]))
    reply_bus = bus.for_database(config["SQLALCHEMY_DATABASE_URI"])
    relay = Relay(reply_bus, sessions, flush_seconds=config["STREAM_FLUSH_SECONDS"],
                  stale_seconds=config["STREAM_STALE_SECONDS"])
    hooks = [titles.after_first_reply(client)] if config["TITLE_GENERATION"] else []

    def known_prices():  # from the cached model info and MODEL_PRICES, in any thread
        with app.app_context():
            return pricing.known_prices()

    app.extensions.update(llm=client, bus=reply_bus, relay=relay, generation=(
        generation.GenerationService(client, relay, sessions,
                                     generation.Settings.from_config(config),
                                     after_completion=hooks, prices=known_prices)))


def _register_error_pages(app: Flask) -> None:
    def error_page(error):
        code = getattr(error, "code", 500) or 500
        return render_template("errors/error.html", error=error, code=code), code

    for code in (400, 403, 404, 405, 409, 410, 413, 429, 500):
        app.register_error_handler(code, error_page)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    """WAL and a busy timeout, so several workers can write to one SQLite file."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
