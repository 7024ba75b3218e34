"""Fixtures: a real fake upstream on loopback, an app on a fresh migrated database, clients."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from html import unescape

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade

from harness.fake_upstream import DEFAULT_MODELS, FakeUpstream
from webapp import create_app
from webapp.conversations.catalog import clear_cache
from webapp.conversations.models import Message
from webapp.conversations.parameters import NUMBERS
from webapp.extensions import db
from webapp.migrations_cli import enable_migrations

pytest_plugins = ["tests.databases"]

API_KEY = "test-key-not-secret"

# Settings a developer's environment or .env must not leak into tests.
ISOLATED_ENV = ("REGOLO_API_KEY", "REGOLO_BASE_URL", "REGOLO_MODEL", "DATABASE_URL",
                "SECRET_KEY", "FLASK_DEBUG", "MAX_MESSAGE_CHARS", "REGOLO_READ_TIMEOUT",
                "TRUST_PROXY", "ACCESS_PASSWORD", "RATELIMIT_STORAGE_URI",
                "MESSAGES_PER_MINUTE_PER_OWNER", "MESSAGES_PER_MINUTE_PER_IP",
                "MAX_IMAGES", "MAX_IMAGE_BYTES", "MAX_CONTENT_LENGTH", "TITLE_GENERATION",
                "MAX_IMAGE_PIXELS", "IMAGE_DECODES_AT_ONCE", "MAX_STORED_IMAGE_BYTES",
                "MAX_UPSTREAM_IMAGE_BYTES", "MODEL_PRICES", "MODEL_CONTEXT_WINDOWS",
                "MODEL_INFO_CURRENCY", "IMPORT_MAX_BYTES", "IMPORT_MAX_UNCOMPRESSED_BYTES",
                "IMPORT_MAX_ZIP_MEMBERS", "IMPORT_MAX_ZIP_RATIO", "MAX_DOCUMENTS",
                "MAX_DOCUMENT_BYTES", "MAX_DOCUMENT_CHARS", "MAX_DOCUMENT_CHARS_PER_MESSAGE",
                "DOCUMENT_READ_SECONDS", "DOCUMENT_READ_MEMORY", "DOCUMENTS_READ_AT_ONCE",
                *(number.env for number in NUMBERS))


@pytest.fixture(scope="session")
def upstream_server() -> Iterator[FakeUpstream]:
    server = FakeUpstream(api_key=API_KEY).start()
    yield server
    server.stop()


@pytest.fixture
def upstream(upstream_server: FakeUpstream) -> FakeUpstream:
    """The fake upstream, reset for this test."""
    upstream_server.reset()
    upstream_server.models_status = 200
    upstream_server.models = list(DEFAULT_MODELS)
    upstream_server.unknown_model_status = None
    upstream_server.model_info = None
    upstream_server.model_info_paths = FakeUpstream().model_info_paths
    upstream_server.default_reply = FakeUpstream().default_reply
    return upstream_server


@pytest.fixture
def make_app(database_url, monkeypatch, upstream):
    """Build an app on a fresh, migrated database, with settings overridden."""
    for name in ISOLATED_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SECRET_KEY", "test-secret")
    monkeypatch.setenv("DATABASE_URL", database_url)
    apps: list[Flask] = []

    def build(**overrides) -> Flask:
        settings = {"TESTING": True, "REGOLO_BASE_URL": upstream.base_url,
                    "REGOLO_API_KEY": API_KEY, "MODELS_CACHE_SECONDS": 0,
                    "REGOLO_RETRY_BUDGET": 5.0, "STREAM_FLUSH_SECONDS": 0.05,
                    "STREAM_POLL_SECONDS": 0.05, "RATELIMIT_ENABLED": False,
                    # Off unless a test turns it on (tests/test_csrf.py covers every form).
                    "WTF_CSRF_ENABLED": False,
                    # Off unless a test turns it on: the title request is a chat request too.
                    "TITLE_GENERATION": False}
        app = create_app(settings | overrides)
        enable_migrations(app)
        with app.app_context():
            upgrade()
        apps.append(app)
        return app

    yield build
    for app in apps:
        wait_for_generations(app)
        app.extensions["bus"].close()
        with app.app_context():
            db.engine.dispose()
    clear_cache()


@pytest.fixture
def app(make_app) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def wait_for_generations(app: Flask, timeout: float = 10.0) -> None:
    """Wait until no reply is being generated in this app's process, nor flushed."""
    relay = app.extensions["relay"]
    deadline = time.monotonic() + timeout
    while not relay.idle and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not relay.live_replies(), "a generation did not finish"


def wait_until(predicate, timeout: float = 5.0) -> None:
    """Wait until predicate() is true; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def conversation_url(response) -> str:
    """The conversation page a create or send redirected to, without the anchor."""
    return response.headers["Location"].split("#")[0]


def start_chat(client: FlaskClient, content: str = "Hello", **fields) -> str:
    """Create a conversation with the plain form (waits for the reply); its URL."""
    response = client.post("/c", data={"content": content, **fields})
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    return conversation_url(response)


def messages_of(app: Flask) -> list[Message]:
    """Every message in the database, oldest first."""
    with app.app_context():
        return list(db.session.scalars(db.select(Message).order_by(Message.id)))


def text_of(html: str) -> str:
    """Visible text of an HTML fragment, whitespace folded (for readable assertions)."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def share_link(client: FlaskClient, url: str, **fields) -> str:
    """Share (or re-share) a conversation with the plain form; the link's path, /s/<token>."""
    response = client.post(f"{url}/share", data=fields)
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    return re.search(r'id="share-link" type="url" value="https?://[^/"]+(/s/[^"]+)"', page)[1]
