"""Share tokens and conversation ids are shortened in the request logs."""

from __future__ import annotations

import logging
import runpy
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from sqlalchemy import text

from tests.conftest import start_chat
from webapp.conversations.models import Conversation
from webapp.extensions import db
from webapp.web.logmask import mask

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "Rler4NKU7l-JKInVSLbHeN6O9obpAKQ6"
CONVERSATION = "N0lnXrRTDKt4rmikpaCkpA"


@pytest.mark.parametrize("text, masked", [
    (f"GET /s/{TOKEN} HTTP/1.1", "GET /s/Rler… HTTP/1.1"),
    (f"POST /s/{TOKEN}/continue", "POST /s/Rler…/continue"),
    (f"POST /d/{TOKEN} HTTP/1.1", "POST /d/Rler… HTTP/1.1"),
    (f"GET /c/{CONVERSATION}/messages/7/stream", "GET /c/N0ln…/messages/7/stream"),
    (f"http://example.org/c/{CONVERSATION}#m-3", "http://example.org/c/N0ln…#m-3"),
    ("POST /c HTTP/1.1", "POST /c HTTP/1.1"),
    ("GET /static/css/app.css?v=1 HTTP/1.1", "GET /static/css/app.css?v=1 HTTP/1.1"),
    ("GET /shares HTTP/1.1", "GET /shares HTTP/1.1"),
])
def test_mask_keeps_four_characters(text, masked):
    assert mask(text) == masked


def test_the_development_server_log_is_masked(app, caplog):
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        logging.getLogger("werkzeug").info('%s - - [%s] "%s" %s %s', "127.0.0.1", "date",
                                           f"GET /s/{TOKEN} HTTP/1.1", 200, "-")
    assert caplog.messages == ['127.0.0.1 - - [date] "GET /s/Rler… HTTP/1.1" 200 -']


def test_gunicorns_access_log_is_masked():
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    logger = settings["logger_class"](Config())
    response = SimpleNamespace(status="200 OK", sent=10, headers=[])
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": f"/s/{TOKEN}?x=1",
               "PATH_INFO": f"/s/{TOKEN}", "SERVER_PROTOCOL": "HTTP/1.1",
               "HTTP_REFERER": f"https://chat.example/c/{CONVERSATION}"}
    atoms = logger.atoms(response, {"Referer": environ["HTTP_REFERER"]}, environ,
                         timedelta(seconds=1))
    assert atoms["r"] == "GET /s/Rler…?x=1 HTTP/1.1" and atoms["U"] == "/s/Rler…"
    assert atoms["f"] == atoms["{referer}i"] == "https://chat.example/c/N0ln…"
    assert TOKEN not in repr(atoms) and CONVERSATION not in repr(atoms)


def test_gunicorns_settings_do_not_import_the_app():
    """The master must not import webapp before the gevent worker patches threading."""
    code = ("import runpy, sys; runpy.run_path('gunicorn.conf.py'); "
            "assert 'webapp' not in sys.modules, 'webapp was imported'")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


@pytest.mark.parametrize("text, masked", [
    ("GET /search?q=pangolin+secret HTTP/1.1", "GET /search?q=… HTTP/1.1"),
    ("https://chat.example/search?q=a%20b&x=1#top", "https://chat.example/search?q=…&x=…#top"),
    ('"GET /search?q=who HTTP/1.1" 200 "https://chat.example/search?q=what"',
     '"GET /search?q=… HTTP/1.1" 200 "https://chat.example/search?q=…"'),
    ("GET /search HTTP/1.1", "GET /search HTTP/1.1"),
    ("GET /static/app.css?v=1 HTTP/1.1", "GET /static/app.css?v=1 HTTP/1.1"),
])
def test_mask_hides_what_was_searched_for(text, masked):
    assert mask(text) == masked


def test_the_development_server_log_hides_search_terms(app, caplog):
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        logging.getLogger("werkzeug").info('%s - - [%s] "%s" %s %s', "127.0.0.1", "date",
                                           "GET /search?q=my+diagnosis HTTP/1.1", 200, "-")
    assert caplog.messages == ['127.0.0.1 - - [date] "GET /search?q=… HTTP/1.1" 200 -']


def test_gunicorns_access_log_hides_search_terms():
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    logger = settings["logger_class"](Config())
    response = SimpleNamespace(status="200 OK", sent=10, headers=[])
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": "/search?q=my+diagnosis",
               "PATH_INFO": "/search", "QUERY_STRING": "q=my+diagnosis",
               "SERVER_PROTOCOL": "HTTP/1.1",
               "HTTP_REFERER": "https://chat.example/search?q=my+diagnosis"}
    atoms = logger.atoms(response, {"Referer": environ["HTTP_REFERER"]}, environ,
                         timedelta(seconds=1))
    assert atoms["r"] == "GET /search?q=… HTTP/1.1" and atoms["q"] == "q=…"
    assert atoms["f"] == "https://chat.example/search?q=…"
    assert "diagnosis" not in repr(atoms)


def test_a_database_error_logs_neither_the_owner_nor_the_conversation_id(app, client,
                                                                          caplog):
    """An exception while serving a conversation (here its table is gone) is logged with
    its traceback, the conversation id masked and the SQL parameters left out."""
    app.config["PROPAGATE_EXCEPTIONS"] = False  # log it, as in production
    url = start_chat(client, "Hi")
    public_id = url.rsplit("/", 1)[1]
    with app.app_context():
        owner = db.session.scalars(db.select(Conversation.owner_id)).one()
        db.session.execute(text("ALTER TABLE conversations RENAME TO conversations_gone"))
        db.session.commit()
    with caplog.at_level(logging.INFO):
        response = client.get(url)
    assert response.status_code == 500
    logged = caplog.text
    assert f"Exception on /c/{public_id[:4]}… [GET]" in logged
    assert "Traceback" in logged and "conversations" in logged
    assert "SQL parameters hidden" in logged
    assert owner not in logged and public_id not in logged
